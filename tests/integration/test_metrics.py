#!/usr/bin/env python3
"""/metrics: the Prometheus text format, parsed by prometheus_client's own
parser, with counters that move by exactly the requests made, gauges that
follow the daemon's state, a histogram that adds up, and a listener that is
loopback only and serves nothing but /metrics."""
import http.client
import json
import os
import socket
import subprocess
import unittest

from prometheus_client.parser import text_string_to_metric_families

import cowdtest
from cowdtest import code_name


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path="/metrics", method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type"), resp.read().decode()
    finally:
        conn.close()


class Scrape:
    """One scrape: families by name, and samples by (name, labels)."""

    def __init__(self, port):
        status, ctype, self.text = http_get(port)
        assert status == 200, status
        assert ctype.startswith("text/plain; version=0.0.4"), ctype
        self.families = {f.name: f for f in text_string_to_metric_families(self.text)}
        self.samples = {}
        for f in self.families.values():
            for s in f.samples:
                self.samples[(s.name, tuple(sorted(s.labels.items())))] = s.value

    def get(self, name, **labels):
        return self.samples.get((name, tuple(sorted(labels.items()))), 0)

    def requests(self, op, code="OK"):
        return self.get("cowd_requests_total", op=op, code=code)

    def requests_sum(self):
        return sum(v for (n, _), v in self.samples.items() if n == "cowd_requests_total")


class Metrics(unittest.TestCase):
    def setUp(self):
        self.port = free_port()
        self.daemon = cowdtest.Daemon("--metrics-port", str(self.port), "--memory", "1M")
        self.daemon.start()

    def tearDown(self):
        self.daemon.stop()

    def test_the_exposition_parses_and_follows_the_naming_conventions(self):
        w = self.daemon.connect()
        self.assertEqual(code_name(w.call(spawn={"name": "x"})), "OK")
        s = Scrape(self.port)
        self.assertGreater(len(s.families), 10)
        for name, f in s.families.items():
            self.assertTrue(name.startswith("cowd_"), name)
            self.assertIn("# HELP %s " % (name if f.type != "counter" else name + "_total"),
                          s.text)
            self.assertTrue(f.documentation, name)
        types = {n: f.type for n, f in s.families.items()}
        for counter in ("cowd_requests", "cowd_faults", "cowd_cow_copies", "cowd_cow_reuses",
                        "cowd_tlb_hits", "cowd_tlb_misses", "cowd_limit_rejections"):
            self.assertEqual(types.get(counter), "counter", counter)
        for gauge in ("cowd_frames_used", "cowd_frames_total", "cowd_processes",
                      "cowd_connections", "cowd_memory_used_bytes"):
            self.assertEqual(types.get(gauge), "gauge", gauge)
        self.assertEqual(types.get("cowd_request_duration_seconds"), "histogram")
        # 1 MiB of 4 KiB pages
        self.assertEqual(s.get("cowd_frames_total"), 256)
        self.assertEqual(s.get("cowd_processes"), 1)
        self.assertEqual(s.get("cowd_connections"), 1)
        w.close()

    def test_histogram_buckets_are_cumulative_and_end_at_the_count(self):
        w = self.daemon.connect()
        for _ in range(20):
            w.call(sys_stats={})
        s = Scrape(self.port)
        buckets = sorted((float(dict(labels)["le"]), v) for (n, labels), v in s.samples.items()
                         if n == "cowd_request_duration_seconds_bucket")
        values = [v for _, v in buckets]
        self.assertEqual(values, sorted(values))
        self.assertEqual(buckets[-1][0], float("inf"))
        self.assertEqual(buckets[-1][1], s.get("cowd_request_duration_seconds_count"))
        self.assertEqual(s.get("cowd_request_duration_seconds_count"), 20)
        self.assertGreater(s.get("cowd_request_duration_seconds_sum"), 0)
        w.close()

    def test_counters_move_by_exactly_the_requests_made(self):
        w = self.daemon.connect()
        before = Scrape(self.port)
        pid = w.call(spawn={"name": "parent"}).spawn.pid
        addr = w.call(mmap={"pid": pid, "length": 8192, "prot": 3}).mmap.addr
        self.assertEqual(code_name(w.call(write={"pid": pid, "addr": addr, "data": b"a"})), "OK")
        self.assertEqual(code_name(w.call(read={"pid": pid, "addr": addr + 4096,
                                                "length": 1})), "OK")
        child = w.call(fork={"pid": pid}).fork.child_pid
        self.assertEqual(code_name(w.call(write={"pid": child, "addr": addr, "data": b"b"})),
                         "OK")
        self.assertEqual(code_name(w.call(exit={"pid": 999999})), "NOT_FOUND")
        self.assertEqual(code_name(w.call(read={"pid": pid, "addr": 16, "length": 1})),
                         "FAILED_PRECONDITION")
        after = Scrape(self.port)

        def delta(f, *a, **k):
            return getattr(after, f)(*a, **k) - getattr(before, f)(*a, **k)

        for op, n in [("spawn", 1), ("mmap", 1), ("write", 2), ("read", 1), ("fork", 1)]:
            self.assertEqual(delta("requests", op), n, op)
        self.assertEqual(delta("requests", "exit", "NOT_FOUND"), 1)
        self.assertEqual(delta("requests", "read", "FAILED_PRECONDITION"), 1)
        self.assertEqual(delta("requests_sum"), 8)
        self.assertEqual(delta("get", "cowd_request_duration_seconds_count"), 8)
        self.assertEqual(delta("get", "cowd_faults_total", kind="cow_copy"), 1)
        self.assertEqual(delta("get", "cowd_cow_copies_total"), 1)
        self.assertEqual(delta("get", "cowd_faults_total", kind="zero_fill"), 1)
        self.assertEqual(delta("get", "cowd_faults_total", kind="zero_map"), 1)
        self.assertEqual(delta("get", "cowd_faults_total", kind="segv"), 1)
        self.assertEqual(delta("get", "cowd_processes"), 2)
        self.assertEqual(delta("get", "cowd_frames_used"), 2)
        self.assertGreater(delta("get", "cowd_tlb_misses_total"), 0)
        w.close()

    def test_every_operation_is_named_up_to_the_last(self):
        # device_read is operation 32, the last in the contract: named, not "unknown".
        w = self.daemon.connect()
        before = Scrape(self.port)
        self.assertEqual(code_name(w.call(file_put={"name": "m", "data": b"x"})), "OK")
        self.assertEqual(code_name(w.call(device_read={"device": "fb0", "length": 4})), "OK")
        after = Scrape(self.port)
        self.assertEqual(after.requests("file_put") - before.requests("file_put"), 1)
        self.assertEqual(after.requests("device_read") - before.requests("device_read"), 1)
        self.assertEqual(after.requests("unknown") - before.requests("unknown"), 0)
        w.close()

    def test_file_pages_dirty_pages_and_write_backs(self):
        w = self.daemon.connect()
        self.assertEqual(code_name(w.call(file_put={"name": "f", "data": b"x" * 5000})), "OK")
        pid = w.call(spawn={"name": "files"}).spawn.pid
        addr = w.call(mmap={"pid": pid, "length": 8192, "prot": 3, "shared": True, "kind": 1,
                            "path": "f"}).mmap.addr
        self.assertEqual(code_name(w.call(write={"pid": pid, "addr": addr, "data": b"y"})), "OK")
        s = Scrape(self.port)
        self.assertEqual((s.get("cowd_file_pages"), s.get("cowd_dirty_pages"),
                          s.get("cowd_file_reads_total")), (1, 1, 1))
        self.assertEqual(code_name(w.call(read={"pid": pid, "addr": addr + 8191,
                                                "length": 1})), "OK")
        self.assertEqual(code_name(w.call(msync={"pid": pid, "addr": addr, "length": 8192,
                                                 "sync": True})), "OK")
        s = Scrape(self.port)
        self.assertEqual((s.get("cowd_file_pages"), s.get("cowd_dirty_pages"),
                          s.get("cowd_writebacks_total"), s.get("cowd_file_errors_total")),
                         (2, 0, 1, 0))
        w.close()

    def test_request_counters_agree_with_sys_stats(self):
        w = self.daemon.connect()
        for _ in range(5):
            w.call(spawn={"name": "p"})
        reported = w.call(sys_stats={}).sys_stats.requests_total
        self.assertEqual(Scrape(self.port).requests_sum(), reported)
        w.close()

    def test_bench_operation_counts_equal_the_daemons_counters(self):
        before = Scrape(self.port)
        out = subprocess.run([os.environ["COWCTL_BIN"], "-s", self.daemon.socket_path, "--json",
                              "bench", "--mix", "read=3,write=2,fork=1", "-c", "3", "-P", "2",
                              "-n", "300", "--no-progress"],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        rep = json.loads(out.stdout)
        after = Scrape(self.port)
        self.assertEqual(after.requests_sum() - before.requests_sum(), rep["requests"])
        for op, n in rep["requests_by_op"].items():
            self.assertEqual(after.requests(op) - before.requests(op), n, op)
        # every measured operation is one read or write request, or a fork and an exit
        kinds = rep["ops_by_kind"]
        self.assertEqual(sum(kinds.values()), 300)
        self.assertEqual(after.requests("read") - before.requests("read"), kinds["read"])

    def test_only_get_of_metrics_is_served(self):
        self.assertEqual(http_get(self.port, "/")[0], 404)
        self.assertEqual(http_get(self.port, "/metrics/x")[0], 404)
        self.assertEqual(http_get(self.port, "/metrics", "POST")[0], 405)
        # and the daemon still answers both protocols afterwards
        self.assertEqual(http_get(self.port)[0], 200)
        w = self.daemon.connect()
        self.assertEqual(code_name(w.call(sys_stats={})), "OK")
        w.close()

    def daemon_sockets(self):
        fd_dir = "/proc/%d/fd" % self.daemon.proc.pid
        n = 0
        for fd in os.listdir(fd_dir):
            try:
                n += os.readlink(os.path.join(fd_dir, fd)).startswith("socket:")
            except FileNotFoundError:
                pass
        return n

    def test_a_flood_of_idle_connections_is_capped_and_a_scrape_then_served(self):
        first = Scrape(self.port)
        self.assertEqual(first.get("cowd_metrics_connections"), 1)  # the scrape's own
        cap = 16  # COW_METRICS_MAX_CONNECTIONS
        # Each round trip on the protocol socket shows the daemon has handled every
        # connection event that came before it (here: the scrape's close).
        w = self.daemon.connect()
        self.assertEqual(code_name(w.call(sys_stats={})), "OK")
        before = self.daemon_sockets()
        idle = [socket.create_connection(("127.0.0.1", self.port)) for _ in range(cap + 8)]
        try:
            self.assertEqual(code_name(w.call(sys_stats={})), "OK")
            # Accepting stopped at the cap: the rest wait in the kernel's backlog.
            self.assertEqual(self.daemon_sockets() - before, cap)
        finally:
            for s in idle:
                s.close()
            w.close()
        # Closing them makes room, and a scrape made now is served.
        after = Scrape(self.port)
        self.assertGreaterEqual(after.get("cowd_metrics_accept_pauses_total"), 1)
        self.assertGreaterEqual(after.get("cowd_metrics_connections"), 1)
        self.assertLessEqual(after.get("cowd_metrics_connections"), cap)


class Config(unittest.TestCase):
    def start_fails(self, *args):
        out = subprocess.run([cowdtest.daemon_binary(), "--socket", "/nonexistent/s", *args],
                             capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL)
        self.assertNotEqual(out.returncode, 0, out.stderr)
        return out.stderr

    def test_a_non_loopback_address_is_refused(self):
        for addr in ("0.0.0.0", "192.0.2.1", "::", "localhost"):
            with self.subTest(addr=addr):
                err = self.start_fails("--metrics-port", "9100", "--metrics-address", addr)
                self.assertIn("loopback", err)

    def test_ipv6_loopback_is_accepted(self):
        port = free_port()
        with cowdtest.Daemon("--metrics-port", str(port), "--metrics-address", "::1") as d:
            conn = http.client.HTTPConnection("::1", port, timeout=10)
            conn.request("GET", "/metrics")
            self.assertEqual(conn.getresponse().status, 200)
            conn.close()
            self.assertIn("serving metrics", d.log())


if __name__ == "__main__":
    unittest.main()
