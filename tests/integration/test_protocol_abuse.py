#!/usr/bin/env python3
"""Protocol abuse: every bad input gets a typed error or a close within 5 s,
another connection is served normally throughout, and the daemon's memory
stays bounded."""
import os
import select
import socket
import struct
import unittest

import cowdtest
from cowdtest import code_name

CLOSE_WITHIN = 5.0
IDLE_TIMEOUT = "2"
# AddressSanitizer keeps freed memory in quarantine, so RSS says nothing there.
CHECK_RSS = os.environ.get("COWD_SANITIZED", "0") in ("0", "", "FALSE", "false")


class ProtocolAbuse(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pb = cowdtest.pb2()
        cls.daemon = cowdtest.Daemon("--idle-timeout", IDLE_TIMEOUT, "--memory", "64M")
        cls.daemon.start()
        cls.baseline_kib = cls.daemon.rss_kib()

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()

    def setUp(self):
        self.bystander = self.daemon.connect()

    def tearDown(self):
        # The bystander is served normally after whatever the test did.
        resp = self.bystander.call(spawn={"name": "bystander"})
        self.assertEqual(code_name(resp), "OK", resp.status.message)
        self.bystander.call(exit={"pid": resp.spawn.pid})
        self.bystander.close()

    def assert_error_then_close(self, w):
        resp = w.recv()
        if resp is not None:
            self.assertNotEqual(code_name(resp), "OK")
            self.assertTrue(resp.status.message, "an error needs a human message")
        self.assertTrue(w.closed_within(CLOSE_WITHIN), "connection left open")
        w.close()

    def test_zero_length_frame(self):
        w = self.daemon.connect()
        w.send_raw(b"\0\0\0\0")
        self.assert_error_then_close(w)

    def test_4gib_length_frame(self):
        w = self.daemon.connect()
        w.send_raw(b"\xff\xff\xff\xff" + b"x" * 100)
        self.assert_error_then_close(w)

    def test_oversize_length_is_refused_before_the_body_arrives(self):
        w = self.daemon.connect()
        w.send_raw(struct.pack(">I", 512 << 20))  # 512 MiB declared, nothing sent
        self.assert_error_then_close(w)

    def test_truncated_frame_then_eof(self):
        w = self.daemon.connect()
        w.send_raw(struct.pack(">I", 100) + b"\x08\x01" * 5)
        w.sock.shutdown(socket.SHUT_WR)
        self.assertTrue(w.closed_within(CLOSE_WITHIN))
        w.close()

    def test_truncated_frame_then_silence_hits_idle_timeout(self):
        w = self.daemon.connect()
        w.send_raw(struct.pack(">I", 100) + b"\x08\x01" * 5)
        # The bystander keeps working (and so is not idle) while w waits.
        closed = False
        for _ in range(int(CLOSE_WITHIN / 0.25)):
            self.assertEqual(code_name(self.bystander.call(sys_stats={})), "OK")
            if w.closed_within(0.25):
                closed = True
                break
        self.assertTrue(closed, "a silent half-sent frame was never timed out")
        w.close()

    def test_bytes_that_do_not_parse(self):
        w = self.daemon.connect()
        body = b"\xff" * 32  # field 31 with wire type 7: not protobuf
        w.send_raw(struct.pack(">I", len(body)) + body)
        resp = w.recv()
        self.assertIsNotNone(resp)
        self.assertEqual(code_name(resp), "INVALID_ARGUMENT")
        self.assertTrue(w.closed_within(CLOSE_WITHIN))
        w.close()

    def test_unknown_operation(self):
        w = self.daemon.connect()
        # id = 7, then field 99 (an operation this daemon does not know) = 1.
        body = bytes([0x08, 0x07, 0x98, 0x06, 0x01])
        w.send_raw(struct.pack(">I", len(body)) + body)
        resp = w.recv()
        self.assertEqual(resp.id, 7)
        self.assertEqual(code_name(resp), "UNIMPLEMENTED")
        # The connection stays usable.
        self.assertEqual(code_name(w.call(sys_stats={})), "OK")
        w.close()

    def test_read_of_one_tib(self):
        w = self.daemon.connect()
        pid = w.call(spawn={}).spawn.pid
        addr = w.call(mmap={"pid": pid, "length": 1 << 20, "prot": 3}).mmap.addr
        resp = w.call(read={"pid": pid, "addr": addr, "length": 1 << 40})
        self.assertIn(code_name(resp), ("OUT_OF_RANGE", "RESOURCE_EXHAUSTED",
                                        "INVALID_ARGUMENT"))
        self.assertEqual(code_name(w.call(read={"pid": pid, "addr": addr, "length": 8})), "OK")
        if CHECK_RSS:
            self.assertLess(self.daemon.rss_kib() - self.baseline_kib, 64 << 10)
        w.call(exit={"pid": pid})
        w.close()

    def test_trace_over_its_limits_does_nothing(self):
        w = self.daemon.connect()
        pid = w.call(spawn={}).spawn.pid
        addr = w.call(mmap={"pid": pid, "length": 1 << 20, "prot": 3}).mmap.addr
        # The arrays must agree in length.
        resp = w.call(trace={"pid": pid, "addrs": [addr, addr], "sizes": [1], "kinds": [1, 1]})
        self.assertEqual(code_name(resp), "INVALID_ARGUMENT")
        self.assertIn("differ in length", resp.status.message)
        # 4097 accesses: one more than a request may carry.
        n = 4097
        resp = w.call(trace={"pid": pid, "addrs": [addr + 4096 * (i % 256) for i in range(n)],
                             "sizes": [1] * n, "kinds": [1] * n})
        self.assertEqual(code_name(resp), "RESOURCE_EXHAUSTED")
        self.assertIn("limit of 4096", resp.status.message)
        # Nothing of the refused batches ran; exactly the limit is served.
        stats = w.call(proc_stats={"pid": pid}).proc_stats
        self.assertEqual(stats.faults_zero_fill, 0)
        resp = w.call(trace={"pid": pid, "addrs": [addr + 4096 * (i % 256) for i in range(n - 1)],
                             "sizes": [1] * (n - 1), "kinds": [1] * (n - 1)})
        self.assertEqual(code_name(resp), "OK", resp.status.message)
        self.assertEqual(resp.trace.done, n - 1)
        self.assertEqual(w.call(proc_stats={"pid": pid}).proc_stats.faults_zero_fill, 256)
        w.call(exit={"pid": pid})
        w.close()

    def test_write_to_pid_zero(self):
        w = self.daemon.connect()
        resp = w.call(write={"pid": 0, "addr": 0x10000, "data": b"x"})
        self.assertIn(code_name(resp), ("NOT_FOUND", "INVALID_ARGUMENT"))
        w.close()

    def test_client_that_never_reads(self):
        w = self.daemon.connect()
        pid = w.call(spawn={}).spawn.pid
        size = 256 << 10
        addr = w.call(mmap={"pid": pid, "length": size, "prot": 3}).mmap.addr
        self.assertEqual(code_name(w.call(write={"pid": pid, "addr": addr,
                                                 "data": b"r" * size})), "OK")

        # Ask for 4000 x 256 KiB = 1000 MiB of replies and read none of them.
        req = self.pb.Request()
        req.read.pid, req.read.addr, req.read.length = pid, addr, size
        w.sock.setblocking(False)
        sent = 0
        for i in range(4000):
            req.id = 1000 + i
            body = req.SerializeToString()
            frame = struct.pack(">I", len(body)) + body
            while frame:
                _, writable, _ = select.select([], [w.sock], [], 1.0)
                if not writable:
                    break  # the daemon stopped reading us: backpressure
                try:
                    frame = frame[w.sock.send(frame):]
                except BlockingIOError:
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    frame = None
                    break
            if frame:
                break
            sent += 1

        self.assertGreater(sent, 0)
        if CHECK_RSS:
            growth_mib = (self.daemon.rss_kib() - self.baseline_kib) >> 10
            self.assertLess(growth_mib, 96, "daemon grew %d MiB for a client that never"
                            " reads" % growth_mib)
        stats = self.bystander.call(sys_stats={}).sys_stats
        self.assertGreater(stats.backpressure_pauses, 0)
        w.close()

        # Processes belong to the uid, not the connection: another one ends it.
        self.assertEqual(code_name(self.bystander.call(exit={"pid": pid})), "OK")


if __name__ == "__main__":
    unittest.main(verbosity=2)
