#!/usr/bin/env python3
"""TCP authentication: TCP carries no credentials, so a TCP client must open
with a hello carrying a token from the daemon's token file, and then acts as
the uid the token names. Anything else gets UNAUTHENTICATED and a close, and
the daemon refuses to listen on TCP at all without a private token file."""
import json
import os
import socket
import subprocess
import tempfile
import unittest

import cowdtest
from cowdtest import code_name

TOKEN_1000 = "3f0c9e1d7a52b8e64c1f0a9d2e7b5c38"
TOKEN_2000 = "a-second-student-token-0042"


def free_port():
    """A loopback port nobody listens on now (the daemon binds it next)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_file(path, text, mode):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def hello(token=None):
    fields = {"protocol_version": 1, "client": "test"}
    if token is not None:
        fields["token"] = token.encode()
    return {"hello": fields}


class TcpAuth(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="cowd-auth-")
        self.tokens = os.path.join(self.tmp.name, "tokens")
        write_file(self.tokens, "# uid token\n1000 %s\n2000 %s\n" % (TOKEN_1000, TOKEN_2000),
                   0o600)
        self.port = free_port()

    def tearDown(self):
        self.tmp.cleanup()

    def start_fails(self, *args):
        """Runs cowd expecting it to refuse to start; returns what it said."""
        out = subprocess.run([cowdtest.daemon_binary(), "--socket",
                              os.path.join(self.tmp.name, "s"), *args],
                             capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL)
        self.assertNotEqual(out.returncode, 0, out.stderr)
        return out.stderr

    def daemon(self):
        return cowdtest.Daemon("--tcp-port", str(self.port), "--tcp-token-file", self.tokens)

    def tcp(self):
        return cowdtest.Wire(("127.0.0.1", self.port))

    def test_tcp_listener_requires_a_token_file(self):
        err = self.start_fails("--tcp-port", str(self.port))
        self.assertIn("tcp_token_file", err)

    def test_token_file_readable_by_others_is_refused(self):
        os.chmod(self.tokens, 0o644)
        err = self.start_fails("--tcp-port", str(self.port), "--tcp-token-file", self.tokens)
        self.assertIn("chmod 600", err)

    def test_malformed_token_file_is_refused_with_its_line(self):
        write_file(self.tokens, "1000 %s\n1001 short\n" % TOKEN_1000, 0o600)
        err = self.start_fails("--tcp-port", str(self.port), "--tcp-token-file", self.tokens)
        self.assertIn("line 2", err)

    def test_unauthenticated_clients_are_refused_and_closed(self):
        with self.daemon() as d:
            attempts = {
                "no hello": {"spawn": {"name": "sneaky"}},
                "hello without token": hello(),
                "wrong token": hello(TOKEN_1000[:-1] + "9"),
                "short token": hello("abc"),
            }
            for what, op in attempts.items():
                w = self.tcp()
                resp = w.call(**op)
                self.assertEqual(code_name(resp), "UNAUTHENTICATED", what)
                self.assertTrue(w.closed_within(10), "%s: connection left open" % what)
                w.close()
            # Nothing the refused clients sent was carried out.
            local = d.connect()
            self.assertEqual(len(local.call(list_procs={}).list_procs.procs), 0)
            stats = local.call(sys_stats={}).sys_stats
            self.assertEqual(stats.auth_failures, len(attempts))
            local.close()

    def test_a_token_stands_for_its_uid(self):
        with self.daemon() as d:
            a = self.tcp()
            resp = a.call(**hello(TOKEN_1000))
            self.assertEqual(code_name(resp), "OK")
            self.assertEqual(resp.hello.uid, 1000)
            pid = a.call(spawn={"name": "student"}).spawn.pid
            addr = a.call(mmap={"pid": pid, "length": 4096, "prot": 3}).mmap.addr
            self.assertEqual(code_name(a.call(write={"pid": pid, "addr": addr,
                                                     "data": b"mine"})), "OK")

            # Another token is another user: denied on the first one's process.
            b = self.tcp()
            self.assertEqual(b.call(**hello(TOKEN_2000)).hello.uid, 2000)
            self.assertEqual(code_name(b.call(read={"pid": pid, "addr": addr, "length": 4})),
                             "PERMISSION_DENIED")

            # The Unix socket still goes by SO_PEERCRED and needs no token.
            local = d.connect()
            procs = local.call(list_procs={}).list_procs.procs
            self.assertEqual([(p.pid, p.owner_uid) for p in procs], [(pid, 1000)])
            self.assertEqual(local.call(sys_stats={}).sys_stats.auth_failures, 0)
            for w in (a, b, local):
                w.close()

    def test_cowctl_sends_the_token_from_a_file(self):
        cowctl = os.environ["COWCTL_BIN"]
        client_token = os.path.join(self.tmp.name, "my-token")
        write_file(client_token, TOKEN_1000 + "\n", 0o600)
        endpoint = "127.0.0.1:%d" % self.port
        with self.daemon():
            out = subprocess.run([cowctl, "-s", endpoint, "-t", client_token, "spawn", "lab"],
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 0, out.stderr)
            pid = out.stdout.strip()
            env = dict(os.environ, COWD_TOKEN_FILE=client_token)
            out = subprocess.run([cowctl, "-s", endpoint, "--json", "ps"], env=env,
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 0, out.stderr)
            procs = json.loads(out.stdout)
            self.assertEqual([(str(p["pid"]), p["uid"]) for p in procs], [(pid, 1000)])

            env.pop("COWD_TOKEN_FILE")
            out = subprocess.run([cowctl, "-s", endpoint, "ps"], env=env,
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 1)
            self.assertIn("refused the connection: hello carries no token", out.stderr)
            self.assertIn("--token-file", out.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
