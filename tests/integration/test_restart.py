#!/usr/bin/env python3
"""State across a restart: with a state directory, a clean stop saves the
simulated state and the next start restores it exactly; so does a checkpoint
taken on demand, even when the daemon is then killed with SIGKILL. A
checkpoint that cannot be written (a full disk) is a typed error that keeps
the previous one; a damaged or truncated checkpoint stops the daemon from
starting and is left in place. Swapped pages come back too: the checkpoint
carries their contents, and the restored daemon writes them to its swap file."""
import os
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import zlib

import cowdtest
from cowdtest import code_name, ok, read_bytes

A = 0x10000
STAT_FIELDS = ("rss_pages", "pss_bytes", "uss_pages", "shared_pages", "zero_pages", "maps",
               "vsize_bytes", "faults_cow_copy", "faults_zero_fill", "tlb_hits", "tlb_misses",
               "pt_bytes")
SYS_FIELDS = ("frames_used", "zero_page_maps", "cow_copies", "cow_reuses", "zero_fills",
              "bytes_saved", "pt_nodes", "procs", "procs_created")


class Restart(unittest.TestCase):
    def setUp(self):
        self.state = tempfile.mkdtemp(prefix="cowd-state-")

    def tearDown(self):
        shutil.rmtree(self.state, ignore_errors=True)

    def daemon(self, *extra):
        return cowdtest.Daemon("--state-dir", self.state, "--memory", "16M", *extra)

    def precious_checkpoint(self):
        """A checkpoint of one process named precious, written at a clean stop; its path."""
        with self.daemon() as d:
            w = d.connect()
            ok(w.call(spawn={"name": "precious"}))
            w.close()
        return os.path.join(self.state, "cowd.checkpoint")

    def refused_start(self):
        """Starts a daemon that must refuse to start; returns what the failure said."""
        d = self.daemon()
        with self.assertRaises(AssertionError) as failed:
            d.start()
        d.stop(check=False)
        return str(failed.exception)

    def fork_tree(self, w):
        """A parent with private, shared and zero-page memory, two children and a
        grandchild: shared frames, pending copy-on-write, broken copy-on-write."""
        t = ok(w.call(spawn={"name": "teacher"})).spawn.pid
        ok(w.call(mmap={"pid": t, "length": 3 * 4096, "prot": 3}))
        ok(w.call(mmap={"pid": t, "length": 4096, "prot": 3, "shared": True}))
        ok(w.call(write={"pid": t, "addr": A, "data": b"handout"}))
        ok(w.call(write={"pid": t, "addr": A + 4096, "data": b"template"}))
        ok(w.call(read={"pid": t, "addr": A + 8192, "length": 1}))  # the zero page
        ok(w.call(write={"pid": t, "addr": A + 3 * 4096, "data": b"shared"}))
        kid = ok(w.call(fork={"pid": t})).fork.child_pid
        ok(w.call(fork={"pid": t}))
        ok(w.call(write={"pid": kid, "addr": A + 4096, "data": b"answer"}))
        grandkid = ok(w.call(fork={"pid": kid})).fork.child_pid
        ok(w.call(write={"pid": grandkid, "addr": A, "data": b"mine"}))
        return t, kid, grandkid

    def snapshot(self, w):
        """Everything a client sees, in a form to compare (no TLB-moving reads)."""
        sys_stats = ok(w.call(sys_stats={})).sys_stats
        out = {"sys": {f: getattr(sys_stats, f) for f in SYS_FIELDS}, "procs": {}}
        for p in ok(w.call(list_procs={})).list_procs.procs:
            st = ok(w.call(proc_stats={"pid": p.pid})).proc_stats
            pm = ok(w.call(page_map={"pid": p.pid, "addr": A, "length": 4 * 4096})).page_map
            out["procs"][p.pid] = {
                "ppid": p.ppid, "name": p.name,
                "stats": {f: getattr(st, f) for f in STAT_FIELDS},
                "pages": [(e.present, e.frame, e.cow, e.zero, e.sharers, e.writable, e.in_tlb)
                          for e in pm.pages],
            }
        return out

    def test_clean_stop_and_start_restore_everything(self):
        with self.daemon() as d:
            w = d.connect()
            t = ok(w.call(spawn={"name": "teacher"})).spawn.pid
            ok(w.call(mmap={"pid": t, "length": 3 * 4096, "prot": 3}))
            ok(w.call(mmap={"pid": t, "length": 4096, "prot": 3, "shared": True}))
            ok(w.call(write={"pid": t, "addr": A, "data": b"handout"}))
            ok(w.call(write={"pid": t, "addr": A + 4096, "data": b"template"}))
            ok(w.call(read={"pid": t, "addr": A + 8192, "length": 1}))  # the zero page
            ok(w.call(write={"pid": t, "addr": A + 3 * 4096, "data": b"shared"}))
            kid = ok(w.call(fork={"pid": t})).fork.child_pid
            ok(w.call(fork={"pid": t}))
            ok(w.call(write={"pid": kid, "addr": A + 4096, "data": b"answer"}))
            before = self.snapshot(w)
            w.close()
        self.assertTrue(os.path.exists(os.path.join(self.state, "cowd.checkpoint")))

        with self.daemon() as d:
            w = d.connect()
            self.assertEqual(self.snapshot(w), before)
            self.assertIn("restored 3 processes", d.log())
            # Contents and pending copy-on-write survive too.
            self.assertEqual(ok(w.call(read={"pid": kid, "addr": A + 4096, "length": 6}))
                             .read.data, b"answer")
            self.assertEqual(ok(w.call(read={"pid": t, "addr": A + 4096, "length": 8}))
                             .read.data, b"template")
            copies = before["sys"]["cow_copies"]
            ok(w.call(write={"pid": kid, "addr": A, "data": b"x"}))
            self.assertEqual(ok(w.call(sys_stats={})).sys_stats.cow_copies, copies + 1)
            ok(w.call(write={"pid": kid, "addr": A + 3 * 4096, "data": b"seen"}))
            self.assertEqual(ok(w.call(read={"pid": t, "addr": A + 3 * 4096, "length": 4}))
                             .read.data, b"seen")
            # Pids keep growing from where they were.
            self.assertGreater(ok(w.call(spawn={})).spawn.pid, kid + 1)
            w.close()

    def test_checkpoint_on_demand_survives_sigkill(self):
        d = self.daemon()
        d.start()
        try:
            w = d.connect()
            t, kid, grandkid = self.fork_tree(w)
            before = self.snapshot(w)
            resp = ok(w.call(checkpoint={}))
            self.assertGreater(resp.checkpoint.bytes, 3 * 4096)
            self.assertEqual(os.path.getsize(os.path.join(self.state, "cowd.checkpoint")),
                             resp.checkpoint.bytes)
            stats = ok(w.call(sys_stats={})).sys_stats
            self.assertEqual(stats.checkpoints_total, 1)
            self.assertEqual(stats.checkpoint_failures, 0)
            self.assertEqual(stats.last_checkpoint_bytes, resp.checkpoint.bytes)
            self.assertGreater(stats.last_checkpoint_unix_seconds, 0)
            # Changes after the checkpoint are lost with the kill; the checkpoint is not.
            ok(w.call(write={"pid": t, "addr": A, "data": b"too late"}))
            w.close()
            d.kill()
        finally:
            d.stop(check=False)
        self.assertFalse(os.path.exists(os.path.join(self.state, "cowd.checkpoint.tmp")))

        with self.daemon() as d:
            w = d.connect()
            self.assertEqual(self.snapshot(w), before)
            self.assertIn("restored 4 processes", d.log())
            self.assertEqual(ok(w.call(read={"pid": t, "addr": A, "length": 7})).read.data,
                             b"handout")
            self.assertEqual(ok(w.call(read={"pid": grandkid, "addr": A + 4096, "length": 6}))
                             .read.data, b"answer")
            w.close()

    def test_swapped_pages_survive_a_checkpoint_and_sigkill(self):
        """16 frames and 256 slots of swap, 40 written pages in a fork tree: most
        pages are in swap, some shared by parent and child, some copied."""
        pages = 40
        args = ("--memory", "64K", "--swap-size", "1M")
        d = cowdtest.Daemon("--state-dir", self.state, *args)
        d.start()
        try:
            w = d.connect()
            t = ok(w.call(spawn={"name": "big"})).spawn.pid
            ok(w.call(mmap={"pid": t, "addr": A, "length": (pages + 1) * 4096, "prot": 3}))
            for i in range(pages):
                ok(w.call(write={"pid": t, "addr": A + i * 4096, "data": b"page %02d" % i}))
            ok(w.call(read={"pid": t, "addr": A + pages * 4096, "length": 1}))  # zero page
            kid = ok(w.call(fork={"pid": t})).fork.child_pid
            for i in range(0, pages, 4):  # the child's copies, the rest still shared
                ok(w.call(write={"pid": kid, "addr": A + i * 4096, "data": b"kid  %02d" % i}))
            before = self.swap_snapshot(w, pages + 1)
            swapped = sum(e[0] for e in before["pages"][t])
            self.assertGreater(swapped, pages // 2, "the test should swap most pages")
            self.assertGreater(before["sys"]["swap_slots_used"], 0)
            ok(w.call(checkpoint={}))
            w.close()
            d.kill()
        finally:
            d.stop(check=False)

        with cowdtest.Daemon("--state-dir", self.state, *args) as d:
            w = d.connect()
            self.assertEqual(self.swap_snapshot(w, pages + 1), before)
            for i in range(pages):
                want_kid = (b"kid  %02d" if i % 4 == 0 else b"page %02d") % i
                self.assertEqual(ok(w.call(read={"pid": kid, "addr": A + i * 4096,
                                                 "length": 7})).read.data, want_kid)
                self.assertEqual(ok(w.call(read={"pid": t, "addr": A + i * 4096,
                                                 "length": 7})).read.data, b"page %02d" % i)
            self.assertGreater(ok(w.call(sys_stats={})).sys_stats.swap_ins,
                               before["sys"]["swap_ins"])
            w.close()

    def swap_snapshot(self, w, npages):
        """What a client sees of swap: statistics, and each page's swap slot and sharing."""
        ss = ok(w.call(sys_stats={})).sys_stats
        out = {"sys": {f: getattr(ss, f) for f in SYS_FIELDS + (
            "swap_slots_used", "swap_ins", "swap_outs", "evictions", "swap_cache_hits")},
            "pages": {}, "stats": {}}
        for p in ok(w.call(list_procs={})).list_procs.procs:
            st = ok(w.call(proc_stats={"pid": p.pid})).proc_stats
            out["stats"][p.pid] = {f: getattr(st, f) for f in STAT_FIELDS + (
                "faults_major", "swapped_pages")}
            pm = ok(w.call(page_map={"pid": p.pid, "addr": A, "length": npages * 4096}))
            out["pages"][p.pid] = [(e.swapped, e.swap_slot, e.present, e.frame, e.cow,
                                    e.zero, e.sharers) for e in pm.page_map.pages]
        return out

    def test_periodic_checkpoints(self):
        with self.daemon("--checkpoint-interval", "1") as d:
            w = d.connect()
            self.fork_tree(w)
            path = os.path.join(self.state, "cowd.checkpoint")
            # The timer's first checkpoint is due a second after the start.
            deadline = time.monotonic() + 20
            while ok(w.call(sys_stats={})).sys_stats.checkpoints_total < 1:
                self.assertLess(time.monotonic(), deadline, d.log())
                select.select([], [], [], 0.1)
            self.assertTrue(os.path.exists(path))
            self.assertIn("checkpoint (periodic)", d.log())
            w.close()

    def test_checkpoint_needs_a_state_directory(self):
        with cowdtest.Daemon() as d:
            w = d.connect()
            resp = w.call(checkpoint={})
            self.assertEqual(code_name(resp), "FAILED_PRECONDITION")
            self.assertIn("keeps no state", resp.status.message)
            w.close()

    def test_only_the_operator_may_checkpoint(self):
        if os.geteuid() != 0 or not shutil.which("setpriv"):
            self.skipTest("needs root and setpriv to run a client as another uid")
        with cowdtest.Daemon("--state-dir", self.state, world_accessible=True) as d:
            out = subprocess.run(
                ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                 os.environ["COWCTL_BIN"], "-s", d.socket_path, "checkpoint"],
                capture_output=True, text=True, timeout=60)
            self.assertNotEqual(out.returncode, 0)
            self.assertIn("only uid 0 or the daemon's uid", out.stderr)
            out = subprocess.run([os.environ["COWCTL_BIN"], "-s", d.socket_path, "checkpoint"],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn("bytes", out.stdout)
        self.assertTrue(os.path.exists(os.path.join(self.state, "cowd.checkpoint")))

    def test_full_disk_is_a_typed_error_and_keeps_the_old_checkpoint(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to mount a small tmpfs")
        mnt = tempfile.mkdtemp(prefix="cowd-full-")
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt],
                          capture_output=True).returncode != 0:
            os.rmdir(mnt)
            self.skipTest("mount refused")
        try:
            with cowdtest.Daemon("--state-dir", mnt, "--memory", "16M") as d:
                w = d.connect()
                pid = ok(w.call(spawn={"name": "small"})).spawn.pid
                ok(w.call(checkpoint={}))
                path = os.path.join(mnt, "cowd.checkpoint")
                old = read_bytes(path)
                # 256 distinct pages: a megabyte, far more than the 64K filesystem holds.
                big = ok(w.call(spawn={"name": "big"})).spawn.pid
                addr = ok(w.call(mmap={"pid": big, "length": 256 * 4096, "prot": 3})).mmap.addr
                for i in range(256):
                    ok(w.call(write={"pid": big, "addr": addr + i * 4096,
                                     "data": b"%d" % i * 64}))
                resp = w.call(checkpoint={})
                self.assertEqual(code_name(resp), "RESOURCE_EXHAUSTED")
                self.assertIn("No space left on device", resp.status.message)
                self.assertIn("the previous one is kept", resp.status.message)
                self.assertEqual(read_bytes(path), old)
                # No temporary file left behind: the checkpoint and the data directory.
                self.assertEqual(sorted(os.listdir(mnt)), ["cowd.checkpoint", "files"])
                # Still serving, and the failure is counted.
                self.assertEqual(ok(w.call(read={"pid": big, "addr": addr, "length": 1}))
                                 .read.data, b"0")
                stats = ok(w.call(sys_stats={})).sys_stats
                self.assertEqual((stats.checkpoints_total, stats.checkpoint_failures), (1, 1))
                # Once the big process is gone, the checkpoint at stop fits again.
                ok(w.call(exit={"pid": big}))
                w.close()
            with cowdtest.Daemon("--state-dir", mnt, "--memory", "16M") as d:
                w = d.connect()
                procs = ok(w.call(list_procs={})).list_procs.procs
                self.assertEqual([p.pid for p in procs], [pid])
                w.close()
        finally:
            subprocess.run(["umount", mnt], check=False)
            os.rmdir(mnt)

    def test_a_truncated_checkpoint_stops_the_start_and_is_kept(self):
        with self.daemon() as d:
            w = d.connect()
            self.fork_tree(w)
            w.close()
        path = os.path.join(self.state, "cowd.checkpoint")
        whole = read_bytes(path)
        for size in (len(whole) // 2, 10, 0):
            with open(path, "wb") as f:
                f.write(whole[:size])
            refused = self.refused_start()
            self.assertIn("refusing to start", refused)
            self.assertIn("cowd.checkpoint", refused)
            self.assertEqual(os.path.getsize(path), size, "the checkpoint was touched")
            print("truncated to %d bytes: %s" % (size, [l for l in refused
                                                        .splitlines() if "refusing" in l][0]))

    def test_a_checkpoint_of_another_version_stops_the_start_and_is_kept(self):
        path = self.precious_checkpoint()
        data = read_bytes(path)
        self.assertEqual(data[:8], b"COWDCKPT")
        # A well-formed header of a later format than this daemon's, its checksum right.
        self.assertEqual(struct.unpack("<I", data[12:16])[0], zlib.crc32(data[:12]))
        version = struct.unpack("<I", data[8:12])[0]
        head = data[:8] + struct.pack("<I", version + 1)
        forged = head + struct.pack("<I", zlib.crc32(head)) + data[16:]
        with open(path, "wb") as f:
            f.write(forged)
        refused = self.refused_start()
        self.assertIn("checkpoint format version is not supported", refused)
        self.assertIn("refusing to start", refused)
        self.assertEqual(read_bytes(path), forged, "the checkpoint was touched")

    def test_a_damaged_checkpoint_stops_the_start_and_is_kept(self):
        path = self.precious_checkpoint()
        with open(path, "r+b") as f:
            f.seek(40)
            byte = f.read(1)
            f.seek(40)
            f.write(bytes([byte[0] ^ 0x10]))
        damaged = read_bytes(path)

        refused = self.refused_start()
        self.assertIn("refusing to start", refused)
        self.assertIn("cowd.checkpoint", refused)
        self.assertEqual(read_bytes(path), damaged, "the checkpoint was touched")

    def test_start_empty_renames_a_refused_checkpoint_aside_and_keeps_it(self):
        path = self.precious_checkpoint()
        good = read_bytes(path)

        # With a checkpoint that loads, --start-empty changes nothing.
        with self.daemon("--start-empty") as d:
            w = d.connect()
            self.assertEqual([p.name for p in ok(w.call(list_procs={})).list_procs.procs],
                             ["precious"])
            w.close()
        self.assertEqual(cowdtest.state_entries(self.state), ["cowd.checkpoint"])

        refused = []
        for damage in (lambda b: b[:len(b) // 2], lambda b: b[:40] + bytes([b[40] ^ 1]) + b[41:]):
            with open(path, "wb") as f:
                f.write(damage(good))
            bad = read_bytes(path)
            with self.daemon("--start-empty") as d:
                w = d.connect()
                self.assertEqual(list(ok(w.call(list_procs={})).list_procs.procs), [])
                ok(w.call(spawn={"name": "fresh"}))
                w.close()
                log = d.log()
            aside = sorted(set(cowdtest.state_entries(self.state)) - {"cowd.checkpoint"} - set(refused))
            self.assertEqual(len(aside), 1, os.listdir(self.state))
            self.assertRegex(aside[0], r"^cowd\.checkpoint\.refused-\d{8}T\d{6}Z(-\d+)?$")
            self.assertEqual(read_bytes(os.path.join(self.state, aside[0])), bad)
            self.assertIn("--start-empty: the refused checkpoint is kept as %s"
                          % os.path.join(self.state, aside[0]), log)
            refused += aside
        # Neither refused file was overwritten, and the new state is the fresh one.
        self.assertNotEqual(read_bytes(os.path.join(self.state, refused[0])),
                            read_bytes(os.path.join(self.state, refused[1])))
        with self.daemon() as d:
            w = d.connect()
            self.assertEqual([p.name for p in ok(w.call(list_procs={})).list_procs.procs],
                             ["fresh"])
            w.close()

    def test_without_start_empty_the_refusal_names_the_way_out(self):
        path = self.precious_checkpoint()
        with open(path, "r+b") as f:
            f.truncate(100)
        refused = self.refused_start()
        self.assertIn("--start-empty renames the file aside and starts empty",
                      refused)
        self.assertEqual(cowdtest.state_entries(self.state), ["cowd.checkpoint"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
