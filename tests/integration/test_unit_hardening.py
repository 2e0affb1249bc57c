#!/usr/bin/env python3
"""The service unit stays hardened: systemd-analyze security --offline=true
rates deploy/cowd.service at an exposure of 1.0 or less."""
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


if __name__ == "__main__":
    if not shutil.which("systemd-analyze"):
        print("skipped: systemd-analyze is not installed")
        sys.exit(SKIP)
    unittest.main(verbosity=2)
