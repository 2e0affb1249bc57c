#!/usr/bin/env python3
"""Files through the daemon: put, get, list and remove by the wire and by
cowctl; names that would escape the data directory refused (`../x`,
`/etc/passwd`, a symlink planted in it, an over-long name); each limit a
typed error counted in sys_stats; another uid's files PERMISSION_DENIED
(uid 0 excepted), named ~UID/NAME; a full
data directory (a small tmpfs) is RESOURCE_EXHAUSTED and keeps the old file."""
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import unittest

import cowdtest
from cowdtest import code_name


def cowctl(d, *args, check=True, data=None):
    out = subprocess.run([os.environ["COWCTL_BIN"], "-s", d.socket_path] + list(args),
                         capture_output=True, input=data, timeout=60)
    if check and out.returncode != 0:
        raise AssertionError("cowctl %s: %s" % (" ".join(args), out.stderr.decode()))
    return out


def files_dir(d):
    """The data directory of a daemon started without a state directory."""
    return os.path.join(d.dir, "cowd-files")


class RoundTrip(unittest.TestCase):
    def test_put_get_list_remove_over_the_wire(self):
        with cowdtest.Daemon() as d:
            w = d.connect()
            r = w.call(file_put={"name": "notes.txt", "data": b"hello"})
            self.assertEqual(code_name(r), "OK", r.status.message)
            self.assertEqual(r.file_put.size, 5)
            r = w.call(file_put={"name": "notes.txt", "data": b", world", "offset": 5})
            self.assertEqual(r.file_put.size, 12)
            r = w.call(file_get={"name": "notes.txt", "length": 100})
            self.assertEqual(r.file_get.data, b"hello, world")
            self.assertEqual(r.file_get.size, 12)
            r = w.call(file_get={"name": "notes.txt", "offset": 7, "length": 3})
            self.assertEqual(r.file_get.data, b"wor")
            # A chunk must continue the file exactly.
            r = w.call(file_put={"name": "notes.txt", "data": b"x", "offset": 3})
            self.assertEqual(code_name(r), "FAILED_PRECONDITION")
            # On disk as the contract says: <dir>/<uid>/<name>, private.
            path = os.path.join(files_dir(d), str(os.geteuid()), "notes.txt")
            with open(path, "rb") as f:
                self.assertEqual(f.read(), b"hello, world")
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode) & 0o077, 0)
            self.assertEqual(stat.S_IMODE(os.stat(files_dir(d)).st_mode) & 0o077, 0)
            w.call(file_put={"name": "b.bin", "data": b"\0" * 10})
            r = w.call(file_list={})
            self.assertEqual([(f.name, f.size) for f in r.file_list.files],
                             [("b.bin", 10), ("notes.txt", 12)])
            self.assertEqual(r.file_list.next, "")
            self.assertEqual(r.file_list.used_bytes, 22)
            self.assertFalse(any(f.mapped for f in r.file_list.files))
            mtime = os.stat(path).st_mtime_ns
            self.assertEqual(r.file_list.files[1].mtime_ns, mtime)
            self.assertEqual(code_name(w.call(file_remove={"name": "notes.txt"})), "OK")
            self.assertFalse(os.path.exists(path))
            self.assertEqual(code_name(w.call(file_remove={"name": "notes.txt"})), "NOT_FOUND")
            self.assertEqual(code_name(w.call(file_get={"name": "notes.txt", "length": 1})),
                             "NOT_FOUND")
            w.close()

    def test_cowctl_file_commands_move_a_file_larger_than_a_frame(self):
        with cowdtest.Daemon("--max-frame-bytes", "64K") as d, \
                tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "src.bin")
            data = bytes((i * 7 + i // 251) % 256 for i in range(300 * 1024))
            with open(src, "wb") as f:
                f.write(data)
            out = cowctl(d, "file", "put", "big.bin", "@" + src)
            self.assertEqual(out.stdout.decode().strip(), str(len(data)))
            dst = os.path.join(tmp, "dst.bin")
            cowctl(d, "file", "get", "big.bin", "-o", dst)
            with open(dst, "rb") as f:
                self.assertEqual(f.read(), data)
            cowctl(d, "file", "put", "hi.txt", "hello there")
            out = cowctl(d, "file", "get", "hi.txt", "--raw")
            self.assertEqual(out.stdout, b"hello there")
            out = cowctl(d, "file", "ls")
            lines = out.stdout.decode().splitlines()
            self.assertEqual(lines[0].split("\t"), ["name", "size", "modified", "mapped"])
            self.assertEqual([l.split("\t")[:2] for l in lines[1:]],
                             [["big.bin", str(len(data))], ["hi.txt", "11"]])
            # Standard input and output stand for a local file as "-".
            cowctl(d, "file", "put", "piped", "@-", data=b"from a pipe\n")
            self.assertEqual(cowctl(d, "file", "get", "piped", "-o", "-").stdout,
                             b"from a pipe\n")
            cowctl(d, "file", "rm", "piped")
            cowctl(d, "file", "rm", "big.bin")
            out = cowctl(d, "file", "get", "big.bin", check=False)
            self.assertEqual(out.returncode, 1)
            self.assertIn(b"NOT_FOUND", out.stderr)

    def test_list_pages_through_many_files(self):
        with cowdtest.Daemon("--max-frame-bytes", "4K") as d:
            w = d.connect()
            names = ["f%03d" % i for i in range(60)]
            for n in names:
                self.assertEqual(code_name(w.call(file_put={"name": n, "data": b"x"})), "OK")
            seen, after, replies = [], "", 0
            while True:
                r = w.call(file_list={"start_after": after}).file_list
                replies += 1
                seen += [f.name for f in r.files]
                if not r.next:
                    break
                after = r.next
            self.assertEqual(seen, names)
            self.assertGreater(replies, 1)
            w.close()


class Escapes(unittest.TestCase):
    def test_traversal_and_absolute_names_are_refused(self):
        with cowdtest.Daemon() as d:
            w = d.connect()
            for name in ("../x", "/etc/passwd", "..", ".", "a/b", ".hidden", "", "x\ny",
                         "../../../../etc/shadow"):
                for op, fields in (("file_put", {"name": name, "data": b"x"}),
                                   ("file_get", {"name": name, "length": 1}),
                                   ("file_remove", {"name": name})):
                    r = w.call(**{op: fields})
                    self.assertEqual(code_name(r), "INVALID_ARGUMENT", (op, name))
                r = w.call(spawn={"name": "m"})
                r = w.call(mmap={"pid": r.spawn.pid, "length": 4096, "prot": 1, "kind": 1,
                                 "path": name})
                self.assertEqual(code_name(r), "INVALID_ARGUMENT", ("mmap", name))
            long_name = "a" * 129
            r = w.call(file_put={"name": long_name, "data": b"x"})
            self.assertEqual(code_name(r), "INVALID_ARGUMENT")
            self.assertIn("longer than 128", r.status.message)
            self.assertEqual(code_name(w.call(file_put={"name": "a" * 128, "data": b"x"})),
                             "OK")
            self.assertGreater(w.call(sys_stats={}).sys_stats.file_name_rejections, 0)
            # Nothing was created outside the owner's directory.
            self.assertEqual(os.listdir(files_dir(d)), [str(os.geteuid())])
            w.close()

    def test_a_planted_symlink_is_not_followed(self):
        with cowdtest.Daemon() as d, tempfile.TemporaryDirectory() as tmp:
            w = d.connect()
            self.assertEqual(code_name(w.call(file_put={"name": "real", "data": b"r"})), "OK")
            outside = os.path.join(tmp, "outside")
            with open(outside, "wb") as f:
                f.write(b"secret")
            owner = os.path.join(files_dir(d), str(os.geteuid()))
            os.symlink(outside, os.path.join(owner, "link"))
            os.symlink("/etc/passwd", os.path.join(owner, "passwd"))
            for name in ("link", "passwd"):
                r = w.call(file_get={"name": name, "length": 6})
                self.assertEqual(code_name(r), "PERMISSION_DENIED", name)
                self.assertIn("symbolic link", r.status.message)
                r = w.call(file_put={"name": name, "data": b"evil", "offset": 6})
                self.assertEqual(code_name(r), "PERMISSION_DENIED", name)
                pid = w.call(spawn={"name": "m"}).spawn.pid
                r = w.call(mmap={"pid": pid, "length": 4096, "prot": 3, "shared": True,
                                 "kind": 1, "path": name})
                self.assertEqual(code_name(r), "PERMISSION_DENIED", name)
            with open(outside, "rb") as f:
                self.assertEqual(f.read(), b"secret")
            # A whole owner directory swapped for a link to someone else's.
            os.symlink(owner, os.path.join(files_dir(d), "4242"))
            # Listing skips links: only the real file shows.
            self.assertEqual([f.name for f in w.call(file_list={}).file_list.files], ["real"])
            w.close()


class Limits(unittest.TestCase):
    def test_each_limit_is_typed_and_counted(self):
        with cowdtest.Daemon("--max-file-size", "8K", "--file-quota", "12K",
                             "--max-files-per-user", "3") as d:
            w = d.connect()
            r = w.call(file_put={"name": "huge", "data": b"x" * 8193})
            self.assertEqual(code_name(r), "RESOURCE_EXHAUSTED")
            self.assertIn("max_file_size", r.status.message)
            self.assertEqual(code_name(w.call(file_put={"name": "a", "data": b"x" * 8192})), "OK")
            r = w.call(file_put={"name": "b", "data": b"x" * 5000})
            self.assertEqual(code_name(r), "RESOURCE_EXHAUSTED")
            self.assertIn("quota", r.status.message)
            self.assertEqual(code_name(w.call(file_put={"name": "b", "data": b"x"})), "OK")
            self.assertEqual(code_name(w.call(file_put={"name": "c", "data": b"x"})), "OK")
            r = w.call(file_put={"name": "d", "data": b"x"})
            self.assertEqual(code_name(r), "RESOURCE_EXHAUSTED")
            self.assertIn("max_files_per_user", r.status.message)
            s = w.call(sys_stats={}).sys_stats
            self.assertEqual((s.file_size_rejections, s.file_quota_rejections,
                              s.file_count_rejections), (1, 1, 1))
            l = w.call(file_list={}).file_list
            self.assertEqual((l.used_bytes, l.quota_bytes, l.max_files), (8194, 12288, 3))
            w.close()

    def test_a_get_is_bounded_by_the_frame(self):
        with cowdtest.Daemon("--max-frame-bytes", "8K") as d:
            w = d.connect()
            w.call(file_put={"name": "f", "data": b"x"})
            r = w.call(file_get={"name": "f", "length": 1 << 30})
            self.assertEqual(code_name(r), "RESOURCE_EXHAUSTED")
            w.close()


class Settings(unittest.TestCase):
    def test_bad_file_and_device_settings_stop_the_start_naming_the_cause(self):
        for args, says in ((["--fb-width", "16384", "--fb-height", "16384"], "64 MiB of pixels"),
                           (["--fb-width", "0"], "--fb-width"),
                           (["--console-log-size", "100"], "--console-log-size"),
                           (["--max-mapped-files", "0"], "--max-mapped-files"),
                           (["--files-dir", "/nonexistent/dir/files"], "/nonexistent/dir/files")):
            with tempfile.TemporaryDirectory(prefix="cowd-files-") as tmp:
                out = subprocess.run([cowdtest.daemon_binary(), "--socket",
                                      os.path.join(tmp, "cowd.sock")] + args,
                                     capture_output=True, text=True, timeout=30)
            self.assertNotEqual(out.returncode, 0, args)
            self.assertIn(says, out.stderr, args)


class FullDisk(unittest.TestCase):
    def test_a_full_data_directory_is_typed_and_keeps_the_old_file(self):
        with cowdtest.small_tmpfs(self, "64k", "cowd-files-") as mnt:
            with cowdtest.Daemon("--files-dir", mnt) as d:
                w = d.connect()
                self.assertEqual(code_name(w.call(file_put={"name": "keep",
                                                            "data": b"old!"})), "OK")
                r = w.call(file_put={"name": "keep", "data": b"y" * (128 * 1024)})
                self.assertEqual(code_name(r), "RESOURCE_EXHAUSTED")
                self.assertIn("no space left", r.status.message)
                r = w.call(file_get={"name": "keep", "length": 100})
                self.assertEqual(r.file_get.data, b"old!")
                r = w.call(file_put={"name": "keep", "data": b"z" * (120 * 1024),
                                     "offset": 4})
                self.assertEqual(code_name(r), "RESOURCE_EXHAUSTED")
                self.assertEqual(w.call(file_get={"name": "keep", "length": 100})
                                 .file_get.data, b"old!")
                # No temporary file left behind, and the daemon still serves.
                self.assertEqual(os.listdir(os.path.join(mnt, str(os.geteuid()))), ["keep"])
                self.assertEqual(code_name(w.call(spawn={"name": "alive"})), "OK")
                self.assertGreater(w.call(sys_stats={}).sys_stats.file_io_errors, 0)
                w.close()


AS_UID = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    import cowdtest
    w = cowdtest.Wire(sys.argv[2])
    def code(**req):
        return cowdtest.code_name(w.call(**req))
    if sys.argv[3] == "owner":
        print("put", code(file_put={"name": "mine.txt", "data": b"mine"}))
        sys.exit(0)
    pid = w.call(spawn={"name": "other"}).spawn.pid
    for name in ("~12345/mine.txt", "~12345/absent"):
        tag = "" if name.endswith("mine.txt") else "-absent"
        print("get" + tag, code(file_get={"name": name, "length": 4}))
        print("put" + tag, code(file_put={"name": name, "data": b"theirs"}))
        print("remove" + tag, code(file_remove={"name": name}))
        print("mmap" + tag, code(mmap={"pid": pid, "length": 4096, "prot": 1, "kind": 1,
                                       "path": name}))
    print("list", code(file_list={"owner": "~12345"}))
    print("own-get", code(file_get={"name": "mine.txt", "length": 4}))
    print("own-put", code(file_put={"name": "mine.txt", "data": b"theirs"}))
""")


class OtherUid(unittest.TestCase):
    def run_as(self, d, uid, role):
        pb_dir = os.path.dirname(cowdtest.pb2().__file__)
        here = os.path.dirname(os.path.abspath(__file__))
        out = subprocess.run(
            ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups",
             sys.executable, "-c", AS_UID, here, d.socket_path, role],
            env=dict(os.environ, COWD_PB2_DIR=pb_dir), capture_output=True, text=True,
            timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        return dict(line.split() for line in out.stdout.splitlines())

    def test_another_uids_files_are_permission_denied_whether_or_not_they_exist(self):
        if os.geteuid() != 0 or not shutil.which("setpriv"):
            self.skipTest("needs root and setpriv to run clients as other uids")
        with cowdtest.Daemon(world_accessible=True) as d:
            w = d.connect()
            self.assertEqual(self.run_as(d, 12345, "owner"), {"put": "OK"})
            before = w.call(sys_stats={}).sys_stats.permission_denials
            seen = self.run_as(d, 23456, "other")
            denied = {op + tag: "PERMISSION_DENIED" for op in ("get", "put", "remove", "mmap")
                      for tag in ("", "-absent")}
            self.assertEqual(seen, dict(denied, list="PERMISSION_DENIED", **{
                "own-get": "NOT_FOUND", "own-put": "OK"}))
            self.assertEqual(w.call(sys_stats={}).sys_stats.permission_denials - before, 9)
            # uid 0 may use anyone's files, as it may act on anyone's processes: the owner's
            # file is untouched, and the other uid's put made a file of its own.
            self.assertEqual(w.call(file_get={"name": "~12345/mine.txt", "length": 10})
                             .file_get.data, b"mine")
            self.assertEqual(w.call(file_get={"name": "~23456/mine.txt", "length": 10})
                             .file_get.data, b"theirs")
            self.assertEqual([f.name for f in w.call(file_list={"owner": "~12345"})
                              .file_list.files], ["mine.txt"])
            self.assertEqual(len(w.call(file_list={}).file_list.files), 0)
            w.close()

    def test_a_malformed_owner_is_invalid_argument(self):
        with cowdtest.Daemon() as d:
            w = d.connect()
            for name in ("~/x", "~12x/y", "~007/x", "~4294967296/x", "~12", "~-1/x"):
                self.assertEqual(code_name(w.call(file_get={"name": name, "length": 1})),
                                 "INVALID_ARGUMENT", name)
            for owner in ("~", "12", "~1/", "~99999999999"):
                self.assertEqual(code_name(w.call(file_list={"owner": owner})),
                                 "INVALID_ARGUMENT", owner)
            # One's own uid in the long form is one's own file.
            me = os.geteuid()
            self.assertEqual(code_name(w.call(file_put={"name": "~%d/a" % me, "data": b"x"})),
                             "OK")
            self.assertEqual(w.call(file_get={"name": "a", "length": 1}).file_get.data, b"x")
            w.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
