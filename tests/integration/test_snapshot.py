#!/usr/bin/env python3
"""Checkpoints as snapshots: a forked child writes the checkpoint while the
daemon goes on serving. The child is held at a point the test chooses (the
fault injector's "block" rule makes its fsync wait on a FIFO the test owns),
so what the daemon does meanwhile is observed without sleeps or timings:

- other clients are served, and the requester's own pipelined request is
  answered only after its checkpoint reply;
- a request made while a snapshot runs is answered by the next snapshot,
  which holds what was acknowledged before the request, and not by the
  running one, which does not;
- a writer that is killed is a typed error, the previous checkpoint stays
  byte for byte, and the next checkpoint works;
- a stop while a snapshot runs waits for it, then writes its own."""
import contextlib
import os
import shutil
import signal
import socket
import tempfile
import time
import unittest

import cowdtest
from cowdtest import (at_gate, children_of, code_name, fault_env, has_reply, ok, open_gate,
                      read_bytes)

PG = 4096
BIG_PAGES = 2048  # 8 MiB of distinct frames: a state worth a snapshot


class Snapshot(unittest.TestCase):
    def setUp(self):
        self.state = tempfile.mkdtemp(prefix="cowd-state-")
        self.gate = self.state + ".gate"
        os.mkfifo(self.gate)
        self.path = os.path.join(self.state, "cowd.checkpoint")

    def tearDown(self):
        shutil.rmtree(self.state, ignore_errors=True)
        os.unlink(self.gate)

    def daemon(self, rules=None, state=None):
        env = fault_env(rules, self.gate) if rules else None
        return cowdtest.Daemon("--state-dir", state or self.state, "--memory", "32M", env=env)

    @contextlib.contextmanager
    def killable(self, rules):
        """A daemon the test may SIGKILL: its exit status is not checked."""
        d = self.daemon(rules)
        d.start()
        try:
            yield d
        finally:
            d.stop(check=False)

    def big_process(self, w, tag):
        pid = ok(w.call(spawn={"name": "big"})).spawn.pid
        addr = ok(w.call(mmap={"pid": pid, "length": BIG_PAGES * PG, "prot": 3})).mmap.addr
        chunk = 16 * PG
        for off in range(0, BIG_PAGES * PG, chunk):
            page = (b"%s %d " % (tag, off)).ljust(PG, b".")
            ok(w.call(write={"pid": pid, "addr": addr + off, "data": page * 16}))
        return pid, addr

    def read(self, w, pid, addr, n):
        return ok(w.call(read={"pid": pid, "addr": addr, "length": n})).read.data

    def test_clients_are_served_while_a_snapshot_is_written(self):
        # Both snapshots' writers stop at their fsync until the test opens the gate.
        rules = "fsync:cowd.checkpoint.tmp:1:block,fsync:cowd.checkpoint.tmp:2:block"
        with self.killable(rules) as d:
            a, b, c = d.connect(), d.connect(), d.connect()
            pid, addr = self.big_process(b, b"before")
            ok(b.call(write={"pid": pid, "addr": addr, "data": b"v1"}))

            # a asks for a checkpoint, and pipelines a read behind it.
            ckpt_id = a.send_op(checkpoint={})
            read_id = a.send_op(read={"pid": pid, "addr": addr, "length": 2})

            # While the snapshot's writer waits, b is served, reads and writes alike.
            self.assertEqual(self.read(b, pid, addr, 2), b"v1")
            ok(b.call(write={"pid": pid, "addr": addr, "data": b"v2"}))
            self.assertEqual(self.read(b, pid, addr, 2), b"v2")
            stats = ok(b.call(sys_stats={})).sys_stats
            self.assertEqual(stats.checkpoints_total, 0)
            self.assertFalse(has_reply(a), "a checkpoint reply came before it was durable")

            # c asks while a's snapshot runs: the next snapshot answers it, and it must
            # hold v2, which b was told was written before c asked.
            c_id = c.send_op(checkpoint={})
            ok(b.call(write={"pid": pid, "addr": addr + PG, "data": b"seen by c"}))

            open_gate(self.gate)  # a's snapshot goes on
            first = a.recv()
            self.assertEqual((first.id, code_name(first)), (ckpt_id, "OK"), first.status.message)
            self.assertGreater(first.checkpoint.bytes, BIG_PAGES * PG)
            self.assertLessEqual(first.checkpoint.pause_us, first.checkpoint.duration_us)
            second = a.recv()
            self.assertEqual((second.id, second.read.data), (read_id, b"v2"))
            self.assertFalse(has_reply(c), "c was answered by the snapshot that began before it")
            # What a's checkpoint holds: v1, the state when it began.
            kept = tempfile.mkdtemp(prefix="cowd-state-a-")
            try:
                shutil.copy(self.path, kept)
                with self.daemon(state=kept) as other:
                    w = other.connect()
                    self.assertEqual(self.read(w, pid, addr, 2), b"v1")
                    self.assertEqual(self.read(w, pid, addr + PG, 8), b"before 0")
                    w.close()
            finally:
                shutil.rmtree(kept)

            open_gate(self.gate)  # c's snapshot goes on
            third = c.recv()
            self.assertEqual((third.id, code_name(third)), (c_id, "OK"), third.status.message)
            stats = ok(b.call(sys_stats={})).sys_stats
            self.assertEqual((stats.checkpoints_total, stats.checkpoint_failures), (2, 0))
            self.assertEqual(stats.last_checkpoint_pause_us, third.checkpoint.pause_us)
            d.kill()  # nothing is written at stop: what comes back is c's snapshot
        with self.daemon() as d:
            w = d.connect()
            self.assertEqual(self.read(w, pid, addr, 2), b"v2")
            self.assertEqual(self.read(w, pid, addr + PG, 9), b"seen by c")
            w.close()

    def test_clients_that_stop_sending_or_leave_while_a_checkpoint_is_due(self):
        with self.killable("fsync:cowd.checkpoint.tmp:1:block") as d:
            a, b, c = d.connect(), d.connect(), d.connect()
            pid, addr = self.big_process(b, b"x")
            # a asks, pipelines a read, and says it will send nothing more.
            ckpt_id = a.send_op(checkpoint={})
            read_id = a.send_op(read={"pid": pid, "addr": addr, "length": 1})
            a.sock.shutdown(socket.SHUT_WR)
            # c asks and goes away before its answer.
            c.send_op(checkpoint={})
            c.close()
            self.assertEqual(self.read(b, pid, addr, 1), b"x")
            open_gate(self.gate)
            self.assertEqual([(r.id, code_name(r)) for r in (a.recv(), a.recv())],
                             [(ckpt_id, "OK"), (read_id, "OK")])
            self.assertIsNone(a.recv())  # then the close, as for any client done sending
            a.close()
            # c's checkpoint was still written, and the daemon serves on.
            stats = ok(b.call(sys_stats={})).sys_stats
            deadline = time.monotonic() + 60
            while stats.checkpoints_total < 2:
                self.assertLess(time.monotonic(), deadline, d.log())
                ok(b.call(read={"pid": pid, "addr": addr, "length": 1}))
                stats = ok(b.call(sys_stats={})).sys_stats
            self.assertEqual(stats.checkpoint_failures, 0)
            b.close()
            d.stop()

    def test_a_killed_writer_is_an_error_and_keeps_the_previous_checkpoint(self):
        with self.killable("fsync:cowd.checkpoint.tmp:2:block") as d:
            a, b = d.connect(), d.connect()
            pid, addr = self.big_process(b, b"old")
            ok(a.call(checkpoint={}))
            old = read_bytes(self.path)
            ok(b.call(write={"pid": pid, "addr": addr, "data": b"new"}))

            a.send_op(checkpoint={})
            self.assertEqual(self.read(b, pid, addr, 3), b"new")  # served meanwhile
            with at_gate(self.gate):  # the writer is held at its fsync
                (writer,) = children_of(d.proc.pid)
                os.kill(writer, signal.SIGKILL)
                resp = a.recv()
            self.assertEqual(code_name(resp), "ABORTED")
            self.assertIn("killed by signal 9", resp.status.message)
            self.assertIn("the previous one is kept", resp.status.message)
            self.assertEqual(read_bytes(self.path), old)
            self.assertEqual(cowdtest.state_entries(self.state), ["cowd.checkpoint"])
            stats = ok(b.call(sys_stats={})).sys_stats
            self.assertEqual((stats.checkpoints_total, stats.checkpoint_failures), (1, 1))
            self.assertIn("killed by signal 9", d.log())

            # The next one is written, and holds the write.
            ok(a.call(checkpoint={}))
            d.kill()
        with self.daemon() as d:
            w = d.connect()
            self.assertEqual(self.read(w, pid, addr, 3), b"new")
            w.close()

    def test_a_stop_during_a_snapshot_waits_for_it_then_writes_its_own(self):
        with self.daemon("fsync:cowd.checkpoint.tmp:1:block") as d:
            a, b = d.connect(), d.connect()
            pid, addr = self.big_process(b, b"x")
            a.send_op(checkpoint={})
            ok(b.call(write={"pid": pid, "addr": addr, "data": b"last"}))
            b.close()
            d.proc.send_signal(signal.SIGTERM)
            # The stop is held up by the writer, which the gate holds; the reply comes
            # once it is let go, and then the daemon's own checkpoint at stop.
            open_gate(self.gate)
            resp = a.recv()
            self.assertEqual(code_name(resp), "OK", resp.status.message)
            a.close()
            self.assertEqual(d.proc.wait(timeout=cowdtest.STOP_TIMEOUT), 0, d.log())
            self.assertIn("checkpoint (at stop)", d.log())
        with self.daemon() as d:
            w = d.connect()
            self.assertEqual(self.read(w, pid, addr, 4), b"last")
            w.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
