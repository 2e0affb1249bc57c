#!/usr/bin/env python3
"""File and device mappings through the daemon, where the test looks at the
disk or the screen itself: a clean mapping leaves the file's bytes and
modification time alone (Pintos mmap-clean); a synced msync survives
`kill -9` of the daemon; dirty pages reach the file at a clean stop; a
replaced or removed file is refused while mapped; the framebuffer's
screenshot holds exactly the pixels a script drew; the console log keeps
two processes' text in order; a full data directory fails a write-back
with a typed error, keeps the pages dirty and loses nothing."""
import contextlib
import json
import os
import select
import struct
import subprocess
import tempfile
import time
import unittest

import cowdtest
from cowdtest import code_name

PAGE = 4096
HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(HERE, "..", "..", "client", "examples")


def ok(resp):
    assert code_name(resp) == "OK", resp.status.message
    return resp


def cowctl(d, *args, check=True):
    out = subprocess.run([os.environ["COWCTL_BIN"], "-s", d.socket_path] + list(args),
                         capture_output=True, timeout=120)
    if check and out.returncode != 0:
        raise AssertionError("cowctl %s: %s%s" % (" ".join(args), out.stdout.decode(),
                                                  out.stderr.decode()))
    return out


def read_until(pipe, want, seconds=20):
    """Bytes read from pipe until they end with want; fails after the deadline."""
    got = b""
    deadline = time.monotonic() + seconds
    while not got.endswith(want):
        left = deadline - time.monotonic()
        ready, _, _ = select.select([pipe], [], [], max(left, 0))
        if not ready:
            raise AssertionError("waited %ds for %r; got %r" % (seconds, want, got))
        chunk = os.read(pipe.fileno(), 4096)
        if not chunk:
            raise AssertionError("the pipe closed before %r; got %r" % (want, got))
        got += chunk
    return got


def owner_dir(files_dir):
    return os.path.join(files_dir, str(os.geteuid()))


def map_new_file(w, name, data, length=PAGE, prot=3, shared=True):
    """Puts a file of data, spawns a process and maps the file into it: (pid, addr)."""
    ok(w.call(file_put={"name": name, "data": data}))
    pid = ok(w.call(spawn={"name": name[:31]})).spawn.pid
    addr = ok(w.call(mmap={"pid": pid, "length": length, "prot": prot, "shared": shared,
                           "kind": 1, "path": name})).mmap.addr
    return pid, addr


@contextlib.contextmanager
def daemon_to_kill(*args):
    """A daemon the test ends with kill(): its exit status is not checked."""
    d = cowdtest.Daemon(*args)
    d.start()
    try:
        yield d
    finally:
        d.stop(check=False)


class Files(unittest.TestCase):
    def test_a_clean_mapping_leaves_bytes_and_mtime_alone(self):
        with tempfile.TemporaryDirectory(prefix="cowd-files-") as files, \
                cowdtest.Daemon("--files-dir", files) as d:
            w = d.connect()
            data = bytes(range(256)) * 40  # 10240 bytes: three pages, the last partial
            pid, addr = map_new_file(w, "clean.bin", data, length=3 * PAGE)
            path = os.path.join(owner_dir(files), "clean.bin")
            # An mtime in the past, so that any write at all would move it.
            os.utime(path, ns=(1_000_000_000, 1_000_000_000))
            before = os.stat(path)
            self.assertEqual(ok(w.call(read={"pid": pid, "addr": addr, "length": len(data)}))
                             .read.data, data)
            ok(w.call(msync={"pid": pid, "addr": addr, "length": 3 * PAGE, "sync": True}))
            ok(w.call(munmap={"pid": pid, "addr": addr, "length": 3 * PAGE}))
            ok(w.call(exit={"pid": pid}))
            self.assertEqual(w.call(sys_stats={}).sys_stats.writebacks, 0)
            w.close()
            d.stop()
            # The daemon's stop (which writes every dirty page back) wrote nothing either.
            self.assertEqual(os.stat(path).st_mtime_ns, before.st_mtime_ns)
            with open(path, "rb") as f:
                self.assertEqual(f.read(), data)

    def test_a_synced_msync_survives_kill_9(self):
        with tempfile.TemporaryDirectory(prefix="cowd-state-") as state, \
                daemon_to_kill("--state-dir", state) as d:
            w = d.connect()
            pid, addr = map_new_file(w, "durable.txt", b"." * 100)
            ok(w.call(write={"pid": pid, "addr": addr + 10, "data": b"acknowledged"}))
            ok(w.call(msync={"pid": pid, "addr": addr, "length": PAGE, "sync": True}))
            # Written after the msync and never synced: may be lost, and is.
            ok(w.call(write={"pid": pid, "addr": addr + 50, "data": b"unsynced"}))
            d.kill()  # SIGKILL, right after the synced msync's reply
            self.assertEqual(d.proc.returncode, -9)
            path = os.path.join(owner_dir(os.path.join(state, "files")), "durable.txt")
            with open(path, "rb") as f:
                got = f.read()
            self.assertEqual(got, b"." * 10 + b"acknowledged" + b"." * 78)
            w.close()

    def test_a_checkpoint_keeps_dirty_file_pages_and_the_backend_comes_back(self):
        with tempfile.TemporaryDirectory(prefix="cowd-state-") as state:
            with daemon_to_kill("--state-dir", state) as d:
                w = d.connect()
                pid, addr = map_new_file(w, "kept.txt", b"=" * 30)
                ok(w.call(write={"pid": pid, "addr": addr, "data": b"in the checkpoint"}))
                ok(w.call(checkpoint={}))
                w.close()
                d.kill()
            path = os.path.join(owner_dir(os.path.join(state, "files")), "kept.txt")
            with open(path, "rb") as f:
                self.assertEqual(f.read(), b"=" * 30)  # never written back before the kill
            with cowdtest.Daemon("--state-dir", state) as d:
                w = d.connect()
                pm = ok(w.call(page_map={"pid": pid, "addr": addr, "length": PAGE}))
                self.assertTrue(pm.page_map.pages[0].dirty)
                self.assertEqual(code_name(w.call(file_remove={"name": "kept.txt"})),
                                 "FAILED_PRECONDITION")
                # The restored engine writes back through the file store it was given.
                ok(w.call(msync={"pid": pid, "addr": addr, "length": PAGE, "sync": True}))
                with open(path, "rb") as f:
                    self.assertEqual(f.read(), b"in the checkpoint" + b"=" * 13)
                w.close()

    def test_dirty_pages_reach_the_file_at_a_clean_stop(self):
        with tempfile.TemporaryDirectory(prefix="cowd-state-") as state:
            with cowdtest.Daemon("--state-dir", state) as d:
                w = d.connect()
                pid, addr = map_new_file(w, "stop.txt", b"-" * 20)
                ok(w.call(write={"pid": pid, "addr": addr, "data": b"at stop"}))
                w.close()
            path = os.path.join(owner_dir(os.path.join(state, "files")), "stop.txt")
            with open(path, "rb") as f:
                self.assertEqual(f.read(), b"at stop" + b"-" * 13)

    def test_a_mapped_file_cannot_be_replaced_or_removed(self):
        with cowdtest.Daemon() as d:
            w = d.connect()
            pid, addr = map_new_file(w, "busy", b"busy", prot=1, shared=False)
            ok(w.call(read={"pid": pid, "addr": addr, "length": 4}))
            for op, fields in (("file_put", {"name": "busy", "data": b"new"}),
                               ("file_put", {"name": "busy", "data": b"more", "offset": 4}),
                               ("file_remove", {"name": "busy"})):
                r = w.call(**{op: fields})
                self.assertEqual(code_name(r), "FAILED_PRECONDITION", op)
                self.assertIn("mapped", r.status.message)
            self.assertTrue(w.call(file_list={}).file_list.files[0].mapped)
            maps = ok(w.call(list_maps={"pid": pid})).list_maps.maps
            self.assertEqual([(m.kind, m.path) for m in maps], [(1, "busy")])
            ok(w.call(munmap={"pid": pid, "addr": addr, "length": PAGE}))
            # Unmapped: the page cache lets go, and the file may change again.
            ok(w.call(file_put={"name": "busy", "data": b"new"}))
            ok(w.call(file_remove={"name": "busy"}))
            w.close()

    def test_a_full_data_directory_fails_the_write_back_and_loses_nothing(self):
        with cowdtest.small_tmpfs(self, "64k", "cowd-files-") as mnt:
            self._full_disk(mnt)

    def _full_disk(self, mnt):
        with cowdtest.Daemon("--files-dir", mnt) as d:
            w = d.connect()
            ok(w.call(file_put={"name": "sparse", "data": b""}))
            path = os.path.join(owner_dir(mnt), "sparse")
            # A file with a hole: writing its pages back needs blocks it does not have.
            os.truncate(path, 4 * PAGE)
            filler = os.path.join(mnt, "filler")
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                while os.write(fd, b"\xff" * PAGE) > 0:
                    pass
            except OSError:
                pass  # full: what this test wants
            finally:
                os.close(fd)
            pid = ok(w.call(spawn={"name": "full"})).spawn.pid
            addr = ok(w.call(mmap={"pid": pid, "length": 4 * PAGE, "prot": 3, "shared": True,
                                   "kind": 1, "path": "sparse"})).mmap.addr
            pages = [bytes([0x41 + i]) * PAGE for i in range(4)]
            for i, p in enumerate(pages):
                ok(w.call(write={"pid": pid, "addr": addr + i * PAGE, "data": p}))
            r = w.call(msync={"pid": pid, "addr": addr, "length": 4 * PAGE, "sync": True})
            self.assertEqual(code_name(r), "RESOURCE_EXHAUSTED", r.status.message)
            self.assertIn("no space left", r.status.message)
            r = w.call(munmap={"pid": pid, "addr": addr, "length": 4 * PAGE})
            self.assertEqual(code_name(r), "RESOURCE_EXHAUSTED", r.status.message)
            # Nothing lost: the pages are still mapped, dirty, with their data.
            for i, p in enumerate(pages):
                self.assertEqual(ok(w.call(read={"pid": pid, "addr": addr + i * PAGE,
                                                 "length": PAGE})).read.data, p)
            s = w.call(sys_stats={}).sys_stats
            self.assertGreater(s.file_errors, 0)
            self.assertGreater(s.dirty_pages, 0)
            self.assertEqual(code_name(w.call(spawn={"name": "still-serving"})), "OK")
            # Room again: the same msync now succeeds and the file is whole.
            os.unlink(filler)
            ok(w.call(msync={"pid": pid, "addr": addr, "length": 4 * PAGE, "sync": True}))
            with open(path, "rb") as f:
                self.assertEqual(f.read(), b"".join(pages))
            w.close()


class Devices(unittest.TestCase):
    def test_the_screenshot_holds_exactly_what_the_script_drew(self):
        import png  # python3-png (pypng)
        script = os.path.join(EXAMPLES, "framebuffer.cow")
        with cowdtest.Daemon() as d, tempfile.TemporaryDirectory() as tmp:
            cowctl(d, "run", script)
            out = os.path.join(tmp, "fb0.png")
            cowctl(d, "screenshot", "fb0", out)
            with open(out, "rb") as f:
                width, height, rows, _ = png.Reader(file=f).asRGB8()
                got = [bytes(r) for r in rows]
            self.assertEqual((width, height), (640, 480))
        # The pattern framebuffer.cow draws: eight vertical bars of 80 pixels,
        # in palette order in bands 0 and 2 of 120 rows, reversed in 1 and 3.
        palette = [(0xff, 0xff, 0xff), (0xff, 0xff, 0x10), (0x10, 0xff, 0xff),
                   (0x10, 0xff, 0x10), (0xff, 0x10, 0xff), (0xff, 0x10, 0x10),
                   (0x10, 0x10, 0xff), (0x20, 0x20, 0x20)]
        forward = b"".join(bytes(c) * 80 for c in palette)
        backward = b"".join(bytes(c) * 80 for c in reversed(palette))
        for y in range(480):
            want = forward if (y // 120) % 2 == 0 else backward
            self.assertEqual(got[y], want, "row %d" % y)

    def test_device_reads_are_bounded_and_fb0_is_shared(self):
        with cowdtest.Daemon("--fb-width", "64", "--fb-height", "32",
                             "--max-frame-bytes", "8K") as d:
            w = d.connect()
            r = w.call(device_read={"device": "fb0"})
            self.assertEqual((r.device_read.width, r.device_read.height, r.device_read.size),
                             (64, 32, 64 * 32 * 4))
            self.assertEqual(code_name(w.call(device_read={"device": "fb0",
                                                            "length": 8192})),
                             "RESOURCE_EXHAUSTED")
            self.assertEqual(code_name(w.call(device_read={"device": "fb0", "offset": 8192,
                                                            "length": 1})), "OUT_OF_RANGE")
            self.assertEqual(code_name(w.call(device_read={"device": "tty0"})), "NOT_FOUND")
            a = ok(w.call(spawn={"name": "a"})).spawn.pid
            b = ok(w.call(spawn={"name": "b"})).spawn.pid
            ma = ok(w.call(mmap={"pid": a, "length": 2 * PAGE, "prot": 3, "kind": 2,
                                 "path": "fb0"})).mmap.addr
            mb = ok(w.call(mmap={"pid": b, "length": 2 * PAGE, "prot": 3, "kind": 2,
                                 "path": "fb0"})).mmap.addr
            pixel = struct.pack("<I", 0xff123456)
            ok(w.call(write={"pid": a, "addr": ma + 4 * 65, "data": pixel}))
            self.assertEqual(ok(w.call(read={"pid": b, "addr": mb + 4 * 65, "length": 4}))
                             .read.data, pixel)
            self.assertEqual(ok(w.call(device_read={"device": "fb0", "offset": 4 * 65,
                                                     "length": 4})).device_read.data, pixel)
            # A device page is never copy-on-write: a fork shares it.
            c = ok(w.call(fork={"pid": a})).fork.child_pid
            ok(w.call(write={"pid": c, "addr": ma, "data": b"\x01\x02\x03\x04"}))
            self.assertEqual(ok(w.call(read={"pid": a, "addr": ma, "length": 4})).read.data,
                             b"\x01\x02\x03\x04")
            pm = ok(w.call(page_map={"pid": a, "addr": ma, "length": PAGE})).page_map.pages[0]
            self.assertTrue(pm.device)
            s = w.call(sys_stats={}).sys_stats
            self.assertGreater(s.device_frames, 0)
            self.assertEqual(s.frames_used, 0)
            w.close()

    def test_the_map_picture_names_file_and_device_pages(self):
        with cowdtest.Daemon() as d:
            w = d.connect()
            pid, addr = map_new_file(w, "notes.txt", b"notes")
            fb = ok(w.call(mmap={"pid": pid, "length": PAGE, "prot": 3, "shared": True,
                                 "kind": 2, "path": "fb0"})).mmap.addr
            ok(w.call(write={"pid": pid, "addr": addr, "data": b"N"}))
            ok(w.call(write={"pid": pid, "addr": fb, "data": b"\xff"}))
            pages = {p["addr"]: p for p in json.loads(cowctl(d, "--json", "map", str(pid)).stdout)
                     ["procs"][0]["pages"]}
            self.assertEqual((pages[addr]["file"], pages[addr]["dirty"], pages[addr]["device"]),
                             (True, True, False))
            self.assertEqual((pages[fb]["file"], pages[fb]["device"]), (False, True))
            dot = cowctl(d, "map", str(pid)).stdout.decode()
            self.assertIn("file, MAP_SHARED, dirty</TD>", dot)
            self.assertIn(">device</TD>", dot)
            w.close()

    def test_two_processes_write_the_console_in_order(self):
        with cowdtest.Daemon() as d:
            w = d.connect()
            a = ok(w.call(spawn={"name": "a"})).spawn.pid
            b = ok(w.call(spawn={"name": "b"})).spawn.pid
            ca = ok(w.call(mmap={"pid": a, "length": PAGE, "prot": 3, "kind": 2,
                                 "path": "console"})).mmap.addr
            cb = ok(w.call(mmap={"pid": b, "length": PAGE, "prot": 3, "kind": 2,
                                 "path": "console"})).mmap.addr
            lines = [(a, ca, b"a: hello\n"), (b, cb, b"b: hi there\n"), (a, ca, b"a: bye\n"),
                     (b, cb, b"b: so long\n")]
            for pid, addr, text in lines:
                ok(w.call(write={"pid": pid, "addr": addr, "data": text}))
            want = b"".join(t for _, _, t in lines)
            r = ok(w.call(console_read={})).console_read
            self.assertEqual((r.data, r.start, r.next_offset), (want, 0, len(want)))
            # Following from a position returns only what came after it.
            ok(w.call(write={"pid": a, "addr": ca, "data": b"a: more\n"}))
            r = ok(w.call(console_read={"offset": len(want)})).console_read
            self.assertEqual(r.data, b"a: more\n")
            self.assertEqual(ok(w.call(console_read={"offset": r.next_offset}))
                             .console_read.data, b"")
            self.assertEqual(w.call(sys_stats={}).sys_stats.console_bytes, len(want) + 8)
            w.close()
            out = cowctl(d, "console")
            self.assertEqual(out.stdout, want + b"a: more\n")

    def test_console_follow_prints_what_comes_later(self):
        with cowdtest.Daemon() as d:
            w = d.connect()
            p = ok(w.call(spawn={"name": "talker"})).spawn.pid
            c = ok(w.call(mmap={"pid": p, "length": PAGE, "prot": 3, "kind": 2,
                                "path": "console"})).mmap.addr
            ok(w.call(write={"pid": p, "addr": c, "data": b"before\n"}))
            follow = subprocess.Popen([os.environ["COWCTL_BIN"], "-s", d.socket_path, "console",
                                       "-f"], stdout=subprocess.PIPE)
            try:
                self.assertEqual(read_until(follow.stdout, b"before\n"), b"before\n")
                ok(w.call(write={"pid": p, "addr": c, "data": b"after\n"}))
                self.assertEqual(read_until(follow.stdout, b"after\n"), b"after\n")
            finally:
                follow.kill()
                follow.wait()
                follow.stdout.close()
            w.close()

    def test_a_small_console_log_says_what_was_lost(self):
        with cowdtest.Daemon("--console-log-size", "1K") as d:
            w = d.connect()
            p = ok(w.call(spawn={"name": "chatty"})).spawn.pid
            c = ok(w.call(mmap={"pid": p, "length": PAGE, "prot": 3, "kind": 2,
                                "path": "console"})).mmap.addr
            for i in range(3):
                ok(w.call(write={"pid": p, "addr": c, "data": bytes([0x61 + i]) * 1000}))
            r = ok(w.call(console_read={})).console_read
            self.assertEqual(r.start, 3000 - 1024)
            self.assertEqual(r.data, b"b" * 24 + b"c" * 1000)
            w.close()
            out = cowctl(d, "console")
            self.assertIn(b"bytes were lost", out.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
