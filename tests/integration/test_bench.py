#!/usr/bin/env python3
"""cowctl bench against a real daemon: every workload runs and reports what it
did, its JSON has the documented fields, the requests it says it sent are the
requests the daemon counted, TCP runs authenticate, and 10,000 connections
are held and served without an error. Runs are bounded by an operation count
(-n), never by a duration, so no test depends on how fast the machine is."""
import csv
import io
import json
import os
import resource
import socket
import subprocess
import tempfile
import unittest

import cowdtest

RUN_TIMEOUT = 120

WORKLOADS = ["read", "write", "fork", "cow", "zero", "exam"]

# The documented fields of `cowctl --json bench` (README, cowctl reference).
TOP_FIELDS = {"workload", "mix", "connections", "pipeline", "size", "shared", "rate",
              "elapsed_s", "ops", "ops_per_sec", "ops_by_kind", "warmup_ops", "errors",
              "errors_by_code", "connections_lost", "latency_us", "requests",
              "requests_by_op", "daemon_delta"}
LATENCY_FIELDS = {"count", "min", "mean", "p50", "p90", "p99", "p99_9", "max"}
DELTA_FIELDS = {"requests_total", "frames_used", "cow_copies", "cow_reuses", "zero_fills",
                "zero_maps", "segv_faults", "tlb_hits", "tlb_misses", "procs_created"}

TOKEN = "bench-token-0123456789abcdef"


def cowctl():
    return os.environ["COWCTL_BIN"]


def bench(d, *args, json_out=True, endpoint=None, token_file=None, check=True):
    """Runs cowctl bench against d; returns (parsed JSON or text, completed process)."""
    argv = [cowctl(), "-s", endpoint or d.socket_path]
    if token_file:
        argv += ["-t", token_file]
    if json_out:
        argv.append("--json")
    argv += ["bench", *args, "--no-progress"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                         stdin=subprocess.DEVNULL)
    if check and out.returncode != 0:
        raise AssertionError("%s exited %d:\n%s\n--- cowd log ---\n%s"
                             % (" ".join(argv), out.returncode, out.stderr, d.log()))
    if check and json_out:
        return json.loads(out.stdout), out
    return out.stdout, out


def requests_total(wire):
    return wire.call(sys_stats={}).sys_stats.requests_total


class Bench(unittest.TestCase):
    def check_report(self, rep, n):
        self.assertEqual(rep["errors"], 0, rep["errors_by_code"])
        self.assertEqual(rep["connections_lost"], 0)
        self.assertEqual(rep["ops"], n)
        self.assertEqual(sum(rep["ops_by_kind"].values()), n)
        self.assertEqual(rep["latency_us"]["all"]["count"], n)
        lat = rep["latency_us"]["all"]
        self.assertTrue(0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"]
                        <= lat["p99_9"] <= lat["max"], lat)

    def test_every_workload_runs_and_does_what_it_says(self):
        with cowdtest.Daemon() as d:
            for w in WORKLOADS:
                with self.subTest(workload=w):
                    rep, _ = bench(d, w, "-c", "3", "-P", "2", "-n", "60")
                    self.check_report(rep, 60)
                    self.assertEqual(rep["ops_by_kind"], {w: 60})
                    delta = rep["daemon_delta"]
                    byop = rep["requests_by_op"]
                    if w == "read":
                        self.assertEqual(byop["read"], 60)
                    if w == "write":
                        self.assertEqual(byop["write"], 60 + 3)  # setup fills 3 regions
                    if w in ("fork", "cow", "exam"):
                        self.assertEqual(byop["fork"], 60)
                        self.assertEqual(byop["exit"], 60 + 3)  # children, then the targets
                        self.assertEqual(delta["procs_created"], 60 + 3)
                    if w == "cow":
                        # every child writes 4 shared pages: 4 copies each
                        self.assertEqual(delta["cow_copies"], 60 * 4)
                    if w == "exam":
                        # the candidate's write to the read-only paper must fault
                        self.assertEqual(delta["segv_faults"], 60)
                    if w == "zero":
                        self.assertEqual(byop["munmap"], 60)
                        self.assertGreaterEqual(delta["zero_maps"], 60 * 64)

    def test_mix_and_shared_processes(self):
        with cowdtest.Daemon() as d:
            rep, _ = bench(d, "--mix", "read=70,write=20,fork=10", "--shared",
                           "-c", "6", "-P", "4", "-n", "600")
            self.check_report(rep, 600)
            self.assertEqual(rep["mix"], {"read": 70, "write": 20, "fork": 10})
            self.assertTrue(rep["shared"])
            self.assertEqual(set(rep["ops_by_kind"]), {"read", "write", "fork"})
            # one process shared by every connection
            self.assertEqual(rep["requests_by_op"]["spawn"], 1)

    def test_json_has_the_documented_fields(self):
        with cowdtest.Daemon() as d:
            rep, _ = bench(d, "write", "-n", "50", "-s", "100")
            self.assertEqual(set(rep), TOP_FIELDS)
            self.assertEqual(set(rep["latency_us"]), {"write", "all"})
            for lat in rep["latency_us"].values():
                self.assertEqual(set(lat), LATENCY_FIELDS)
            self.assertEqual(set(rep["daemon_delta"]), DELTA_FIELDS)
            self.assertEqual(rep["size"], 100)
            self.assertEqual((rep["connections"], rep["pipeline"]), (1, 1))

    def test_csv_has_a_row_per_operation_and_one_for_all(self):
        with cowdtest.Daemon() as d:
            text, _ = bench(d, "--mix", "read=1,write=1", "-n", "100", "--csv",
                            json_out=False)
            rows = list(csv.DictReader(io.StringIO(text)))
            self.assertEqual([r["op"] for r in rows], ["read", "write", "all"])
            self.assertEqual(int(rows[2]["count"]), 100)
            self.assertEqual(int(rows[0]["count"]) + int(rows[1]["count"]), 100)
            self.assertEqual(rows[2]["errors"], "0")

    def test_requests_reported_equal_the_daemons_request_counter(self):
        with cowdtest.Daemon() as d:
            w = d.connect()
            # What one sys_stats adds to the counter it reports, measured, not assumed.
            a = requests_total(w)
            own = requests_total(w) - a
            before = requests_total(w)
            rep, _ = bench(d, "--mix", "read=5,write=3,cow=2", "-c", "4", "-P", "3",
                           "-n", "400", "--warmup", "0")
            after = requests_total(w)
            self.assertEqual(after - before - own, rep["requests"])
            self.assertEqual(sum(rep["requests_by_op"].values()), rep["requests"])
            w.close()

    def test_rate_capped_run_completes_its_count(self):
        with cowdtest.Daemon() as d:
            rep, _ = bench(d, "read", "-c", "2", "--rate", "2000", "-n", "200")
            self.check_report(rep, 200)
            self.assertEqual(rep["rate"], 2000)

    def test_bad_options_are_usage_errors(self):
        with cowdtest.Daemon() as d:
            for args, words in [(["nosuch"], "unknown workload"),
                                (["--mix", "read=1,jump=2"], "unknown operation"),
                                (["--mix", "read=0"], "add up to 0"),
                                (["read", "--mix", "read=1"], "not both"),
                                (["read", "-n", "5", "-d", "1"], "not both"),
                                (["read", "-c", "0"], "-c must be"),
                                (["read", "-P", "x"], "invalid -P")]:
                with self.subTest(args=args):
                    _, out = bench(d, *args, json_out=False, check=False)
                    self.assertEqual(out.returncode, 2, out.stderr)
                    self.assertIn(words, out.stderr)

    def test_tcp_runs_authenticate_with_the_token_file(self):
        with tempfile.TemporaryDirectory(prefix="cowd-bench-") as tmp:
            tokens = os.path.join(tmp, "tokens")
            with open(tokens, "w") as f:
                f.write("1000 %s\n" % TOKEN)
            os.chmod(tokens, 0o600)
            mine = os.path.join(tmp, "token")
            with open(mine, "w") as f:
                f.write(TOKEN + "\n")
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            with cowdtest.Daemon("--tcp-port", str(port), "--tcp-token-file", tokens) as d:
                endpoint = "127.0.0.1:%d" % port
                rep, _ = bench(d, "write", "-c", "4", "-P", "2", "-n", "100",
                               endpoint=endpoint, token_file=mine)
                self.check_report(rep, 100)
                self.assertEqual(rep["requests_by_op"]["hello"], 4 + 1)  # and the control connection
                _, out = bench(d, "write", "-n", "10", endpoint=endpoint, json_out=False,
                               check=False)
                self.assertEqual(out.returncode, 1)
                self.assertIn("token", out.stderr)

    def test_ten_thousand_connections_are_served_without_an_error(self):
        conns = 10000
        need = conns + 512  # the daemon's and the bench's descriptors, with room
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and hard < need:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            except (ValueError, OSError):
                raise unittest.SkipTest("RLIMIT_NOFILE hard limit %d < %d, not root"
                                        % (hard, need))
        elif soft != resource.RLIM_INFINITY and soft < need:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
        # Children (the daemon, cowctl) inherit the raised limit.
        with cowdtest.Daemon("--max-connections", str(conns + 16),
                             "--max-processes", str(conns + 16)) as d:
            w = d.connect()
            rep, _ = bench(d, "read", "-c", str(conns), "-n", str(2 * conns),
                           "--proc-size", "16K")
            self.check_report(rep, 2 * conns)
            self.assertEqual(rep["connections"], conns)
            self.assertEqual(rep["requests_by_op"]["hello"], conns + 1)
            self.assertEqual(rep["requests_by_op"]["spawn"], conns)
            # the daemon held them all at once: its accept counter moved by as many
            self.assertGreaterEqual(w.call(sys_stats={}).sys_stats.connections_total, conns)
            w.close()


if __name__ == "__main__":
    unittest.main()
