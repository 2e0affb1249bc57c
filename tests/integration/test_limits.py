#!/usr/bin/env python3
"""Limits that keep one client from hurting the others: each test is named
after the guarantee it checks. Ordering, not timing, carries every claim: the
daemon is one event loop, so a bystander answered while another client holds
a half-sent frame shows that client blocked no one."""
import select
import socket
import struct
import time
import unittest

import cowdtest
from cowdtest import code_name

DEADLINE = 20.0


def frame(pb, **op):
    req = pb.Request()
    ((name, fields),) = op.items()
    getattr(req, name).SetInParent()
    for k, v in fields.items():
        setattr(getattr(req, name), k, v)
    req.id = 7
    body = req.SerializeToString()
    return struct.pack(">I", len(body)) + body


def wait_for(predicate, what):
    """Polls predicate until it holds or DEADLINE passes (a bound, never a delay)."""
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        select.select([], [], [], 0.05)


class Limits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pb = cowdtest.pb2()

    def test_excess_connections_get_unavailable_and_existing_ones_are_untouched(self):
        with cowdtest.Daemon("--max-connections", "4") as d:
            held = [d.connect() for _ in range(4)]
            pids = [code_name(w.call(spawn={"name": "held"})) for w in held]
            self.assertEqual(pids, ["OK"] * 4)

            extra = d.connect()
            resp = extra.recv()
            self.assertIsNotNone(resp, "refused without a word")
            self.assertEqual(code_name(resp), "UNAVAILABLE")
            self.assertEqual(resp.id, 0)
            self.assertIn("max_connections", resp.status.message)
            self.assertTrue(extra.closed_within(DEADLINE))
            extra.close()

            # Every held connection still works, and one closing makes room.
            for w in held:
                self.assertEqual(code_name(w.call(sys_stats={})), "OK")
            self.assertEqual(held[0].call(sys_stats={}).sys_stats.rejected_connections, 1)
            held.pop().close()
            wait_for(lambda: held[0].call(sys_stats={}).sys_stats.connections == 3,
                     "the closed connection to be forgotten")
            again = d.connect()
            self.assertEqual(code_name(again.call(spawn={"name": "late"})), "OK")
            for w in held + [again]:
                w.close()

    def test_slow_loris_sending_one_byte_at_a_time_delays_no_one_else(self):
        with cowdtest.Daemon() as d:
            bystander = d.connect()
            pid = bystander.call(spawn={"name": "bystander"}).spawn.pid
            addr = bystander.call(mmap={"pid": pid, "length": 4096, "prot": 3}).mmap.addr

            loris = d.connect()
            slow = frame(self.pb, spawn={"name": "slow-loris"})
            served = 0
            for i, byte in enumerate(slow):
                loris.send_raw(bytes([byte]))
                # Between every two bytes of the loris's frame, a whole exchange.
                data = b"%08d" % i
                self.assertEqual(code_name(bystander.call(
                    write={"pid": pid, "addr": addr, "data": data})), "OK")
                self.assertEqual(bystander.call(
                    read={"pid": pid, "addr": addr, "length": 8}).read.data, data)
                served += 1
            self.assertEqual(served, len(slow))

            # The loris is answered too, once its frame is whole.
            resp = loris.recv()
            self.assertEqual(code_name(resp), "OK")
            self.assertEqual(resp.id, 7)
            loris.close()
            bystander.close()

    def test_slow_loris_is_closed_by_the_idle_timeout(self):
        with cowdtest.Daemon("--idle-timeout", "1") as d:
            loris = d.connect()
            loris.send_raw(frame(self.pb, spawn={"name": "never-finished"})[:3])
            self.assertTrue(loris.closed_within(DEADLINE), "a half-sent frame held forever")
            loris.close()
            w = d.connect()
            stats = w.call(sys_stats={}).sys_stats
            self.assertEqual(stats.idle_timeouts, 1)
            self.assertEqual(stats.procs, 0)
            w.close()

    def test_reader_that_never_reads_is_dropped_and_others_are_served(self):
        size = 256 << 10
        with cowdtest.Daemon("--idle-timeout", "1", "--output-watermark", "64K") as d:
            bystander = d.connect()
            pid = bystander.call(spawn={}).spawn.pid
            addr = bystander.call(mmap={"pid": pid, "length": size, "prot": 3}).mmap.addr

            # A client that asks for far more than the socket buffers hold, reads nothing.
            hog = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            hog.connect(d.socket_path)
            hog.setblocking(False)
            req = frame(self.pb, read={"pid": pid, "addr": addr, "length": size})
            try:
                for _ in range(256):
                    hog.send(req)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                pass  # the daemon stopped reading us, or has dropped us already

            wait_for(lambda: bystander.call(sys_stats={}).sys_stats.idle_timeouts >= 1,
                     "the daemon to drop the client that never reads")
            stats = bystander.call(sys_stats={}).sys_stats
            self.assertGreater(stats.backpressure_pauses, 0)
            self.assertEqual(stats.connections, 1)
            self.assertEqual(code_name(bystander.call(
                read={"pid": pid, "addr": addr, "length": 8})), "OK")
            hog.close()
            bystander.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
