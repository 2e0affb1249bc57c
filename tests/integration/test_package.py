#!/usr/bin/env python3
"""The .deb: CPack builds it, `dpkg-deb --contents` lists what an operator
needs, dpkg installs it, the installed units verify cleanly, the installed
/usr/sbin/cowd runs with the installed /etc/cowd/cowd.conf and the installed
cowctl talks to it; `dpkg --purge` takes it all away again. It installs a
package on the machine, so it needs root and dpkg (CI runs on a throwaway
machine), and it refuses to touch a cowd package that was there before."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import cowdtest

SKIP = 77
NEEDED = ["./usr/sbin/cowd", "./usr/bin/cowctl", "./etc/cowd/cowd.conf",
          "./usr/lib/systemd/system/cowd.service", "./usr/lib/systemd/system/cowd.socket",
          "./usr/share/man/man8/cowd.8", "./usr/share/man/man1/cowctl.1",
          "./usr/share/man/man5/cowd.conf.5", "./usr/share/bash-completion/completions/cowctl",
          "./usr/include/cowd/client.h", "./usr/include/cowd/cowd.pb-c.h",
          "./usr/lib/pkgconfig/cowdclient.pc", "./usr/lib/libcowdclient.so.0"]


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=300, **kw)


def installed():
    out = run(["dpkg-query", "-W", "-f=${Status}", "cowd"])
    return out.returncode == 0 and "installed" in out.stdout.split()


class Package(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cowd-deb-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_build_install_run_purge(self):
        out = run(["cpack", "-G", "DEB", "--config",
                   os.path.join(os.environ["COWD_BUILD_DIR"], "CPackConfig.cmake"),
                   "-B", self.tmp])
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        debs = [f for f in os.listdir(self.tmp) if f.endswith(".deb")]
        self.assertEqual(len(debs), 1, os.listdir(self.tmp))
        deb = os.path.join(self.tmp, debs[0])

        contents = run(["dpkg-deb", "--contents", deb])
        self.assertEqual(contents.returncode, 0, contents.stderr)
        listed = {line.split()[5] for line in contents.stdout.splitlines()}
        for path in NEEDED:
            self.assertIn(path, listed)
        fields = run(["dpkg-deb", "-f", deb, "Package", "Depends"]).stdout
        self.assertIn("Package: cowd", fields)
        self.assertIn("libevent", fields)
        control = os.path.join(self.tmp, "control")
        self.assertEqual(run(["dpkg-deb", "-e", deb, control]).returncode, 0)
        with open(os.path.join(control, "conffiles")) as f:
            # An operator's edits to the configuration survive an upgrade.
            self.assertEqual(f.read().split(), ["/etc/cowd/cowd.conf"])

        out = run(["dpkg", "-i", deb])
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        try:
            self.assertTrue(installed())
            self.assertTrue(os.access("/usr/sbin/cowd", os.X_OK))
            # The installed units, against the installed binary and man pages.
            if shutil.which("systemd-analyze"):
                out = run(["systemd-analyze", "verify", "/usr/lib/systemd/system/cowd.socket",
                           "/usr/lib/systemd/system/cowd.service"])
                self.assertEqual(out.stderr, "")
            self.run_installed()
        finally:
            out = run(["dpkg", "--purge", "cowd"])
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertFalse(installed())
        for path in ("/usr/sbin/cowd", "/usr/bin/cowctl", "/etc/cowd/cowd.conf",
                     "/usr/lib/systemd/system/cowd.service"):
            self.assertFalse(os.path.exists(path), path)

    def run_installed(self):
        state = os.path.join(self.tmp, "state")
        os.mkdir(state, 0o700)
        os.environ["COWD_BIN"] = "/usr/sbin/cowd"
        with cowdtest.Daemon("--config", "/etc/cowd/cowd.conf", "--state-dir", state) as d:
            def cowctl(*args):
                out = run(["/usr/bin/cowctl", "-s", d.socket_path] + list(args))
                self.assertEqual(out.returncode, 0, out.stderr)
                return out.stdout
            pid = cowctl("spawn", "from-the-package").strip()
            self.assertRegex(pid, r"^[1-9]\d*$")
            self.assertIn("from-the-package", cowctl("ps"))
            self.assertIn("bytes", cowctl("checkpoint"))
            self.assertIn("ready: 268435456 bytes of memory", d.log())
        self.assertTrue(os.path.exists(os.path.join(state, "cowd.checkpoint")))


if __name__ == "__main__":
    for tool in ("dpkg", "dpkg-deb", "dpkg-query", "cpack"):
        if not shutil.which(tool):
            print("skipped: %s is not installed" % tool)
            sys.exit(SKIP)
    if os.geteuid() != 0:
        print("skipped: installing a package needs root")
        sys.exit(SKIP)
    if installed():
        print("skipped: a cowd package is installed already; not replacing it")
        sys.exit(SKIP)
    unittest.main(verbosity=2)
