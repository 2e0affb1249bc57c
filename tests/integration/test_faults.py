#!/usr/bin/env python3
"""Faults injected under a running daemon, and what each must leave behind.

The fault injector (fault_shim.c, preloaded) makes one chosen write, fsync or
rename of a checkpoint, one pwrite of the swap file, or one pwrite or fsync of
a mapped file fail with ENOSPC or EIO. Each gives the client a typed error;
the daemon keeps serving; the previous checkpoint is byte for byte what it
was and no temporary file stays; the next attempt succeeds and a restart
restores it. A mapped file keeps its old bytes when a write-back fails and
has the new ones once a retry succeeds; after a failed fsync the retry
writes the pages again, since the kernel may have dropped them.

Then kill -9 in the middle of load from several connections, with periodic
checkpoints every second and on-demand ones whose replies the test records:
the restart holds every write acknowledged before the last acknowledged
checkpoint was asked for, and each process's memory is exactly what it was
after some prefix of its writes (no torn or mixed state)."""
import contextlib
import os
import shutil
import signal
import tempfile
import threading
import time
import unittest

import cowdtest
from cowdtest import at_gate, code_name, fault_env, has_reply, ok, read_bytes

PG = 4096


class CheckpointFaults(unittest.TestCase):
    def setUp(self):
        self.state = tempfile.mkdtemp(prefix="cowd-state-")
        self.path = os.path.join(self.state, "cowd.checkpoint")

    def tearDown(self):
        shutil.rmtree(self.state, ignore_errors=True)

    @contextlib.contextmanager
    def daemon(self, rules=None):
        d = cowdtest.Daemon("--state-dir", self.state, "--memory", "16M",
                            env=fault_env(rules) if rules else None)
        d.start()
        try:
            yield d
        finally:
            d.stop(check=False)

    def read(self, w, pid, addr, n):
        return ok(w.call(read={"pid": pid, "addr": addr, "length": n})).read.data

    def fail_one_checkpoint(self, rule, code, words, old_kept=True):
        """A checkpoint with rule in force fails with code and words in its message;
        returns the state directory's checkpoint bytes before and after."""
        with self.daemon() as d:  # the previous checkpoint, written at a clean stop
            w = d.connect()
            pid = ok(w.call(spawn={"name": "p"})).spawn.pid
            addr = ok(w.call(mmap={"pid": pid, "length": 64 * PG, "prot": 3})).mmap.addr
            for i in range(64):
                ok(w.call(write={"pid": pid, "addr": addr + i * PG, "data": b"old %d" % i}))
            w.close()
        old = read_bytes(self.path)
        with self.daemon(rule) as d:
            w = d.connect()
            ok(w.call(write={"pid": pid, "addr": addr, "data": b"new"}))
            resp = w.call(checkpoint={})
            self.assertEqual(code_name(resp), code, resp.status.message)
            for word in words:
                self.assertIn(word, resp.status.message)
            if old_kept:
                self.assertEqual(read_bytes(self.path), old, "the previous checkpoint changed")
            self.assertEqual(cowdtest.state_entries(self.state), ["cowd.checkpoint"])
            after = read_bytes(self.path)
            # Still serving; the failure is counted; the next checkpoint works.
            self.assertEqual(self.read(w, pid, addr, 3), b"new")
            stats = ok(w.call(sys_stats={})).sys_stats
            self.assertEqual((stats.checkpoints_total, stats.checkpoint_failures), (0, 1))
            ok(w.call(checkpoint={}))
            w.close()
            d.kill()
        with self.daemon() as d:
            w = d.connect()
            self.assertEqual(self.read(w, pid, addr, 3), b"new")
            self.assertEqual(self.read(w, pid, addr + PG, 5), b"old 1")
            w.close()
        return old, after

    def test_enospc_writing_a_checkpoint(self):
        self.fail_one_checkpoint("write:cowd.checkpoint.tmp:1:ENOSPC", "RESOURCE_EXHAUSTED",
                                 ["No space left on device", "the previous one is kept"])

    def test_eio_writing_a_checkpoint(self):
        self.fail_one_checkpoint("write:cowd.checkpoint.tmp:1:EIO", "UNAVAILABLE",
                                 ["cannot write", "Input/output error"])

    def test_eio_from_fsync_of_a_checkpoint(self):
        self.fail_one_checkpoint("fsync:cowd.checkpoint.tmp:1:EIO", "UNAVAILABLE",
                                 ["cannot write", "Input/output error"])

    def test_eio_from_rename_of_a_checkpoint(self):
        self.fail_one_checkpoint("rename:cowd.checkpoint:1:EIO", "UNAVAILABLE",
                                 ["cannot commit", "Input/output error"])

    def test_edquot_from_fsync_of_a_checkpoint(self):
        self.fail_one_checkpoint("fsync:cowd.checkpoint.tmp:1:EDQUOT", "RESOURCE_EXHAUSTED",
                                 ["Disk quota exceeded"])

    def test_eio_from_fsync_of_the_directory(self):
        # The rename has happened: the new checkpoint is in place and whole, but its
        # durability is unknown, so the request fails rather than promise it.
        name = os.path.basename(self.state)
        old, after = self.fail_one_checkpoint("fsync:%s:2:EIO" % name, "UNAVAILABLE",
                                              ["cannot commit", "Input/output error"],
                                              old_kept=False)
        self.assertNotEqual(after, old)


class SwapFaults(unittest.TestCase):
    def test_eio_writing_the_swap_file(self):
        with cowdtest.Daemon("--memory", "64K", "--swap-size", "1M",
                             env=fault_env("pwrite:cowd.swap:1:EIO")) as d:
            w = d.connect()
            pid = ok(w.call(spawn={"name": "p"})).spawn.pid
            addr = ok(w.call(mmap={"pid": pid, "length": 64 * PG, "prot": 3})).mmap.addr
            failed = None
            for i in range(64):
                resp = w.call(write={"pid": pid, "addr": addr + i * PG, "data": b"page %d" % i})
                if code_name(resp) != "OK":
                    self.assertIsNone(failed, "a second write failed: " + resp.status.message)
                    failed = i
                    self.assertEqual(code_name(resp), "UNAVAILABLE", resp.status.message)
                    self.assertIn("swap", resp.status.message)
                    # Nothing changed: the same write now succeeds.
                    ok(w.call(write={"pid": pid, "addr": addr + i * PG, "data": b"page %d" % i}))
            self.assertIsNotNone(failed, "no write needed the swap file")
            for i in range(64):
                self.assertEqual(ok(w.call(read={"pid": pid, "addr": addr + i * PG,
                                                 "length": len(b"page %d" % i)})).read.data,
                                 b"page %d" % i)
            self.assertGreaterEqual(ok(w.call(sys_stats={})).sys_stats.swap_errors, 1)
            w.close()


class FileMappingFaults(unittest.TestCase):
    OLD = b"o" * (2 * PG)

    def map_shared(self, w):
        """A two-page file, mapped shared read-write into a new process: (pid, addr)."""
        ok(w.call(file_put={"name": "shared.dat", "data": self.OLD}))
        pid = ok(w.call(spawn={"name": "p"})).spawn.pid
        addr = ok(w.call(mmap={"pid": pid, "length": 2 * PG, "prot": 3, "shared": True,
                               "kind": 1, "path": "shared.dat"})).mmap.addr
        return pid, addr

    def msync_fails_then_succeeds(self, rule, file_kept):
        """Both pages of a shared mapping written; the first msync fails with rule in
        force (and, if file_kept, leaves the file as it was), the second succeeds.
        Returns the statistics after the failure and after the success."""
        with cowdtest.Daemon(env=fault_env(rule)) as d:
            w = d.connect()
            pid, addr = self.map_shared(w)
            ok(w.call(write={"pid": pid, "addr": addr, "data": b"new 0"}))
            ok(w.call(write={"pid": pid, "addr": addr + PG, "data": b"new 1"}))
            resp = w.call(msync={"pid": pid, "addr": addr, "length": 2 * PG, "sync": True})
            self.assertEqual(code_name(resp), "UNAVAILABLE", resp.status.message)
            failed = ok(w.call(sys_stats={})).sys_stats
            self.assertGreaterEqual(failed.file_errors, 1)
            if file_kept:
                self.assertEqual(ok(w.call(file_get={"name": "shared.dat", "length": 2 * PG}))
                                 .file_get.data, self.OLD)
            # Still serving, and the mapping holds what was written.
            self.assertEqual(ok(w.call(read={"pid": pid, "addr": addr + PG, "length": 5}))
                             .read.data, b"new 1")
            ok(w.call(msync={"pid": pid, "addr": addr, "length": 2 * PG, "sync": True}))
            done = ok(w.call(sys_stats={})).sys_stats
            got = ok(w.call(file_get={"name": "shared.dat", "length": 2 * PG})).file_get.data
            self.assertEqual(got, b"new 0" + self.OLD[5:PG] + b"new 1" + self.OLD[PG + 5:])
            self.assertEqual(done.dirty_pages, 0)
            w.close()
        return failed, done

    def test_eio_writing_back_a_mapped_file_keeps_its_old_bytes_until_a_retry(self):
        failed, done = self.msync_fails_then_succeeds("pwrite:/shared.dat:1:EIO", True)
        # The first page's write failed, so nothing was written and both stay dirty.
        self.assertEqual((failed.writebacks, failed.dirty_pages), (0, 2))
        self.assertEqual(done.writebacks, 2)

    def test_enospc_writing_back_a_mapped_file_is_resource_exhausted(self):
        with cowdtest.Daemon(env=fault_env("pwrite:/shared.dat:1:ENOSPC")) as d:
            w = d.connect()
            pid, addr = self.map_shared(w)
            ok(w.call(write={"pid": pid, "addr": addr, "data": b"new 0"}))
            resp = w.call(munmap={"pid": pid, "addr": addr, "length": 2 * PG})
            self.assertEqual(code_name(resp), "RESOURCE_EXHAUSTED", resp.status.message)
            # The munmap did nothing: the mapping is there with its data, and unmaps now.
            self.assertEqual(ok(w.call(read={"pid": pid, "addr": addr, "length": 5})).read.data,
                             b"new 0")
            ok(w.call(munmap={"pid": pid, "addr": addr, "length": 2 * PG}))
            self.assertEqual(ok(w.call(file_get={"name": "shared.dat", "length": 5}))
                             .file_get.data, b"new 0")
            w.close()

    def test_eio_from_fsync_of_a_mapped_file_writes_its_pages_again(self):
        failed, done = self.msync_fails_then_succeeds("fsync:/shared.dat:1:EIO", False)
        # Both pages were written before the fsync failed, and are dirty again...
        self.assertEqual((failed.writebacks, failed.dirty_pages), (2, 2))
        # ...so the retry wrote both again before its fsync.
        self.assertEqual(done.writebacks, 4)


class FilePutsOffTheLoop(unittest.TestCase):
    """A put's write and fsync run on the daemon's file writer thread: while one
    waits for the disk (held here at its fsync), everyone else is served."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cowd-gate-")
        self.gate = os.path.join(self.dir, "gate")
        os.mkfifo(self.gate)

    def tearDown(self):
        shutil.rmtree(self.dir)

    def test_a_put_waiting_for_its_fsync_delays_no_other_client(self):
        new = bytes(range(256)) * 4096  # 1 MiB
        # The second fsync of a whole put of big.bin (its temporary file) waits.
        with cowdtest.Daemon(env=fault_env("fsync:/.put.big.bin:2:block", self.gate)) as d:
            a, b = d.connect(), d.connect()
            ok(b.call(file_put={"name": "big.bin", "data": b"old"}))
            put_id = a.send_op(file_put={"name": "big.bin", "data": new})
            with at_gate(self.gate) as gate:
                # a's put is held at its fsync; b is served meanwhile.
                ok(b.call(sys_stats={}))
                self.assertEqual(ok(b.call(file_get={"name": "big.bin", "length": 16}))
                                 .file_get.data, b"old")
                pid = ok(b.call(spawn={"name": "p"})).spawn.pid
                resp = b.call(mmap={"pid": pid, "length": PG, "prot": 1, "kind": 1,
                                    "path": "big.bin"})
                self.assertEqual(code_name(resp), "FAILED_PRECONDITION", resp.status.message)
                self.assertIn("still being written", resp.status.message)
                self.assertFalse(has_reply(a), "a put was answered before its fsync")
                gate.write(b"x")
            resp = a.recv()
            self.assertEqual((resp.id, code_name(resp)), (put_id, "OK"), resp.status.message)
            self.assertEqual(resp.file_put.size, len(new))
            got = ok(b.call(file_get={"name": "big.bin", "length": len(new)})).file_get
            self.assertEqual((got.size, got.data == new), (len(new), True))
            ok(b.call(mmap={"pid": pid, "length": PG, "prot": 1, "kind": 1, "path": "big.bin"}))
            a.close()
            b.close()

    def test_a_chunk_being_appended_is_not_seen_until_its_put_is_answered(self):
        with cowdtest.Daemon(env=fault_env("fsync:/log.txt:1:block", self.gate)) as d:
            a, b = d.connect(), d.connect()
            ok(a.call(file_put={"name": "log.txt", "data": b"first;"}))
            put_id = a.send_op(file_put={"name": "log.txt", "offset": 6, "data": b"second;"})
            with at_gate(self.gate) as gate:
                # Written to the file, not yet synced, so not yet there for anyone.
                got = ok(b.call(file_get={"name": "log.txt", "length": 100})).file_get
                self.assertEqual((got.size, got.data), (6, b"first;"))
                gate.write(b"x")
            resp = a.recv()
            self.assertEqual((resp.id, code_name(resp)), (put_id, "OK"), resp.status.message)
            got = ok(b.call(file_get={"name": "log.txt", "length": 100})).file_get
            self.assertEqual((got.size, got.data), (13, b"first;second;"))
            a.close()
            b.close()

    def test_eio_from_fsync_of_a_put_keeps_the_old_file(self):
        with cowdtest.Daemon(env=fault_env("fsync:/.put.f.bin:2:EIO")) as d:
            w = d.connect()
            ok(w.call(file_put={"name": "f.bin", "data": b"old"}))
            resp = w.call(file_put={"name": "f.bin", "data": b"new"})
            self.assertEqual(code_name(resp), "UNAVAILABLE", resp.status.message)
            self.assertEqual(ok(w.call(file_get={"name": "f.bin", "length": 9})).file_get.data,
                             b"old")
            self.assertEqual(ok(w.call(sys_stats={})).sys_stats.file_io_errors, 1)
            self.assertEqual([f.name for f in ok(w.call(file_list={})).file_list.files],
                             ["f.bin"])
            ok(w.call(file_put={"name": "f.bin", "data": b"new"}))
            w.close()


WRITERS = 4
PAGES = 8             # each writer's process cycles through this many pages
MAX_WRITES = 200000   # per writer: the load is bounded in count...
LOAD_SECONDS = 20     # ...and in time
ACKED_CHECKPOINTS = 4


def value(writer, seq):
    return b"w%d seq %d" % (writer, seq)


class KillUnderLoad(unittest.TestCase):
    def test_kill_9_under_load_keeps_every_write_acknowledged_before_the_last_checkpoint(self):
        state = tempfile.mkdtemp(prefix="cowd-state-")
        d = cowdtest.Daemon("--state-dir", state, "--memory", "16M",
                            "--checkpoint-interval", "1")
        d.start()
        try:
            setup = d.connect()
            procs = []
            for i in range(WRITERS):
                pid = ok(setup.call(spawn={"name": "w%d" % i})).spawn.pid
                addr = ok(setup.call(mmap={"pid": pid, "length": PAGES * PG,
                                           "prot": 3})).mmap.addr
                procs.append((pid, addr))
            setup.close()

            acked = [0] * WRITERS   # writes acknowledged, per writer
            sent = [0] * WRITERS    # writes sent (acknowledged or not)
            stop = threading.Event()
            deadline = time.monotonic() + LOAD_SECONDS

            def writer(i):
                pid, addr = procs[i]
                w = d.connect()
                try:
                    for seq in range(1, MAX_WRITES + 1):
                        if stop.is_set() or time.monotonic() > deadline:
                            return
                        sent[i] = seq
                        resp = w.call(write={"pid": pid, "addr": addr + (seq % PAGES) * PG,
                                             "data": value(i, seq)})
                        assert code_name(resp) == "OK", resp.status.message
                        acked[i] = seq
                except (AssertionError, OSError):
                    return  # the kill
                finally:
                    w.close()

            threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
            for t in threads:
                t.start()
            # On-demand checkpoints among the writes; each acknowledged one promises
            # every write acknowledged before it was asked for.
            # They go on until a periodic one has also been written among them.
            promised = None
            asked = 0
            c = d.connect()
            while True:
                before = list(acked)
                resp = c.call(checkpoint={})
                self.assertEqual(code_name(resp), "OK", resp.status.message)
                promised = before
                asked += 1
                total = ok(c.call(sys_stats={})).sys_stats.checkpoints_total
                if asked >= ACKED_CHECKPOINTS and total > asked:
                    break
                self.assertLess(time.monotonic(), deadline, "no periodic checkpoint came")
            c.close()
            # Load goes on; the kill lands among the writes, and maybe in a snapshot.
            busy = sum(t.is_alive() for t in threads)
            d.proc.send_signal(signal.SIGKILL)
            stop.set()
            for t in threads:
                t.join()
            d.proc.wait()
            d.stop(check=False)

            with cowdtest.Daemon("--state-dir", state, "--memory", "16M") as r:
                w = r.connect()
                for i, (pid, addr) in enumerate(procs):
                    pages = [ok(w.call(read={"pid": pid, "addr": addr + k * PG,
                                             "length": len(value(i, MAX_WRITES))})).read.data
                             for k in range(PAGES)]
                    seqs = [int(p.rstrip(b"\0").split()[-1]) if p.strip(b"\0") else 0
                            for p in pages]
                    restored = max(seqs)
                    self.assertGreaterEqual(restored, promised[i],
                                            "writer %d lost acknowledged writes" % i)
                    self.assertLessEqual(restored, sent[i])
                    # Exactly the state after `restored` writes: page k holds the last
                    # seq <= restored that maps to it, or nothing.
                    for k in range(PAGES):
                        want = max((s for s in range(max(1, restored - PAGES + 1), restored + 1)
                                    if s % PAGES == k), default=0)
                        self.assertEqual(seqs[k], want, "writer %d page %d" % (i, k))
                        if want:
                            self.assertEqual(pages[k].rstrip(b"\0"), value(i, want))
                    print("writer %d: %d sent, %d acknowledged before the last checkpoint, "
                          "%d restored" % (i, sent[i], promised[i], restored))
                w.close()
            self.assertEqual(busy, WRITERS, "the load had ended before the kill")
            print("%d checkpoints asked and acknowledged, %d written in all" % (asked, total))
        finally:
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
