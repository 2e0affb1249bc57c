#!/usr/bin/env python3
"""State across a restart: with a state directory, a clean stop saves the
simulated state and the next start restores it exactly; a damaged checkpoint
stops the daemon from starting and is left in place."""
import os
import shutil
import tempfile
import unittest

import cowdtest
from cowdtest import code_name

A = 0x10000
STAT_FIELDS = ("rss_pages", "pss_bytes", "uss_pages", "shared_pages", "zero_pages", "maps",
               "vsize_bytes", "faults_cow_copy", "faults_zero_fill", "tlb_hits", "tlb_misses",
               "pt_bytes")
SYS_FIELDS = ("frames_used", "zero_page_maps", "cow_copies", "cow_reuses", "zero_fills",
              "bytes_saved", "pt_nodes", "procs", "procs_created")


def ok(resp):
    assert code_name(resp) == "OK", resp.status.message
    return resp


class Restart(unittest.TestCase):
    def setUp(self):
        self.state = tempfile.mkdtemp(prefix="cowd-state-")

    def tearDown(self):
        shutil.rmtree(self.state, ignore_errors=True)

    def daemon(self):
        return cowdtest.Daemon("--state-dir", self.state, "--memory", "16M")

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

    def test_a_damaged_checkpoint_stops_the_start_and_is_kept(self):
        with self.daemon() as d:
            w = d.connect()
            ok(w.call(spawn={"name": "precious"}))
            w.close()
        path = os.path.join(self.state, "cowd.checkpoint")
        with open(path, "r+b") as f:
            f.seek(40)
            byte = f.read(1)
            f.seek(40)
            f.write(bytes([byte[0] ^ 0x10]))
        damaged = open(path, "rb").read()

        d = self.daemon()
        with self.assertRaises(AssertionError) as failed:
            d.start()
        self.assertIn("refusing to start", str(failed.exception))
        self.assertIn("cowd.checkpoint", str(failed.exception))
        d.stop(check=False)
        self.assertEqual(open(path, "rb").read(), damaged, "the checkpoint was touched")


if __name__ == "__main__":
    unittest.main(verbosity=2)
