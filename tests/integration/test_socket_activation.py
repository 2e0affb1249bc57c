#!/usr/bin/env python3
"""Socket activation: cowd serves the socket a service manager passes it
(systemd-socket-activate stands in for systemd) and binds none of its own."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

import cowdtest
from cowdtest import code_name

SKIP = 77


class SocketActivation(unittest.TestCase):
    def test_serves_the_passed_socket(self):
        tmp = tempfile.mkdtemp(prefix="cowd-act-")
        sock = os.path.join(tmp, "activated.sock")
        own = os.path.join(tmp, "own.sock")
        act = subprocess.Popen(
            ["systemd-socket-activate", "-l", sock, cowdtest.daemon_binary(), "--socket", own],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        try:
            # The activator says when it listens; cowd starts at the first connection.
            line = act.stderr.readline()
            self.assertIn("Listening on", line)
            w = cowdtest.Wire(sock)
            resp = w.call(spawn={"name": "activated"})
            self.assertEqual(code_name(resp), "OK")
            self.assertEqual(code_name(w.call(exit={"pid": resp.spawn.pid})), "OK")
            w.close()
            self.assertFalse(os.path.exists(own), "cowd bound a socket of its own")
        finally:
            act.send_signal(signal.SIGTERM)
            try:
                _, err = act.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                act.kill()
                act.communicate()
                raise
            shutil.rmtree(tmp, ignore_errors=True)
        self.assertIn("passed by the service manager", err)
        self.assertEqual(act.returncode, 0, err)


if __name__ == "__main__":
    if not shutil.which("systemd-socket-activate"):
        print("skipped: systemd-socket-activate is not installed")
        sys.exit(SKIP)
    unittest.main(verbosity=2)
