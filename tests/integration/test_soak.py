#!/usr/bin/env python3
"""Soak: mixed load from cowctl bench for a bounded time while faults are injected;
the daemon's RSS stays flat after warm-up and every acknowledged write reads back.

COWD_SOAK_SECONDS sets the duration (default 60; CI's bound). Faults, all at once:
  - a swap file on a 64 KiB tmpfs (as root; else /dev/full), so that eviction under
    memory pressure fails with ENOSPC and requests get RESOURCE_EXHAUSTED;
  - memory pressure in waves: a region larger than what is free is written and unmapped;
  - clients that disconnect in the middle of a request, or right after sending one;
  - clients that send bytes that are not a Request.
A checker writes pages of its own process with patterns it records when, and only when,
the daemon acknowledges them (OK); a refused write must leave the old contents. After the
load, every recorded page is read back. RSS is sampled at intervals (the run's length is
the bound, not a delay: nothing waits on a sleep)."""
import json
import os
import random
import select
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import unittest

import cowdtest
from cowdtest import code_name

PAGE = 4096
DURATION = float(os.environ.get("COWD_SOAK_SECONDS", "60"))
MEMORY_PAGES = 1536                  # --memory 6M
CHECKED_PAGES = 384                  # the checker's recorded region
WAVE_PAGES = 1024                    # a pressure wave: more than is free
BENCH_PROCS, BENCH_PROC_PAGES = 8, 64
# RSS may move this much between the first sample after warm-up and any later one.
RSS_SLACK_KIB = 4096
# AddressSanitizer keeps freed memory in quarantine, so RSS says nothing there.
CHECK_RSS = os.environ.get("COWD_SANITIZED", "0") in ("0", "", "FALSE", "false")
REFUSALS = ("RESOURCE_EXHAUSTED", "UNAVAILABLE")


def pattern(page, seq):
    """The contents of a checked page at write number seq: distinct per page and write."""
    return struct.pack("<QQ", page, seq) * (PAGE // 16)


class SwapFile:
    """A swap file that fills up: on a 64 KiB tmpfs as root, else /dev/full."""

    def __enter__(self):
        self.mnt = None
        if os.geteuid() == 0 and shutil.which("mount"):
            self.mnt = tempfile.mkdtemp(prefix="cowd-soakfs-")
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", self.mnt])
            if r.returncode == 0:
                return os.path.join(self.mnt, "cowd.swap")
            os.rmdir(self.mnt)
            self.mnt = None
        return "/dev/full"

    def __exit__(self, *exc):
        if self.mnt:
            subprocess.run(["umount", self.mnt], check=True)
            os.rmdir(self.mnt)


class Abuser:
    """Connections that misbehave, one at a time, in turn."""

    def __init__(self, d, rng):
        self.d = d
        self.rng = rng
        self.count = 0

    def one(self):
        kind = self.count % 3
        self.count += 1
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(self.d.socket_path)
        try:
            if kind == 0:
                # Half a write request, then gone.
                s.sendall(struct.pack(">I", 4115) + bytes(self.rng.randrange(1, 4000)))
            elif kind == 1:
                # A whole read request, then gone before the reply.
                pb = cowdtest.pb2()
                req = pb.Request(id=1)
                req.read.pid = 1
                req.read.length = PAGE
                body = req.SerializeToString()
                s.sendall(struct.pack(">I", len(body)) + body)
            else:
                # Bytes that are not a Request: the daemon answers and closes.
                junk = bytes(self.rng.randrange(256) for _ in range(64))
                s.sendall(struct.pack(">I", len(junk)) + junk)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    ready, _, _ = select.select([s], [], [], deadline - time.monotonic())
                    if not ready or not s.recv(65536):
                        break
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            s.close()


class Soak(unittest.TestCase):
    def test_rss_is_flat_and_every_acknowledged_write_reads_back(self):
        rng = random.Random(20261203)
        with SwapFile() as swap, cowdtest.Daemon("--memory", "6M", "--swap-size", "1M",
                                                 "--swap-file", swap,
                                                 "--max-connections", "512") as d:
            w = d.connect()
            base_procs = w.call(sys_stats={}).sys_stats.procs
            bench = subprocess.Popen(
                [os.environ["COWCTL_BIN"], "-s", d.socket_path, "--json", "bench",
                 "--mix", "read=40,write=40,fork=10,cow=10", "-c", str(BENCH_PROCS), "-P", "2",
                 "--proc-size", str(BENCH_PROC_PAGES * PAGE), "-d", str(DURATION),
                 "--warmup", "0", "--no-progress"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                acked, stats = self.run_load(d, w, bench, rng, base_procs)
                out, err = bench.communicate(timeout=60)
            finally:
                if bench.poll() is None:
                    bench.kill()
                    bench.wait()

            # The bench ran throughout, lost no connection, and was refused only for room.
            rep = json.loads(out)
            self.assertEqual(rep["connections_lost"], 0, err)
            self.assertGreater(rep["ops_per_sec"], 0)
            self.assertTrue(set(rep["errors_by_code"]) <= set(REFUSALS), rep["errors_by_code"])

            # Every acknowledged write reads back, now that the pressure is gone.
            pid, addr = stats["pid"], stats["addr"]
            for page, data in acked.items():
                resp = w.call(read={"pid": pid, "addr": addr + page * PAGE, "length": PAGE})
                self.assertEqual(code_name(resp), "OK", resp.status.message)
                self.assertEqual(resp.read.data, data, "page %d" % page)

            # RSS after warm-up stays within the slack of its first sample.
            samples = stats["rss"]
            after = [kib for t, kib in samples if t >= DURATION / 3]
            self.assertGreaterEqual(len(after), 5)
            growth = max(after) - after[0]
            s = w.call(sys_stats={}).sys_stats
            print("soak: %.0f s, bench %d ops (%s), checker %d writes (%d refused), %d acked "
                  "pages read back, %d faulty clients, %d pressure waves, swap errors %d, "
                  "RSS %d -> %d KiB after warm-up (max %d, growth %d KiB)"
                  % (DURATION, rep["ops"], rep["errors_by_code"] or "no errors",
                     stats["writes"], stats["refused"], len(acked), stats["abusers"],
                     stats["waves"], s.swap_errors, after[0], after[-1], max(after), growth))
            self.assertGreater(stats["refused"] + sum(rep["errors_by_code"].values()), 0,
                               "the faults were never felt")
            if CHECK_RSS:
                self.assertLessEqual(growth, RSS_SLACK_KIB, samples)
            w.close()

    def run_load(self, d, w, bench, rng, base_procs):
        """Writes, checks, waves and abuse until the bench ends. Returns the acknowledged
        pages and what happened."""
        pid = w.call(spawn={"name": "checker"}).spawn.pid
        addr = w.call(mmap={"pid": pid, "length": CHECKED_PAGES * PAGE, "prot": 3}).mmap.addr
        acked = {}
        stats = {"pid": pid, "addr": addr, "writes": 0, "refused": 0, "abusers": 0,
                 "waves": 0, "rss": []}
        abuser = Abuser(d, rng)
        t0 = time.monotonic()
        next_sample = t0
        wave = None  # (addr, next page) of the region being written, or None
        seq = 0
        # Pressure waves start once the bench has made its processes, so that its setup is
        # not refused; until then the checker writes within free memory.
        bench_ready = False
        while bench.poll() is None:
            now = time.monotonic()
            if now - t0 > DURATION + 60:
                self.fail("the bench did not end in time")
            if now >= next_sample:
                stats["rss"].append((now - t0, d.rss_kib()))
                next_sample = now + DURATION / 30
            if not bench_ready:
                bench_ready = w.call(sys_stats={}).sys_stats.procs >= base_procs + BENCH_PROCS + 1

            # The checker: a write, recorded only when acknowledged.
            page = rng.randrange(CHECKED_PAGES)
            seq += 1
            data = pattern(page, seq)
            resp = w.call(write={"pid": pid, "addr": addr + page * PAGE, "data": data})
            stats["writes"] += 1
            if code_name(resp) == "OK":
                acked[page] = data
            else:
                self.assertIn(code_name(resp), REFUSALS, resp.status.message)
                stats["refused"] += 1
            # ... and a read of some page: refused for room, or what was last acknowledged.
            page = rng.randrange(CHECKED_PAGES)
            resp = w.call(read={"pid": pid, "addr": addr + page * PAGE, "length": PAGE})
            if code_name(resp) == "OK":
                self.assertEqual(resp.read.data, acked.get(page, bytes(PAGE)), "page %d" % page)
            else:
                self.assertIn(code_name(resp), REFUSALS, resp.status.message)

            # A pressure wave: a region bigger than what is free, written page by page
            # alongside the rest, then unmapped.
            if bench_ready and wave is None:
                wave = (w.call(mmap={"pid": pid, "length": WAVE_PAGES * PAGE,
                                     "prot": 3}).mmap.addr, 0)
            if wave is not None:
                waddr, i = wave
                for _ in range(16):
                    resp = w.call(write={"pid": pid, "addr": waddr + i * PAGE,
                                         "data": b"w" * PAGE})
                    self.assertIn(code_name(resp), ("OK",) + REFUSALS, resp.status.message)
                    i += 1
                    if i == WAVE_PAGES:
                        break
                if i == WAVE_PAGES:
                    resp = w.call(munmap={"pid": pid, "addr": waddr,
                                          "length": WAVE_PAGES * PAGE})
                    self.assertEqual(code_name(resp), "OK", resp.status.message)
                    stats["waves"] += 1
                    wave = None
                else:
                    wave = (waddr, i)

            if seq % 8 == 0:
                abuser.one()
                stats["abusers"] += 1
        if wave is not None:
            w.call(munmap={"pid": pid, "addr": wave[0], "length": WAVE_PAGES * PAGE})
        stats["rss"].append((time.monotonic() - t0, d.rss_kib()))
        return acked, stats


if __name__ == "__main__":
    unittest.main(verbosity=2)
