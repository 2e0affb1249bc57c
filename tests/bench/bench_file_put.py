#!/usr/bin/env python3
"""What a large file put costs everyone else, run by hand.

One client puts a file of M MiB again and again (a whole put: write, fsync,
rename, fsync of the directory); another asks for sys_stats in a loop
meanwhile and records each round trip. The figures are printed beside the
anchor, measured in the same run on the same file system: the host writing and
fsyncing M MiB itself. The put's disk work runs on the daemon's file writer
thread; what the other client still waits for is the event loop's share of a
put (reading, decoding and copying the frame) and the host's scheduling.

usage: tests/bench/bench_file_put.py [--build DIR] [--puts N] [--mib M] [--dir D]

DIR is the build tree (default build/gcc); D the directory the daemon's files
and the anchor's file go in (default: a new one under the system's temporary
directory). Stops by itself after N puts.
"""
import argparse
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import cowdtest  # noqa: E402


def anchor_seconds(directory, data, rounds):
    """The host's own write and fsync of data into a new file in directory: the median."""
    times = []
    path = os.path.join(directory, "anchor.bin")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        times.append(time.perf_counter() - t0)
        os.unlink(path)
    return statistics.median(times)


def putter(socket_path, size, puts, started, result):
    """The other process: puts size bytes `puts` times; reports the seconds each took."""
    w = cowdtest.Wire(socket_path, timeout=120.0)
    data = os.urandom(size)
    started.set()
    times = []
    for _ in range(puts):
        t0 = time.perf_counter()
        resp = w.call(file_put={"name": "big.bin", "data": data})
        times.append(time.perf_counter() - t0)
        if cowdtest.code_name(resp) != "OK":
            raise SystemExit("file_put: " + resp.status.message)
    w.close()
    result.put(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build/gcc")
    ap.add_argument("--puts", type=int, default=20)
    ap.add_argument("--mib", type=int, default=8)
    ap.add_argument("--dir")
    args = ap.parse_args()
    os.environ.setdefault("COWD_BIN", os.path.join(args.build, "daemon/service/cowd"))
    size = args.mib << 20
    base = tempfile.mkdtemp(prefix="cowd-bench-put-", dir=args.dir)
    files = os.path.join(base, "files")

    anchor = anchor_seconds(base, os.urandom(size), 5)
    with cowdtest.Daemon("--files-dir", files, "--max-frame-bytes", str(size + (1 << 20))) as d:
        w = d.connect()
        started, result = multiprocessing.Event(), multiprocessing.Queue()
        proc = multiprocessing.Process(target=putter,
                                       args=(d.socket_path, size, args.puts, started, result))
        proc.start()
        started.wait()
        rtts = []
        while proc.is_alive() and result.empty():
            t0 = time.perf_counter()
            cowdtest.ok(w.call(sys_stats={}))
            rtts.append(time.perf_counter() - t0)
        puts = result.get(timeout=600)
        proc.join()
        w.close()
    shutil.rmtree(base)

    slow = sum(1 for r in rtts if r > anchor / 2)
    rtts.sort()
    p99 = rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))]
    print("anchor: host write + fsync of %d MiB: %.1f ms (median of 5)" % (args.mib, anchor * 1e3))
    print("put of %d MiB through cowd: median %.1f ms = %.2f anchors" %
          (args.mib, statistics.median(puts) * 1e3, statistics.median(puts) / anchor))
    print("another client's sys_stats meanwhile (%d round trips): median %.3f ms, "
          "p99 %.3f ms = %.3f anchors, max %.1f ms = %.2f anchors" %
          (len(rtts), statistics.median(rtts) * 1e3, p99 * 1e3, p99 / anchor, rtts[-1] * 1e3,
           rtts[-1] / anchor))
    print("round trips longer than half an anchor: %d, against %d puts" % (slow, args.puts))


if __name__ == "__main__":
    main()
