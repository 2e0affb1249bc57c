#!/usr/bin/env python3
"""cowctl against a real daemon: its output modes, its failures, and the
structure of the pictures 'cowctl map' draws."""
import json
import os
import shutil
import subprocess
import unittest

import cowdtest


def cowctl_binary():
    path = os.environ.get("COWCTL_BIN")
    if not path:
        raise SystemExit("COWCTL_BIN must name the cowctl binary under test")
    return path


class Cowctl(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = cowdtest.Daemon("--memory", "16M")
        cls.daemon.start()

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()

    def run_ctl(self, *args, check=True, stdin=None):
        out = subprocess.run([cowctl_binary(), "-s", self.daemon.socket_path] + list(args),
                             capture_output=True, text=True, timeout=60, input=stdin)
        if check:
            self.assertEqual(out.returncode, 0, out.stderr)
        return out

    def ctl(self, *args):
        return self.run_ctl(*args).stdout.strip()

    def test_piped_output_is_plain_and_json_parses(self):
        pid = self.ctl("spawn", "plain")
        stats = dict(line.split("\t") for line in self.ctl("stats").splitlines())
        self.assertEqual(stats["page_size"], "4096")
        self.assertEqual(int(stats["frames_total"]), 4096)
        doc = json.loads(self.ctl("--json", "stats", pid))
        self.assertEqual(doc["pid"], int(pid))
        self.assertEqual(doc["name"], "plain")
        self.ctl("exit", pid)

    def test_failure_exits_nonzero_with_the_error_on_stderr(self):
        pid = self.ctl("spawn")
        addr = self.ctl("mmap", pid, "4K", "r")
        out = self.run_ctl("write", pid, addr, "x", check=False)
        self.assertNotEqual(out.returncode, 0)
        self.assertEqual(out.stdout, "")
        self.assertIn("SEGV_ACCERR at %s" % addr, out.stderr)
        out = self.run_ctl("fork", "999999", check=False)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("NOT_FOUND", out.stderr)
        self.ctl("exit", pid)

    def test_read_and_write_formats(self):
        pid = self.ctl("spawn")
        addr = self.ctl("mmap", pid, "4K", "rw")
        self.ctl("write", pid, addr, "--hex", "68:69:21")
        self.assertEqual(self.ctl("read", pid, addr, "3", "--string"), "hi!")
        raw = subprocess.run([cowctl_binary(), "-s", self.daemon.socket_path, "read", pid, addr,
                              "4", "--raw"], capture_output=True, timeout=60).stdout
        self.assertEqual(raw, b"hi!\0")
        self.assertIn("68 69 21 00", self.ctl("read", pid, addr, "4"))
        self.ctl("exit", pid)

    def test_script_from_stdin(self):
        out = self.run_ctl("run", "-", stdin='$p = spawn\n$m = mmap $p 4K rw\n'
                           'write $p $m "ok"\nexpect read $p $m 2 == "ok"\nexit $p\n')
        self.assertEqual(out.returncode, 0)
        bad = self.run_ctl("run", "-", stdin="spawn\nexpect sys.procs == 12345\n", check=False)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("<stdin>:2", bad.stderr)

    @unittest.skipUnless(shutil.which("dot"), "graphviz is not installed")
    def test_map_dot_matches_the_page_maps(self):
        parent = self.ctl("spawn", "parent")
        addr = int(self.ctl("mmap", parent, "12K", "rw"), 16)
        self.ctl("write", parent, hex(addr), "shared")
        self.ctl("write", parent, hex(addr + 4096), "copied")
        self.ctl("read", parent, hex(addr + 8192), "1")  # the zero page
        kid = self.ctl("fork", parent)
        self.ctl("write", kid, hex(addr + 4096), "mine")
        pids = [parent, kid]

        dot = self.ctl("map", *pids, "--dot")
        laid = json.loads(subprocess.run(["dot", "-Tjson"], input=dot, capture_output=True,
                                         text=True, check=True, timeout=60).stdout)
        names = [o["name"] for o in laid["objects"]]
        for pid in pids:
            self.assertIn("cluster_p%s" % pid, names)
        self.assertIn("zero", names)

        edges = {}
        for e in laid["edges"]:
            tail, head = names[e["tail"]], names[e["head"]]
            edges[(tail, e["tailport"].split(":")[0])] = (head, e.get("style", ""))

        frames_seen = set()
        for pid in pids:
            pages = json.loads(self.ctl("--json", "pagemap", pid))
            for page in pages:
                if not page["present"]:
                    continue
                key = ("p%s" % pid, "a%x" % page["addr"])
                self.assertIn(key, edges, "no edge for pid %s page %#x" % (pid, page["addr"]))
                head, style = edges.pop(key)
                if page["zero"]:
                    self.assertEqual(head, "zero")
                    self.assertEqual(style, "dotted")
                    continue
                self.assertEqual(head, "f%d" % page["frame"])
                self.assertEqual(style == "dashed", page["cow"])
                frames_seen.add(page["frame"])
                label = next(o for o in laid["objects"] if o["name"] == head)["label"]
                if page["sharers"] > 1:
                    self.assertIn("shared by %d" % page["sharers"], label)
        self.assertEqual(edges, {}, "edges for pages the page maps do not show")
        frame_nodes = {n for n in names if n.startswith("f") and n[1:].isdigit()}
        self.assertEqual(frame_nodes, {"f%d" % f for f in frames_seen})
        for pid in pids:
            self.ctl("exit", pid)


if __name__ == "__main__":
    unittest.main(verbosity=2)
