#!/usr/bin/env python3
"""`cmake --install` into a scratch DESTDIR places what an operator and a client
developer need; the installed units pass `systemd-analyze verify` with nothing
on stderr (in a scratch root that also holds the targets and /bin/kill they
refer to, since systemd is not PID 1 here); the man pages render without
warnings; the pkg-config file builds a program against the installed client
library; the bash completion completes commands and options."""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import cowdtest

SKIP = 77
WANTED = ["usr/sbin/cowd", "usr/bin/cowctl", "etc/cowd/cowd.conf",
          "usr/lib/systemd/system/cowd.service", "usr/lib/systemd/system/cowd.socket",
          "usr/share/man/man8/cowd.8", "usr/share/man/man1/cowctl.1",
          "usr/share/man/man5/cowd.conf.5", "usr/share/bash-completion/completions/cowctl",
          "usr/include/cowd/client.h", "usr/include/cowd/cowd.pb-c.h"]

PROGRAM = r"""
#include <stdio.h>
#include <cowd/client.h>
int main(int argc, char **argv)
{
        struct cowc_error err = { 0 };
        cowc_conn *c = NULL;
        uint32_t pid = 0;
        int r;

        (void)argc;
        r = cowc_connect(argv[1], NULL, &c);
        if (r == 0)
                r = cowc_spawn(c, "installed", &pid, &err);
        printf("spawn %d pid %u\n", r, pid);
        cowc_close(c);
        return r == 0 ? 0 : 1;
}
"""


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kw)


class Install(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="cowd-install-")
        cls.dest = os.path.join(cls.tmp, "dest")
        out = run(["cmake", "--install", os.environ["COWD_BUILD_DIR"], "--prefix", "/usr"],
                  env=dict(os.environ, DESTDIR=cls.dest))
        assert out.returncode == 0, out.stderr

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_everything_an_operator_needs_is_installed(self):
        for f in WANTED:
            self.assertTrue(os.path.isfile(os.path.join(self.dest, f)), f)
        self.assertTrue(glob.glob(os.path.join(self.dest, "usr/lib*/**/libcowdclient.so.0"),
                                  recursive=True))
        self.assertTrue(os.access(os.path.join(self.dest, "usr/sbin/cowd"), os.X_OK))

    def test_units_verify_cleanly(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed")
        root = os.path.join(self.tmp, "root")
        shutil.copytree(self.dest, root, symlinks=True)
        units = os.path.join(root, "usr/lib/systemd/system")
        for target in glob.glob("/lib/systemd/system/*.target"):
            shutil.copy(target, units)
        os.makedirs(os.path.join(root, "usr/bin"), exist_ok=True)
        shutil.copy("/bin/kill", os.path.join(root, "usr/bin/kill"))
        os.symlink("usr/bin", os.path.join(root, "bin"))
        # Documentation= is checked with man(1): MANPATH makes it find the installed pages.
        out = run(["systemd-analyze", "verify", "--root=" + root,
                   "/usr/lib/systemd/system/cowd.socket", "/usr/lib/systemd/system/cowd.service"],
                  env=dict(os.environ, MANPATH=os.path.join(root, "usr/share/man")))
        self.assertEqual(out.stderr, "")
        self.assertEqual(out.returncode, 0)

    def test_man_pages_render_without_warnings(self):
        if not shutil.which("man"):
            self.skipTest("man is not installed")
        for page in ("man8/cowd.8", "man1/cowctl.1", "man5/cowd.conf.5"):
            out = run(["man", "--warnings", "-l", os.path.join(self.dest, "usr/share/man", page)],
                      env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8"))
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(out.stderr, "", page)
            self.assertIn("SEE ALSO", out.stdout)

    def test_pkg_config_builds_a_client(self):
        if not shutil.which("pkg-config") or not shutil.which("cc"):
            self.skipTest("pkg-config or cc is not installed")
        pcdir = os.path.dirname(glob.glob(os.path.join(self.dest, "usr/lib*/**/cowdclient.pc"),
                                          recursive=True)[0])
        env = dict(os.environ, PKG_CONFIG_PATH=pcdir)
        flags = run(["pkg-config", "--cflags", "--libs", "cowdclient"], env=env)
        self.assertEqual(flags.returncode, 0, flags.stderr)
        src = os.path.join(self.tmp, "client.c")
        exe = os.path.join(self.tmp, "client")
        with open(src, "w") as f:
            f.write(PROGRAM)
        # A sanitized build installs a sanitized library: its users link the runtimes too.
        sanitize = (["-fsanitize=address,undefined"]
                    if os.environ.get("COWD_SANITIZED") == "1" else [])
        cc = run(["cc", "-Wall", "-Werror"] + sanitize + [src, "-o", exe] + flags.stdout.split())
        self.assertEqual(cc.returncode, 0, cc.stderr)
        libdir = run(["pkg-config", "--variable=libdir", "cowdclient"], env=env).stdout.strip()
        with cowdtest.Daemon() as d:
            out = run([exe, d.socket_path], env=dict(os.environ, LD_LIBRARY_PATH=libdir))
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertRegex(out.stdout, r"^spawn 0 pid [1-9]\d*$")
            w = d.connect()
            names = [p.name for p in w.call(list_procs={}).list_procs.procs]
            self.assertEqual(names, ["installed"])
            w.close()

    def test_bash_completion(self):
        script = os.path.join(self.dest, "usr/share/bash-completion/completions/cowctl")
        cases = [(["cowctl", "-s", "x", "chec"], "checkpoint"),
                 (["cowctl", "--js"], "--json"),
                 (["cowctl", "mmap", "1", "4K", "rw", "--sh"], "--shared"),
                 (["cowctl", "madvise", "1", "0", "4K", "dont"], "dontneed"),
                 (["cowctl", "file", "p"], "put"),
                 (["cowctl", "file", "get", "x", "--st"], "--string"),
                 (["cowctl", "mmap", "1", "4K", "rw", "--device", "f"], "fb0"),
                 (["cowctl", "mmap", "1", "4K", "rw", "--fi"], "--fixed --file"),
                 (["cowctl", "scr"], "screenshot")]
        for words, want in cases:
            out = run(["bash", "-c", 'source "$0"; COMP_WORDS=("${@}"); '
                       'COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _cowctl; echo "${COMPREPLY[*]}"',
                       script] + words)
            self.assertEqual(out.stdout.strip(), want, (words, out.stderr))


if __name__ == "__main__":
    if not shutil.which("cmake"):
        print("skipped: cmake is not installed")
        sys.exit(SKIP)
    unittest.main(verbosity=2)
