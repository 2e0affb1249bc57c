#!/usr/bin/env python3
"""Limits that keep one client from hurting the others: each test is named
after the guarantee it checks. Ordering, not timing, carries every claim: the
daemon is one event loop, so a bystander answered while another client holds
a half-sent frame shows that client blocked no one."""
import contextlib
import os
import select
import socket
import tempfile
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


def authenticated(port, token):
    """A TCP client acting as the uid its token names (how tests get a non-root uid)."""
    w = cowdtest.Wire(("127.0.0.1", port))
    resp = w.call(hello={"protocol_version": 1, "token": token.encode()})
    assert code_name(resp) == "OK", resp.status.message
    return w


PAGE = 4096
TOKENS = {1000: "quota-student-one-0001", 2000: "quota-student-two-0002"}


@contextlib.contextmanager
def two_users(*args):
    """A daemon started with args and a TCP listener whose token file names uids
    1000 and 2000: yields (daemon, client as 1000, client as 2000, root client)."""
    with tempfile.TemporaryDirectory(prefix="cowd-quota-") as tmp:
        path = os.path.join(tmp, "tokens")
        with open(path, "w") as f:
            f.write("".join("%d %s\n" % kv for kv in TOKENS.items()))
        os.chmod(path, 0o600)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with cowdtest.Daemon(*args, "--tcp-port", str(port), "--tcp-token-file", path) as d:
            clients = (authenticated(port, TOKENS[1000]), authenticated(port, TOKENS[2000]),
                       d.connect())
            try:
                yield (d,) + clients
            finally:
                for w in clients:
                    w.close()


def user_process(w, pages, max_resident=0):
    """A process of w's user with pages of private memory: (pid, addr)."""
    pid = cowdtest.ok(w.call(spawn={"name": "user", "max_resident_pages": max_resident})).spawn.pid
    addr = cowdtest.ok(w.call(mmap={"pid": pid, "length": pages * PAGE, "prot": 3})).mmap.addr
    return pid, addr


def write_page(w, pid, addr, i):
    return w.call(write={"pid": pid, "addr": addr + i * PAGE, "data": bytes([i + 1]) * PAGE})


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

    def test_one_user_cannot_take_more_than_max_processes_per_user(self):
        with two_users("--max-processes-per-user", "3") as (d, one, two, root):
            pids = [one.call(spawn={"name": "p%d" % i}).spawn.pid for i in range(2)]
            pids.append(one.call(fork={"pid": pids[0]}).fork.child_pid)

            # A fourth process, spawned or forked, is refused and names the limit.
            for resp in (one.call(spawn={"name": "too-many"}),
                         one.call(fork={"pid": pids[0]}),
                         root.call(fork={"pid": pids[1]})):  # the child would be uid 1000's
                self.assertEqual(code_name(resp), "RESOURCE_EXHAUSTED")
                self.assertIn("max_processes_per_user", resp.status.message)

            # Other users are untouched, and uid 0 is exempt.
            self.assertEqual(code_name(two.call(spawn={"name": "other"})), "OK")
            for _ in range(4):
                self.assertEqual(code_name(root.call(spawn={"name": "operator"})), "OK")

            # An exit makes room again.
            self.assertEqual(code_name(one.call(exit={"pid": pids[2]})), "OK")
            self.assertEqual(code_name(one.call(spawn={"name": "again"})), "OK")
            stats = root.call(sys_stats={}).sys_stats
            self.assertEqual(stats.quota_rejections, 3)
            self.assertEqual(stats.procs, 3 + 1 + 4)

    def test_frame_quota_refuses_a_user_at_its_quota_and_no_one_else(self):
        with two_users("--max-frames-per-user", "4") as (d, one, two, root):
            pid, addr = user_process(one, 8)
            cowdtest.ok(one.call(write={"pid": pid, "addr": addr, "data": b"\x07" * 4 * PAGE}))
            used = root.call(sys_stats={}).sys_stats.frames_used

            # A fifth frame is refused, names the setting and changes nothing.
            resp = write_page(one, pid, addr, 4)
            self.assertEqual(code_name(resp), "RESOURCE_EXHAUSTED")
            self.assertIn("max_frames_per_user", resp.status.message)
            self.assertEqual(cowdtest.ok(one.call(read={"pid": pid, "addr": addr + 4 * PAGE,
                                                        "length": 8})).read.data, bytes(8))
            # Reading maps the zero page and a fork shares: neither needs a frame.
            child = cowdtest.ok(one.call(fork={"pid": pid})).fork.child_pid
            # The child's copy-on-write copy is a frame of the same user: refused too.
            self.assertEqual(code_name(write_page(one, child, addr, 0)), "RESOURCE_EXHAUSTED")
            self.assertEqual(root.call(sys_stats={}).sys_stats.frames_used, used)

            # Another user is not held back.
            pid2, addr2 = user_process(two, 4)
            cowdtest.ok(two.call(write={"pid": pid2, "addr": addr2, "data": b"\x01" * 4 * PAGE}))

            # Freeing frames makes room again.
            cowdtest.ok(one.call(exit={"pid": child}))
            cowdtest.ok(one.call(munmap={"pid": pid, "addr": addr, "length": PAGE}))
            cowdtest.ok(write_page(one, pid, addr, 4))
            self.assertEqual(root.call(sys_stats={}).sys_stats.frame_quota_rejections, 2)

    def test_swap_quota_refuses_a_user_at_its_quota_and_no_one_else(self):
        with two_users("--memory", "1M", "--swap-size", "64K",
                       "--max-swap-slots-per-user", "2") as (d, one, two, root):
            # Two pages resident: the third and fourth push one each to swap.
            pid, addr = user_process(one, 8, max_resident=2)
            for i in range(4):
                cowdtest.ok(write_page(one, pid, addr, i))
            before = root.call(sys_stats={}).sys_stats
            self.assertEqual(before.swap_slots_used, 2)

            # A fifth page needs a third slot: refused, naming the setting.
            resp = write_page(one, pid, addr, 4)
            self.assertEqual(code_name(resp), "RESOURCE_EXHAUSTED")
            self.assertIn("max_swap_slots_per_user", resp.status.message)
            after = root.call(sys_stats={}).sys_stats
            self.assertEqual((after.swap_outs, after.frames_used),
                             (before.swap_outs, before.frames_used))
            self.assertEqual(after.swap_quota_rejections, 1)

            # Another user swaps as before.
            pid2, addr2 = user_process(two, 8, max_resident=2)
            for i in range(4):
                cowdtest.ok(write_page(two, pid2, addr2, i))
            self.assertEqual(root.call(sys_stats={}).sys_stats.swap_slots_used, 4)

            # The user's data is all there, and its exit frees its slots.
            for i in range(2, 4):
                data = cowdtest.ok(one.call(read={"pid": pid, "addr": addr + i * PAGE,
                                                  "length": PAGE})).read.data
                self.assertEqual(data, bytes([i + 1]) * PAGE)
            cowdtest.ok(one.call(exit={"pid": pid}))
            self.assertEqual(root.call(sys_stats={}).sys_stats.swap_slots_used, 2)

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
