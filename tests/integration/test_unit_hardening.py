#!/usr/bin/env python3
"""The service unit stays hardened: systemd-analyze security --offline=true
rates deploy/cowd.service at an exposure of 1.0 or less. And the hardening
leaves cowd what it needs: its syscall filter allows the calls with which it
writes a checkpoint while serving (a forked child, reaped on SIGCHLD)."""
import os
import re
import shutil
import subprocess
import sys
import unittest

SKIP = 77
LIMIT = 1.0
UNIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy",
                    "cowd.service")


class UnitHardening(unittest.TestCase):
    def test_exposure_at_most_one(self):
        out = subprocess.run(["systemd-analyze", "security", "--offline=true", UNIT],
                             capture_output=True, text=True, timeout=60)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out.stdout)
        self.assertIsNotNone(m, out.stdout + out.stderr)
        exposure = float(m.group(1))
        print("exposure %.1f" % exposure)
        self.assertLessEqual(exposure, LIMIT, out.stdout)

    def expand(self, name, seen=None):
        """The syscalls a filter entry names: a @group (recursively) or one call."""
        if not name.startswith("@"):
            return {name}
        out = subprocess.run(["systemd-analyze", "syscall-filter", name],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        calls = set()
        for line in out.stdout.splitlines()[1:]:
            word = line.strip()
            if word and not word.startswith("#"):
                calls |= self.expand(word)
        return calls

    def test_the_syscall_filter_allows_checkpoint_snapshots(self):
        allowed, denied = set(), set()
        with open(UNIT) as f:
            for line in f:
                if not line.startswith("SystemCallFilter="):
                    continue
                value = line.split("=", 1)[1].strip()
                deny = value.startswith("~")
                for entry in value.lstrip("~").split():
                    (denied if deny else allowed).update(self.expand(entry))
        self.assertTrue(allowed, "the unit has no allow list")
        effective = allowed - denied
        needed = {"fork", "clone", "clone3", "wait4", "waitid", "pipe2", "prctl", "kill",
                  "rt_sigaction", "exit_group", "renameat2", "fsync"}
        self.assertEqual(needed - effective, set())


if __name__ == "__main__":
    if not shutil.which("systemd-analyze"):
        print("skipped: systemd-analyze is not installed")
        sys.exit(SKIP)
    unittest.main(verbosity=2)
