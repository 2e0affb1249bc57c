#!/usr/bin/env python3
"""The service manager's side of cowd: what a fake NOTIFY_SOCKET hears
(READY=1, STATUS=, RELOADING=1, READY=1, STOPPING=1, in that order), watchdog
pings from the event loop, and what a SIGHUP reload changes, keeps and refuses."""
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import cowdtest
from cowdtest import code_name

DEADLINE = 20.0


class Notified:
    """cowd with NOTIFY_SOCKET on a datagram socket this test keeps reading."""

    def __init__(self, *args, env=None):
        self.dir = tempfile.mkdtemp(prefix="cowd-notify-")
        self.socket_path = os.path.join(self.dir, "cowd.sock")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(os.path.join(self.dir, "notify"))
        self.stderr_path = os.path.join(self.dir, "stderr")
        self.messages = []  # every line heard, in order
        full_env = dict(os.environ, NOTIFY_SOCKET=os.path.join(self.dir, "notify"))
        for name in ("COWD_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            full_env.pop(name, None)
        full_env.update(env or {})
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [cowdtest.daemon_binary(), "--socket", self.socket_path] + list(args),
                env=full_env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)

    def log(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def wait_for(self, line):
        """Reads messages until one holds the line (or its prefix, for STATUS=)."""
        deadline = time.monotonic() + DEADLINE
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r in time; heard %r\n%s"
                                     % (line, self.messages, self.log()))
            ready, _, _ = select.select([self.notify], [], [], left)
            if not ready:
                continue
            lines = self.notify.recv(4096).decode().split("\n")
            self.messages += lines
            if any(x == line or (line.endswith("=") and x.startswith(line)) for x in lines):
                return [x for x in lines]

    def connect(self):
        return cowdtest.Wire(self.socket_path)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=DEADLINE)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.notify.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def subsequence(wanted, heard):
    it = iter(heard)
    return all(any(h == w or (w.endswith("=") and h.startswith(w)) for h in it) for w in wanted)


def refused(d):
    """Opens one more connection: True when the daemon turns it away at max_connections."""
    w = d.connect()
    try:
        # A refused client is told so unprompted (id 0) and closed, so the request may
        # meet a closed socket; the refusal is still waiting to be read.
        req = cowdtest.pb2().Request()
        req.list_procs.SetInParent()
        try:
            w.send(req)
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp = w.recv()
        return resp is not None and resp.id == 0 and code_name(resp) == "UNAVAILABLE"
    finally:
        w.close()


class Notification(unittest.TestCase):
    def test_ready_status_reload_stopping_in_order(self):
        d = Notified()
        try:
            first = d.wait_for("READY=1")
            status = [x for x in first if x.startswith("STATUS=")]
            self.assertEqual(len(status), 1, first)
            self.assertRegex(status[0], r"^STATUS=0 clients, 0 processes, 0 of \d+ frames used$")
            d.proc.send_signal(signal.SIGHUP)
            d.wait_for("RELOADING=1")
            d.wait_for("READY=1")
            self.assertEqual(d.stop(), 0, d.log())
            d.wait_for("STOPPING=1")
            self.assertTrue(subsequence(["READY=1", "STATUS=", "RELOADING=1", "READY=1",
                                         "STOPPING=1"], d.messages), d.messages)
        finally:
            d.close()

    def test_status_follows_clients_and_processes(self):
        d = Notified()
        try:
            d.wait_for("READY=1")
            w = d.connect()
            self.assertEqual(code_name(w.call(spawn={"name": "a"})), "OK")
            self.assertEqual(code_name(w.call(spawn={"name": "b"})), "OK")
            # The timer sends the line when it changed: wait for the one naming both.
            deadline = time.monotonic() + DEADLINE
            while not any(m.startswith("STATUS=1 clients, 2 processes,") for m in d.messages):
                self.assertLess(time.monotonic(), deadline, d.messages)
                d.wait_for("STATUS=")
            w.close()
            self.assertEqual(d.stop(), 0, d.log())
        finally:
            d.close()

    def test_watchdog_pings_keep_arriving(self):
        d = Notified(env={"WATCHDOG_USEC": "200000"})
        try:
            d.wait_for("READY=1")
            times = []
            for _ in range(6):
                d.wait_for("WATCHDOG=1")
                times.append(time.monotonic())
            gaps = [b - a for a, b in zip(times, times[1:])]
            print("watchdog: WATCHDOG_USEC=200000, mean interval %.1f ms over %d pings"
                  % (1000 * sum(gaps) / len(gaps), len(gaps)))
            self.assertIn("watchdog: pinging every 100 ms", d.log())
            self.assertEqual(d.stop(), 0, d.log())
        finally:
            d.close()

    def test_no_watchdog_unless_asked(self):
        d = Notified()
        try:
            d.wait_for("READY=1")
            self.assertEqual(d.stop(), 0, d.log())
            d.wait_for("STOPPING=1")
            self.assertNotIn("WATCHDOG=1", d.messages)
        finally:
            d.close()


class Reload(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cowd-reload-")
        self.conf = os.path.join(self.tmp, "cowd.conf")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write_conf(self, text):
        with open(self.conf, "w") as f:
            f.write(text)

    def reload(self, d):
        d.proc.send_signal(signal.SIGHUP)
        d.wait_for("RELOADING=1")
        d.wait_for("READY=1")

    def test_live_settings_change_fixed_ones_are_logged_bad_ones_refused(self):
        self.write_conf("[engine]\nmemory = 1M\n[limits]\nmax_connections = 1\n"
                        "[log]\nlevel = info\n")
        d = Notified("--config", self.conf)
        try:
            d.wait_for("READY=1")
            w1 = d.connect()
            self.assertEqual(code_name(w1.call(list_procs={})), "OK")
            self.assertTrue(refused(d), "max_connections = 1 let a second client in")

            self.write_conf("[engine]\nmemory = 2M\n[limits]\nmax_connections = 2\n"
                            "[log]\nlevel = debug\n")
            self.reload(d)
            log = d.log()
            self.assertIn("reload: [limits] max_connections changed", log)
            self.assertIn("reload: [log] level changed", log)
            self.assertIn("reload: [engine] memory cannot change while running; keeping the "
                          "old value", log)
            w2 = d.connect()
            self.assertEqual(code_name(w2.call(list_procs={})), "OK")
            self.assertTrue(refused(d), "max_connections = 2 let a third client in")
            # The memory stayed what it was: 1M of 4K pages.
            self.assertEqual(w2.call(sys_stats={}).sys_stats.frames_total, 256)
            # debug is on: connections are now logged.
            self.assertIn("connected", d.log()[len(log):])

            self.write_conf("[limits]\nmax_connections = banana\n")
            self.reload(d)
            self.assertRegex(d.log(), r"reload: .*cowd.conf:2: \[limits\] max_connections: "
                                      r"'banana' is not a decimal number; keeping the old "
                                      r"configuration")
            # Still two clients and no more.
            self.assertEqual(code_name(w2.call(list_procs={})), "OK")
            self.assertTrue(refused(d), "the refused configuration was applied")
            w1.close()
            w2.close()
            self.assertEqual(d.stop(), 0, d.log())
        finally:
            d.close()

    def test_a_reload_changes_the_frame_quota_and_cannot_turn_quotas_on(self):
        page = 4096
        self.write_conf("[limits]\nmax_frames_per_user = 2\n")
        d = Notified("--config", self.conf)
        try:
            d.wait_for("READY=1")
            w = d.connect()
            pid = w.call(spawn={"name": "q"}).spawn.pid
            addr = w.call(mmap={"pid": pid, "length": 4 * page, "prot": 3}).mmap.addr

            def write(i):
                return code_name(w.call(write={"pid": pid, "addr": addr + i * page,
                                               "data": b"q"}))
            self.assertEqual([write(0), write(1), write(2)], ["OK", "OK", "RESOURCE_EXHAUSTED"])

            self.write_conf("[limits]\nmax_frames_per_user = 3\n")
            self.reload(d)
            self.assertIn("reload: [limits] max_frames_per_user changed", d.log())
            self.assertEqual([write(2), write(3)], ["OK", "RESOURCE_EXHAUSTED"])
            w.close()
            self.assertEqual(d.stop(), 0, d.log())
        finally:
            d.close()

        # A daemon that started without quotas keeps them off, and says why.
        self.write_conf("")
        d = Notified("--config", self.conf)
        try:
            d.wait_for("READY=1")
            self.write_conf("[limits]\nmax_frames_per_user = 1\n")
            self.reload(d)
            self.assertIn("can be turned on only by a restart", d.log())
            w = d.connect()
            pid = w.call(spawn={"name": "q"}).spawn.pid
            addr = w.call(mmap={"pid": pid, "length": 2 * page, "prot": 3}).mmap.addr
            self.assertEqual(code_name(w.call(write={"pid": pid, "addr": addr,
                                                     "data": b"q" * 2 * page})), "OK")
            w.close()
            self.assertEqual(d.stop(), 0, d.log())
        finally:
            d.close()

    def test_flags_still_override_the_file_after_a_reload(self):
        self.write_conf("[limits]\nmax_connections = 5\n")
        d = Notified("--config", self.conf, "--max-connections", "1")
        try:
            d.wait_for("READY=1")
            self.write_conf("[limits]\nmax_connections = 7\n")
            self.reload(d)
            w = d.connect()
            self.assertEqual(code_name(w.call(list_procs={})), "OK")
            self.assertTrue(refused(d), "the flag's max_connections = 1 was lost")
            self.assertIn("0 settings changed", d.log())
            w.close()
            self.assertEqual(d.stop(), 0, d.log())
        finally:
            d.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
