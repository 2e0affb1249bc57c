#!/usr/bin/env python3
"""Instructions per request under callgrind, for cowd and cowctl bench, beside
redis-server and redis-benchmark doing the same 4 KiB SET/GET; with --syscalls,
system calls per request under strace -c instead.

usage: tests/bench/bench_instructions.py [--build DIR] [-n OPS] [-c CONNS] [--only cowd|redis]
                                         [--cells write:1,read:1,write:16,read:16] [--syscalls]

Wall-clock figures swing with whatever else the machine runs; instruction
counts do not. Each side is measured by difference, so that start-up and the
bench's own setup cancel out: a server runs under callgrind, one run of n1
operations is made and its counters dumped, then a run of n2; the figure is
(Ir(n2) - Ir(n1)) / (n2 - n1). A client is run under callgrind twice, with n1
and n2 operations, against a server running natively.

Callgrind counts a string instruction (rep movsb, rep stosb) once per byte it
moves, so memcpy and memset of a page weigh far more here than in time: compare
copies with care. Kernel work is not counted at all, hence --syscalls.

Needs valgrind (strace for --syscalls); redis-server and redis-benchmark for
the Redis rows. Every
run is bounded by its operation count and listens on a Unix socket or
loopback only.
"""
import argparse
import glob
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import cowdtest  # noqa: E402
from bench_service import redis_wait_ready  # noqa: E402



def callgrind_total(path):
    """The total instruction count of one callgrind output file."""
    with open(path) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise SystemExit("no totals in " + path)


class Dumps:
    """Callgrind dumps of one server process, taken between client runs."""

    def __init__(self, outdir, pid):
        self.outdir = outdir
        self.pid = pid
        self.seen = set()

    def dump(self):
        """Dumps the counters since the last dump; returns their total."""
        # callgrind_control returns once the server has written the dump.
        subprocess.run(["callgrind_control", "-d", str(self.pid)], check=True,
                       capture_output=True, timeout=300)
        # Dumps are cg.out.PID.1, .2, ...; cg.out.PID itself is written at exit.
        new = sorted(set(glob.glob(os.path.join(self.outdir, "cg.out.*.*"))) - self.seen)
        if len(new) != 1:
            raise SystemExit("expected one new callgrind dump, found %s" % new)
        self.seen |= set(new)
        return callgrind_total(new[0])


def strace_calls(path):
    """The total number of system calls in an strace -c summary."""
    with open(path) as f:
        for line in f:
            cells = line.split()
            if cells and cells[-1] == "total":
                return int(cells[3])
    raise SystemExit("no total in " + path)


def syscalls_per_request(server_pid, client_cmd, n, outdir):
    """System calls per request of the server (attached to) and of the client, one run."""
    spath, cpath = os.path.join(outdir, "server.strace"), os.path.join(outdir, "client.strace")
    tracer = subprocess.Popen(["strace", "-c", "-f", "-p", str(server_pid), "-o", spath],
                              stderr=subprocess.PIPE, text=True)
    tracer.stderr.readline()  # "Process N attached": counting has begun
    subprocess.run(["strace", "-c", "-f", "-o", cpath] + client_cmd, check=True,
                   capture_output=True, timeout=1200)
    tracer.send_signal(2)
    tracer.wait(timeout=60)
    return strace_calls(spath) / n, strace_calls(cpath) / n


def per_request(dumps, run, n1, n2):
    run(n1)
    dumps.dump()  # start-up and a first warm run, discarded
    run(n1)
    a = dumps.dump()
    run(n2)
    b = dumps.dump()
    return (b - a) / (n2 - n1)


def client_per_request(cmd_for, n1, n2, outdir):
    totals = []
    for n in (n1, n2):
        out = os.path.join(outdir, "client.%d" % n)
        subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out]
                       + cmd_for(n), check=True, capture_output=True, timeout=1200)
        totals.append(callgrind_total(out))
    return (totals[1] - totals[0]) / (n2 - n1)


def cowd_cells(build, cells, n1, n2, conns, syscalls=False):
    cowctl = os.path.join(build, "client", "cowctl", "cowctl")
    os.environ.setdefault("COWD_BIN", os.path.join(build, "daemon", "service", "cowd"))
    rows = []
    limits = ("--max-connections", str(conns + 100), "--max-processes", str(conns + 100))
    for op, p in cells:
        def args(n, sock):
            return [cowctl, "-s", sock, "--json", "bench", op, "-s", "4096", "-c", str(conns),
                    "-P", str(p), "-n", str(n), "--warmup", "0", "--no-progress"] + small

        # Many connections: small processes, as bench_service.py's scale table has them.
        small = ["--proc-size", "16K"] if conns > 1000 else []

        outdir = tempfile.mkdtemp(prefix="cowd-cg-")
        if syscalls:
            with cowdtest.Daemon(*limits) as d:
                run = args(n1, d.socket_path)
                subprocess.run(run, check=True, capture_output=True, timeout=1200)  # warm
                rows.append(("cowd %s -P %d" % (op, p),)
                            + syscalls_per_request(d.proc.pid, args(n2, d.socket_path), n2,
                                                   outdir))
            shutil.rmtree(outdir, ignore_errors=True)
            continue
        os.environ["COWD_WRAPPER"] = ("valgrind --tool=callgrind --callgrind-out-file=%s/cg.out.%%p"
                                      % outdir)
        try:
            with cowdtest.Daemon(*limits) as d:
                dumps = Dumps(outdir, d.proc.pid)

                def run(n):
                    subprocess.run(args(n, d.socket_path), check=True, capture_output=True,
                                   timeout=1200)
                daemon = per_request(dumps, run, n1, n2)
        finally:
            del os.environ["COWD_WRAPPER"]
        with cowdtest.Daemon(*limits) as d:
            client = client_per_request(lambda n: args(n, d.socket_path), n1, n2, outdir)
        shutil.rmtree(outdir, ignore_errors=True)
        rows.append(("cowd %s -P %d" % (op, p), daemon, client))
    return rows


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_cells(cells, n1, n2, conns, syscalls=False):
    rows = []
    for op, p in cells:
        test = {"write": "set", "read": "get"}[op]
        outdir = tempfile.mkdtemp(prefix="cowd-cg-redis-")
        port = free_port()

        def args(n):
            return ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", test,
                    "-d", "4096", "-c", str(conns), "-P", str(p), "-n", str(n), "-q"]
        def start(wrapper, seconds):
            """redis-server on port, under wrapper (a list), once it accepts connections."""
            server = subprocess.Popen(wrapper + ["redis-server", "--port", str(port),
                                                 "--bind", "127.0.0.1", "--save", "",
                                                 "--appendonly", "no", "--dir", outdir,
                                                 "--loglevel", "warning"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            redis_wait_ready(port, seconds)
            return server

        if syscalls:
            server = start([], 10)
            try:
                subprocess.run(args(n1), check=True, capture_output=True, timeout=1200)
                rows.append(("redis %s -P %d" % (test.upper(), p),)
                            + syscalls_per_request(server.pid, args(n2), n2, outdir))
            finally:
                server.terminate()
                server.wait(timeout=60)
            shutil.rmtree(outdir, ignore_errors=True)
            continue
        server = start(["valgrind", "--tool=callgrind",
                        "--callgrind-out-file=%s/cg.out.%%p" % outdir], 60)
        try:
            dumps = Dumps(outdir, server.pid)
            daemon = per_request(dumps, lambda n: subprocess.run(args(n), check=True,
                                                                 capture_output=True,
                                                                 timeout=1200), n1, n2)
        finally:
            server.terminate()
            server.wait(timeout=60)
        server = start([], 10)
        try:
            client = client_per_request(args, n1, n2, outdir)
        finally:
            server.terminate()
            server.wait(timeout=60)
        shutil.rmtree(outdir, ignore_errors=True)
        rows.append(("redis %s -P %d" % (test.upper(), p), daemon, client))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(HERE, "..", "..", "build", "gcc"))
    ap.add_argument("-n", type=int, default=20000, help="operations in the larger run")
    ap.add_argument("-c", type=int, default=50, help="connections")
    ap.add_argument("--only", choices=["cowd", "redis"])
    ap.add_argument("--cells", default="write:1,read:1,write:16,read:16")
    ap.add_argument("--syscalls", action="store_true",
                    help="system calls per request (strace -c), not instructions")
    a = ap.parse_args()
    cells = [(c.split(":")[0], int(c.split(":")[1])) for c in a.cells.split(",")]
    n2, n1 = a.n, a.n // 4
    rows = []
    if a.only in (None, "cowd"):
        if a.c > 1000:
            need = 2 * a.c + 1024
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            if soft < need:
                resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
        rows += cowd_cells(a.build, cells, n1, n2, a.c, a.syscalls)
    if a.only in (None, "redis") and shutil.which("redis-server"):
        rows += redis_cells(cells, n1, n2, a.c, a.syscalls)
    if a.syscalls:
        print("system calls per request under strace -c (4 KiB values, %d connections, "
              "%d operations)" % (a.c, n2))
    else:
        print("instructions per request under callgrind (4 KiB values, %d connections, "
              "difference of %d and %d operations)" % (a.c, n2, n1))
    print("%-24s %14s %14s %14s" % ("cell", "server", "client", "together"))
    fmt = "%-24s %14.2f %14.2f %14.2f" if a.syscalls else "%-24s %14.0f %14.0f %14.0f"
    for name, server, client in rows:
        print(fmt % (name, server, client, server + client))


if __name__ == "__main__":
    main()
