#!/usr/bin/env python3
"""cowctl replay against a real daemon: a trace recorded here from a real
program with Valgrind lackey, its first touches against the distinct pages
counted here independently; bad traces; the progress line; and Belady's
anomaly through --compare on the shipped reference string."""
import json
import os
import pty
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

import cowdtest

SKIP = 77
PAGE = 4096
HERE = os.path.dirname(os.path.abspath(__file__))
BELADY = os.path.join(HERE, "..", "..", "client", "examples", "belady.lackey")
ACCESS = re.compile(r"^\s*([ILSM])\s+(?:0x)?([0-9a-fA-F]+),(\d+)\s*$")

# A small program with a heap, a stack and a loop over 16 pages it allocates.
PROGRAM = r"""
#include <stdlib.h>
#include <string.h>
int main(void)
{
        char *p = malloc(16 * 4096 + 100);
        if (!p)
                return 1;
        memset(p, 1, 16 * 4096 + 100);
        return p[4097] == 1 ? 0 : 1;
}
"""


def cowctl_binary():
    path = os.environ.get("COWCTL_BIN")
    if not path:
        raise SystemExit("COWCTL_BIN must name the cowctl binary under test")
    return path


def distinct_pages(path):
    """Pages the trace touches, by its own reading of lackey's format: every
    page from an access's first byte to its last."""
    pages, accesses = set(), 0
    with open(path) as f:
        for line in f:
            m = ACCESS.match(line)
            if m:
                addr, size = int(m.group(2), 16), int(m.group(3))
                pages.update(range(addr // PAGE, (addr + size - 1) // PAGE + 1))
                accesses += 1
    return pages, accesses


def figures(stdout):
    return dict(line.split("\t", 1) for line in stdout.strip().splitlines())


class Replay(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = cowdtest.Daemon("--memory", "16M")
        cls.daemon.start()
        cls.tmp = tempfile.TemporaryDirectory(prefix="cowd-replay-")

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        cls.tmp.cleanup()

    def run_ctl(self, *args, stdin=None):
        return subprocess.run([cowctl_binary(), "-s", self.daemon.socket_path] + list(args),
                              capture_output=True, text=True, timeout=120, input=stdin)

    def record_trace(self):
        """Builds the program and records its lackey trace (not committed: a few MB)."""
        cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if not shutil.which("valgrind") or not cc:
            self.skipTest("needs valgrind and a C compiler to record a trace")
        src = os.path.join(self.tmp.name, "prog.c")
        exe = os.path.join(self.tmp.name, "prog")
        trace = os.path.join(self.tmp.name, "prog.lackey")
        with open(src, "w") as f:
            f.write(PROGRAM)
        subprocess.run([cc, "-O1", "-o", exe, src], check=True, timeout=60)
        # Valgrind must not inherit the sanitizer runtime's settings meant for cowd.
        env = {k: v for k, v in os.environ.items() if not k.endswith("SAN_OPTIONS")}
        subprocess.run(["valgrind", "--tool=lackey", "--trace-mem=yes",
                        "--log-file=" + trace, exe], check=True, timeout=120, env=env)
        return trace

    def test_real_trace_first_touches_equal_its_distinct_pages(self):
        trace = self.record_trace()
        pages, accesses = distinct_pages(trace)
        self.assertGreater(accesses, 10000)  # a real program, loader and all
        self.assertGreater(len(pages), 16)

        out = self.run_ctl("replay", trace)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stderr, "")  # not a terminal: no progress line
        fig = figures(out.stdout)
        self.assertEqual(int(fig["accesses"]), accesses)
        if fig["first_touch_faults"].startswith("n/a"):
            # A daemon that does not count first touches yet: with no limit and
            # nothing unmapped, every page touched keeps exactly one entry (a
            # frame or the zero page) and no untouched page has one, so the
            # pages present at the end are the pages first-touched.
            self.assertEqual(int(fig["resident_pages"]), len(pages))
        else:
            self.assertEqual(int(fig["first_touch_faults"]), len(pages))
            self.assertEqual(int(fig["resident_pages"]), len(pages))
        # Every first touch is a fault, and a fault-free TLB hit is the common case.
        self.assertGreaterEqual(int(fig["minor_faults"]), len(pages))
        self.assertEqual(int(fig["major_faults"]), 0)
        self.assertGreater(float(fig["tlb_hit_rate"]), 0.9)

        js = json.loads(self.run_ctl("--json", "replay", trace).stdout)
        self.assertEqual(js["accesses"], accesses)
        self.assertEqual(js["resident_pages"], len(pages))

    def test_bad_trace_names_its_line_and_replays_nothing_after(self):
        out = self.run_ctl("replay", "-", stdin=" L 10000000,8\nI  10000000,4\n X 5,5\n")
        self.assertEqual(out.returncode, 2)
        self.assertIn("-: line 3: unknown access kind 'X'", out.stderr)
        out = self.run_ctl("replay", "-", stdin=" L 10000000,0\n")
        self.assertIn("line 1: access size 0", out.stderr)
        # An address the daemon cannot map: its status, naming the trace line.
        out = self.run_ctl("replay", "-", stdin="\n L 800000000000,4\n")
        self.assertEqual(out.returncode, 1)
        self.assertIn("trace line 2: mapping 0x800000000000", out.stderr)
        self.assertIn("INVALID_ARGUMENT", out.stderr)
        out = self.run_ctl("replay", os.path.join(self.tmp.name, "missing"))
        self.assertEqual(out.returncode, 1)
        self.assertIn("No such file", out.stderr)
        # The replay's processes are gone, whatever happened.
        ps = self.run_ctl("ps")
        self.assertNotIn("replay", ps.stdout)

    def test_progress_line_only_on_a_terminal_and_real_from_the_first(self):
        trace = self.record_trace()
        _, accesses = distinct_pages(trace)
        pid, fd = pty.fork()
        if pid == 0:
            # stdout to /dev/null; stderr stays the terminal.
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.execv(cowctl_binary(), [cowctl_binary(), "-s", self.daemon.socket_path,
                                       "replay", trace])
        chunks = []
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        seen = b"".join(chunks).decode()
        ticks = re.findall(r"\r\x1b\[K(\d+) accesses, line (\d+), (\d+)%", seen)
        self.assertTrue(ticks, repr(seen[:200]))
        for done, line, pct in ticks:
            # Every tick, the first included, shows figures of the run itself.
            self.assertGreater(int(done), 0)
            self.assertLessEqual(int(done), accesses)
            self.assertGreaterEqual(int(line), int(done))
            self.assertLessEqual(int(pct), 100)
        self.assertTrue(seen.endswith("\r\x1b[K"), "the line is cleared at the end")

    def compare(self, *args):
        svg = os.path.join(self.tmp.name, "belady.svg")
        # The trace stores: evicted pages hold data and go to swap.
        with cowdtest.Daemon("--memory", "1M", "--swap-size", "1M") as d:
            out = subprocess.run([cowctl_binary(), "-s", d.socket_path, "replay", BELADY,
                                  "--compare", *args, "--svg", svg],
                                 capture_output=True, text=True, timeout=120)
        if out.returncode != 0 and "need per-process limits" in out.stderr:
            self.skipTest("this daemon's engine has no per-process limits yet")
        self.assertEqual(out.returncode, 0, out.stderr)
        rows = [line.split("\t") for line in out.stdout.strip().splitlines()]
        self.assertEqual(rows[0][:3], ["policy", "frames", "faults"])
        faults = {(r[0], int(r[1])): int(r[2]) for r in rows[1:]}
        return faults, svg

    def test_belady_anomaly_for_fifo_not_lru_or_clock(self):
        faults, svg = self.compare("fifo,lru,clock", "1", "2", "3", "4", "5")
        self.assertEqual(faults[("fifo", 3)], 9)
        self.assertEqual(faults[("fifo", 4)], 10)
        self.assertEqual(faults[("lru", 3)], 10)
        self.assertEqual(faults[("lru", 4)], 8)
        for p in ("fifo", "lru", "clock"):
            self.assertEqual(faults[(p, 1)], 12)
            self.assertEqual(faults[(p, 5)], 5)  # every page fits: first touches only
        for p in ("lru", "clock"):
            for n in range(1, 5):
                self.assertLessEqual(faults[(p, n + 1)], faults[(p, n)], (p, n))
        # One line per policy, one point per frame count.
        root = ET.parse(svg).getroot()
        ns = "{http://www.w3.org/2000/svg}"
        lines = root.findall(ns + "polyline")
        self.assertEqual(len(lines), 3)
        for pl in lines:
            self.assertEqual(len(pl.get("points").split()), 5)

    def test_compare_needs_a_file_and_known_policies(self):
        out = self.run_ctl("replay", "-", "--compare", "fifo", "3", stdin=" L 1000,1\n")
        self.assertEqual(out.returncode, 2)
        self.assertIn("give a file", out.stderr)
        out = self.run_ctl("replay", BELADY, "--compare", "belady", "3")
        self.assertEqual(out.returncode, 2)
        self.assertIn("unknown policy 'belady'", out.stderr)
        out = self.run_ctl("replay", BELADY, "--compare", "fifo", "0")
        self.assertIn("frame counts start at 1", out.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
