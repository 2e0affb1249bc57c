#!/usr/bin/python3
"""A minimal cowd client in Python, built on the same cowd.proto.

It compiles the contract with protoc into a temporary directory, imports the
generated module, and checks copy-on-write end to end: a child created by
fork reads its parent's bytes from the parent's frame until it writes, and
its write gets it a private copy while the parent keeps the original.

    client.py [SOCKET]        (default: $COWD_SOCKET, $XDG_RUNTIME_DIR/cowd.sock,
                               /tmp/cowd-UID/cowd.sock)

Needs Debian's python3-protobuf and protobuf-compiler. Exits 0 when every
check holds, 1 on a mismatch, 2 when it cannot talk to the daemon.
"""
import importlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.environ.get("COWD_PROTO", os.path.join(HERE, "..", "..", "proto", "cowd.proto"))


def load_contract():
    """Runs protoc --python_out on cowd.proto and imports the result."""
    out = tempfile.mkdtemp(prefix="cowd-py-")
    proto_dir = os.path.dirname(os.path.abspath(PROTO))
    try:
        subprocess.run(["protoc", "--proto_path=" + proto_dir, "--python_out=" + out,
                        os.path.abspath(PROTO)], check=True)
        sys.path.insert(0, out)
        return importlib.import_module("cowd_pb2")
    finally:
        # The module is loaded; its source is no longer needed.
        sys.path.remove(out) if out in sys.path else None
        shutil.rmtree(out, ignore_errors=True)


def default_socket():
    """The same default as the daemon and cowctl (proto/endpoint.c)."""
    if os.environ.get("COWD_SOCKET"):
        return os.environ["COWD_SOCKET"]
    if os.environ.get("XDG_RUNTIME_DIR"):
        return os.path.join(os.environ["XDG_RUNTIME_DIR"], "cowd.sock")
    return "/tmp/cowd-%d/cowd.sock" % os.getuid()


class DaemonError(Exception):
    pass


class Client:
    """One connection; every message framed by a 4-byte big-endian length."""

    def __init__(self, pb, path):
        self.pb = pb
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.next_id = 0

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("the daemon closed the connection")
            buf += chunk
        return buf

    def call(self, op, **fields):
        """Sends one request with oneof member op; returns the Response."""
        self.next_id += 1
        req = self.pb.Request(id=self.next_id)
        getattr(req, op).SetInParent()
        for name, value in fields.items():
            setattr(getattr(req, op), name, value)
        data = req.SerializeToString()
        self.sock.sendall(struct.pack(">I", len(data)) + data)
        (length,) = struct.unpack(">I", self._recv_exact(4))
        resp = self.pb.Response()
        resp.ParseFromString(self._recv_exact(length))
        if resp.id != req.id:
            raise ConnectionError("reply id %d for request %d" % (resp.id, req.id))
        return resp

    def ok(self, op, **fields):
        """Like call, but a non-OK status raises DaemonError."""
        resp = self.call(op, **fields)
        if resp.status.code != self.pb.OK:
            raise DaemonError("%s: %s: %s" % (op, self.pb.Code.Name(resp.status.code),
                                             resp.status.message))
        return resp

    def page(self, pid, addr):
        return self.ok("page_map", pid=pid, addr=addr, length=4096).page_map.pages[0]

    def stats(self):
        return self.ok("sys_stats").sys_stats


def main():
    pb = load_contract()
    path = sys.argv[1] if len(sys.argv) > 1 else default_socket()
    try:
        c = Client(pb, path)
        hello = c.ok("hello", protocol_version=pb.PROTOCOL_VERSION_CURRENT, client="client.py")
    except (OSError, DaemonError) as e:
        print("client.py: cannot talk to cowd at %s: %s" % (path, e), file=sys.stderr)
        return 2
    print("connected to cowd %s, page size %d" % (hello.hello.server_version,
                                                   hello.hello.page_size))
    failures = 0

    def check(what, got, want):
        nonlocal failures
        if got == want:
            print("ok    %s" % what)
        else:
            print("FAIL  %s: got %r, want %r" % (what, got, want))
            failures += 1

    parent = c.ok("spawn", name="py-parent").spawn.pid
    addr = c.ok("mmap", pid=parent, length=4096, prot=3).mmap.addr
    c.ok("write", pid=parent, addr=addr, data=b"hello")
    child = c.ok("fork", pid=parent).fork.child_pid
    before = c.stats()

    check("child reads the parent's bytes",
          c.ok("read", pid=child, addr=addr, length=5).read.data, b"hello")
    check("parent and child share one frame", c.page(child, addr).frame, c.page(parent, addr).frame)
    check("the shared page is copy-on-write", c.page(child, addr).cow, True)

    c.ok("write", pid=child, addr=addr, data=b"HELLO")
    after = c.stats()
    check("the child reads its own write",
          c.ok("read", pid=child, addr=addr, length=5).read.data, b"HELLO")
    check("the parent still reads the original",
          c.ok("read", pid=parent, addr=addr, length=5).read.data, b"hello")
    check("the frames now differ", c.page(child, addr).frame != c.page(parent, addr).frame, True)
    check("one copy-on-write copy", after.cow_copies - before.cow_copies, 1)
    check("one more frame in use", after.frames_used - before.frames_used, 1)

    bad = c.call("write", pid=child, addr=0x1000, data=b"x")
    check("a write to unmapped memory faults",
          pb.FaultKind.Name(bad.fault.kind), "SEGV_MAPERR")

    c.ok("exit", pid=child)
    c.ok("exit", pid=parent)

    # A file of ours, mapped shared: a write through memory reaches the file on msync.
    c.ok("file_put", name="py-notes.txt", data=b"written by hand")
    proc = c.ok("spawn", name="py-files").spawn.pid
    m = c.ok("mmap", pid=proc, length=4096, prot=3, shared=True, kind=pb.FILE,
             path="py-notes.txt").mmap.addr
    check("the mapping shows the file",
          c.ok("read", pid=proc, addr=m, length=15).read.data, b"written by hand")
    c.ok("write", pid=proc, addr=m, data=b"WRITTEN")
    c.ok("msync", pid=proc, addr=m, length=4096, sync=True)
    check("msync wrote it back",
          c.ok("file_get", name="py-notes.txt", length=100).file_get.data, b"WRITTEN by hand")
    c.ok("exit", pid=proc)
    c.ok("file_remove", name="py-notes.txt")
    print("%d check%s failed" % (failures, "" if failures == 1 else "s"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
