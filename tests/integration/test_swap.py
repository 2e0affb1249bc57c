#!/usr/bin/env python3
"""Swap through the daemon: the swap file's place and permissions, and a
swap file that cannot be written (/dev/full, a full 16 KiB tmpfs) giving
typed errors with every page's data still right."""
import os
import shutil
import stat
import subprocess
import tempfile
import unittest

import cowdtest
from cowdtest import code_name

PAGE = 4096
FRAMES = 16  # --memory 64K


def page_data(i):
    return bytes([(i * 37 + j) % 251 for j in range(PAGE)])


class SwapFile(unittest.TestCase):
    def test_default_file_is_private_in_the_state_directory(self):
        with tempfile.TemporaryDirectory(prefix="cowd-swap-") as state:
            with cowdtest.Daemon("--state-dir", state, "--swap-size", "1M") as d:
                path = os.path.join(state, "cowd.swap")
                st = os.stat(path)
                self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
                self.assertEqual(st.st_size, 1 << 20)
                w = d.connect()
                s = w.call(sys_stats={}).sys_stats
                if s.swap_slots_total:
                    self.assertEqual(s.swap_slots_total, 256)
                w.close()

    def test_bad_swap_settings_are_refused_with_the_key(self):
        for args, says in ((["--swap-size", "5000"], "whole number of 4096-byte pages"),
                           (["--swap-policy", "belady"], "not clock, fifo or lru"),
                           (["--oom-kill", "maybe"], "not true or false"),
                           (["--swap-size", "1M", "--swap-file", "/nonexistent/dir/x"],
                            "/nonexistent/dir/x")):
            with tempfile.TemporaryDirectory(prefix="cowd-swap-") as tmp:
                out = subprocess.run([cowdtest.daemon_binary(), "--socket",
                                      os.path.join(tmp, "cowd.sock")] + args,
                                     capture_output=True, text=True, timeout=30)
            self.assertNotEqual(out.returncode, 0, args)
            self.assertIn(says, out.stderr, args)


class Pressure(unittest.TestCase):
    """Memory of 16 frames with swap behind it."""

    def test_larger_than_memory_survives_a_restart(self):
        with tempfile.TemporaryDirectory(prefix="cowd-swap-") as state:
            args = ("--memory", "64K", "--swap-size", "256K", "--state-dir", state)
            with cowdtest.Daemon(*args) as d:
                w = d.connect()
                if w.call(sys_stats={}).sys_stats.swap_slots_total == 0:
                    w.close()
                    self.skipTest("this daemon's engine does not swap yet")
                pid = w.call(spawn={"name": "big"}).spawn.pid
                addr = w.call(mmap={"pid": pid, "length": 2 * FRAMES * PAGE,
                                    "prot": 3}).mmap.addr
                for i in range(2 * FRAMES):
                    resp = w.call(write={"pid": pid, "addr": addr + i * PAGE,
                                         "data": page_data(i)})
                    self.assertEqual(code_name(resp), "OK", resp.status.message)
                s = w.call(sys_stats={}).sys_stats
                self.assertGreaterEqual(s.swap_outs, FRAMES)
                ps = w.call(proc_stats={"pid": pid}).proc_stats
                self.assertGreater(ps.swapped_pages, 0)
                pm = w.call(page_map={"pid": pid, "addr": addr, "length": 2 * FRAMES * PAGE})
                swapped = [p for p in pm.page_map.pages if p.swapped]
                self.assertEqual(len(swapped), ps.swapped_pages)
                self.assertTrue(all(not p.present for p in swapped))
                self.assertEqual(len({p.swap_slot for p in swapped}), len(swapped))
                # cowctl pagemap shows each swapped page with its slot.
                out = subprocess.run([os.environ["COWCTL_BIN"], "-s", d.socket_path, "pagemap",
                                      str(pid)], capture_output=True, text=True, timeout=60)
                self.assertEqual(out.returncode, 0, out.stderr)
                rows = [line.split("\t") for line in out.stdout.splitlines()[1:]]
                shown = {int(r[0], 16): r[2] for r in rows if r[4] == "swapped"}
                self.assertEqual(shown, {p.addr: "swap:%d" % p.swap_slot for p in swapped})
                w.close()
            # A clean stop saved the swapped pages too; they come back after the restart.
            with cowdtest.Daemon(*args) as d:
                w = d.connect()
                for i in range(2 * FRAMES):
                    resp = w.call(read={"pid": pid, "addr": addr + i * PAGE, "length": PAGE})
                    self.assertEqual(code_name(resp), "OK", resp.status.message)
                    self.assertEqual(resp.read.data, page_data(i), "page %d" % i)
                self.assertGreater(w.call(proc_stats={"pid": pid}).proc_stats.faults_major, 0)
                w.close()

    def memory_and_swap_full(self, *extra):
        d = cowdtest.Daemon("--memory", "64K", "--swap-size", "64K", *extra)
        d.start()
        w = d.connect()
        if w.call(sys_stats={}).sys_stats.swap_slots_total == 0:
            w.close()
            d.stop()
            self.skipTest("this daemon's engine does not swap yet")
        return d, w

    def test_memory_and_swap_full_is_resource_exhausted_and_changes_nothing(self):
        d, w = self.memory_and_swap_full()
        pid = w.call(spawn={"name": "hog"}).spawn.pid
        addr = w.call(mmap={"pid": pid, "length": 4 * FRAMES * PAGE, "prot": 3}).mmap.addr
        refused = None
        for i in range(4 * FRAMES):
            resp = w.call(write={"pid": pid, "addr": addr + i * PAGE, "data": page_data(i)})
            if code_name(resp) != "OK":
                refused = (i, resp)
                break
        self.assertIsNotNone(refused)
        i, resp = refused
        self.assertEqual(code_name(resp), "RESOURCE_EXHAUSTED", resp.status.message)
        before = w.call(sys_stats={}).sys_stats
        resp = w.call(write={"pid": pid, "addr": addr + i * PAGE, "data": page_data(i)})
        self.assertEqual(code_name(resp), "RESOURCE_EXHAUSTED")
        after = w.call(sys_stats={}).sys_stats
        self.assertEqual(after.frames_used, before.frames_used)
        self.assertEqual(after.swap_slots_used, before.swap_slots_used)
        self.assertEqual(after.oom_kills, 0)  # off by default
        w.close()
        d.stop()

    def test_oom_killer_ends_the_largest_and_says_so(self):
        d, w = self.memory_and_swap_full("--oom-kill", "true")
        big = w.call(spawn={"name": "big"}).spawn.pid
        small = w.call(spawn={"name": "small"}).spawn.pid
        a = w.call(mmap={"pid": big, "length": 4 * FRAMES * PAGE, "prot": 3}).mmap.addr
        b = w.call(mmap={"pid": small, "length": 4 * FRAMES * PAGE, "prot": 3}).mmap.addr
        for i in range(2 * FRAMES - 4):
            w.call(write={"pid": big, "addr": a + i * PAGE, "data": page_data(i)})
        for i in range(8):
            w.call(write={"pid": small, "addr": b + i * PAGE, "data": page_data(i)})
        s = w.call(sys_stats={}).sys_stats
        self.assertGreaterEqual(s.oom_kills, 1)
        self.assertEqual(code_name(w.call(proc_stats={"pid": big})), "NOT_FOUND")
        # The survivor's pages are all there.
        for i in range(8):
            resp = w.call(read={"pid": small, "addr": b + i * PAGE, "length": PAGE})
            self.assertEqual(code_name(resp), "OK", resp.status.message)
            self.assertEqual(resp.read.data, page_data(i))
        # Logged before the reply that followed the kill was sent.
        log = d.log()
        w.close()
        d.stop()
        self.assertIn("killed process %d, the largest" % big, log)


class FailingSwap(unittest.TestCase):
    """Memory of 16 frames and a swap file that refuses writes: pages are
    written until a frame is needed and none can be freed, which is a typed
    error; every page the daemon accepted reads back exactly."""

    def fill_until_refused(self, w, pid, addr, pages):
        accepted = 0
        for i in range(pages):
            resp = w.call(write={"pid": pid, "addr": addr + i * PAGE, "data": page_data(i)})
            if code_name(resp) != "OK":
                return accepted, resp
            accepted += 1
        return accepted, None

    def check_failing_swap(self, swap_file):
        with cowdtest.Daemon("--memory", "64K", "--swap-size", "1M",
                             "--swap-file", swap_file) as d:
            w = d.connect()
            if w.call(sys_stats={}).sys_stats.swap_slots_total == 0:
                w.close()
                self.skipTest("this daemon's engine does not swap yet")
            pid = w.call(spawn={"name": "pressure"}).spawn.pid
            addr = w.call(mmap={"pid": pid, "length": 4 * FRAMES * PAGE, "prot": 3}).mmap.addr
            accepted, refused = self.fill_until_refused(w, pid, addr, 4 * FRAMES)
            self.assertIsNotNone(refused, "a swap file that cannot be written ran out")
            self.assertEqual(code_name(refused), "RESOURCE_EXHAUSTED", refused.status.message)
            self.assertIn("no space left", refused.status.message)
            self.assertGreaterEqual(accepted, FRAMES - 1)
            # Nothing was corrupted: every accepted page reads right, or is refused
            # with a typed code when bringing it back needs a frame nothing can free.
            right = 0
            for i in range(accepted):
                resp = w.call(read={"pid": pid, "addr": addr + i * PAGE, "length": PAGE})
                if code_name(resp) == "OK":
                    self.assertEqual(resp.read.data, page_data(i), "page %d" % i)
                    right += 1
                else:
                    self.assertIn(code_name(resp), ("RESOURCE_EXHAUSTED", "UNAVAILABLE"))
            self.assertGreater(right, 0)
            s = w.call(sys_stats={}).sys_stats
            self.assertGreater(s.swap_errors, 0)
            # The refused page was not half written either: it still reads as zeros or fails.
            resp = w.call(read={"pid": pid, "addr": addr + accepted * PAGE, "length": PAGE})
            if code_name(resp) == "OK":
                self.assertEqual(resp.read.data, bytes(PAGE))
            self.assertEqual(code_name(w.call(exit={"pid": pid})), "OK")
            w.close()

    def test_dev_full(self):
        if not os.access("/dev/full", os.W_OK):
            self.skipTest("no /dev/full")
        self.check_failing_swap("/dev/full")

    def test_full_small_filesystem(self):
        if os.geteuid() != 0 or not shutil.which("mount"):
            self.skipTest("needs root to mount a small tmpfs")
        with tempfile.TemporaryDirectory(prefix="cowd-swapfs-") as mnt:
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", mnt], check=True)
            try:
                self.check_failing_swap(os.path.join(mnt, "cowd.swap"))
            finally:
                subprocess.run(["umount", mnt], check=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
