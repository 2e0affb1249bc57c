#!/usr/bin/env python3
"""Runs a command against a fresh cowd on a temporary socket.

usage: with_daemon.py [DAEMON-ARG ...] -- COMMAND [ARG ...]

The command sees the socket in $COWD_SOCKET. The daemon must stop cleanly
on SIGTERM afterwards; the exit status is the command's, or 1 if the daemon
misbehaved.
"""
import os
import subprocess
import sys

import cowdtest


def main(argv):
    if "--" not in argv:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    cut = argv.index("--")
    daemon_args, command = argv[:cut], argv[cut + 1:]
    if not command:
        print("with_daemon.py: no command given", file=sys.stderr)
        return 2
    with cowdtest.Daemon(*daemon_args) as d:
        env = dict(os.environ, COWD_SOCKET=d.socket_path)
        rc = subprocess.run(command, env=env).returncode
        if rc != 0:
            sys.stderr.write("--- cowd log ---\n" + d.log())
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
