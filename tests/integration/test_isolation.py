#!/usr/bin/env python3
"""Isolation: a client running as another uid cannot read, write, fork, exit,
map or inspect a process it does not own. Runs the intruder as `nobody`
through setpriv, so it needs root; it is skipped (exit 77) otherwise."""
import os
import shutil
import subprocess
import sys
import textwrap
import unittest

import cowdtest
from cowdtest import code_name

SKIP = 77

INTRUDER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    import cowdtest
    w = cowdtest.Wire(sys.argv[2])
    pid, addr = int(sys.argv[3]), int(sys.argv[4])
    ops = {
        "read": {"pid": pid, "addr": addr, "length": 4},
        "write": {"pid": pid, "addr": addr, "data": b"evil"},
        "fork": {"pid": pid},
        "exit": {"pid": pid},
        "mmap": {"pid": pid, "length": 4096, "prot": 3},
        "munmap": {"pid": pid, "addr": addr, "length": 4096},
        "mprotect": {"pid": pid, "addr": addr, "length": 4096, "prot": 0},
        "madvise": {"pid": pid, "addr": addr, "length": 4096, "advice": 1},
        "proc_stats": {"pid": pid},
        "page_map": {"pid": pid, "addr": addr, "length": 4096},
        "list_maps": {"pid": pid},
        "trace": {"pid": pid, "addrs": [addr], "sizes": [4], "kinds": [1]},
    }
    for name, fields in ops.items():
        print(name, cowdtest.code_name(w.call(**{name: fields})))
    own = w.call(spawn={"name": "intruder"})
    print("own_spawn", cowdtest.code_name(own))
    mine = w.call(mmap={"pid": own.spawn.pid, "length": 4096, "prot": 3}).mmap.addr
    print("own_write", cowdtest.code_name(w.call(write={"pid": own.spawn.pid, "addr": mine,
                                                        "data": b"x"})))
""")


class Isolation(unittest.TestCase):
    def test_other_uid_is_denied_everything_on_my_process(self):
        pb_dir = os.path.dirname(cowdtest.pb2().__file__)
        with cowdtest.Daemon(world_accessible=True) as d:
            owner = d.connect()
            pid = owner.call(spawn={"name": "victim"}).spawn.pid
            addr = owner.call(mmap={"pid": pid, "length": 4096, "prot": 3}).mmap.addr
            self.assertEqual(code_name(owner.call(write={"pid": pid, "addr": addr,
                                                         "data": b"mine"})), "OK")

            here = os.path.dirname(os.path.abspath(__file__))
            env = dict(os.environ, COWD_PB2_DIR=pb_dir)
            out = subprocess.run(
                ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                 sys.executable, "-c", INTRUDER, here, d.socket_path, str(pid), str(addr)],
                env=env, capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stderr)
            seen = dict(line.split() for line in out.stdout.splitlines())
            for op in ("read", "write", "fork", "exit", "mmap", "munmap", "mprotect",
                       "madvise", "proc_stats", "page_map", "list_maps", "trace"):
                self.assertEqual(seen.get(op), "PERMISSION_DENIED", "%s: %s" % (op, seen))
            # The intruder may still use processes of its own.
            self.assertEqual(seen.get("own_spawn"), "OK")
            self.assertEqual(seen.get("own_write"), "OK")

            # Nothing the intruder tried changed the victim.
            data = owner.call(read={"pid": pid, "addr": addr, "length": 4}).read.data
            self.assertEqual(data, b"mine")
            self.assertEqual(code_name(owner.call(exit={"pid": pid})), "OK")
            owner.close()


if __name__ == "__main__":
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        print("skipped: needs root and setpriv to run a client as another uid")
        sys.exit(SKIP)
    unittest.main(verbosity=2)
