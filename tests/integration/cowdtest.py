"""Integration-test support: a real cowd on a temporary socket, and a raw wire client.

The daemon is started with NOTIFY_SOCKET pointing at a datagram socket the test
owns, and the test waits for its READY=1 there: readiness is a message, never a
sleep. Every wait has a deadline, so a broken daemon fails a test instead of
hanging it.
"""
import atexit
import contextlib
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

READY_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0

_pb2 = None


def pb2():
    """The cowd.proto Python module, generated once per run with protoc.

    $COWD_PB2_DIR names a directory where it was generated already (a child
    process of a test reuses its parent's)."""
    global _pb2
    if _pb2 is None:
        out = os.environ.get("COWD_PB2_DIR")
        if not out:
            src = os.environ.get("COWD_PROTO_DIR") or os.path.join(
                os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto")
            out = tempfile.mkdtemp(prefix="cowd-pb2-")
            atexit.register(shutil.rmtree, out, True)
            os.chmod(out, 0o755)  # readable by the other-uid client in isolation tests
            subprocess.run(["protoc", "--proto_path", src, "--python_out", out,
                            os.path.join(src, "cowd.proto")], check=True)
        sys.path.insert(0, out)
        import cowd_pb2  # noqa: E402  (generated above)
        _pb2 = cowd_pb2
    return _pb2


def daemon_binary():
    path = os.environ.get("COWD_BIN")
    if not path:
        raise SystemExit("COWD_BIN must name the cowd binary under test")
    return path


class Daemon:
    """A cowd process on a socket in a fresh temporary directory."""

    def __init__(self, *args, world_accessible=False, env=None):
        self.args = list(args)
        self.world = world_accessible
        self.extra_env = dict(env or {})
        self.dir = None
        self.proc = None
        self.socket_path = None
        self.stderr_path = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop(check=exc[0] is None)

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="cowd-test-")
        if self.world:
            os.chmod(self.dir, 0o755)
        self.socket_path = os.path.join(self.dir, "cowd.sock")
        notify_path = os.path.join(self.dir, "notify")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        env = dict(os.environ, NOTIFY_SOCKET=notify_path)
        env.pop("COWD_SOCKET", None)
        env.update(self.extra_env)
        # $COWD_WRAPPER runs the daemon under another program (valgrind, say).
        wrapper = os.environ.get("COWD_WRAPPER", "").split()
        args = wrapper + [daemon_binary(), "--socket", self.socket_path] + self.args
        if self.world:
            args += ["--socket-mode", "0666"]
        self.stderr_path = os.path.join(self.dir, "stderr")
        with open(self.stderr_path, "wb") as err:
            # stdout is a pipe only so that its EOF says the daemon has exited.
            self.proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=err)
        try:
            self._wait_ready(notify)
        finally:
            notify.close()

    def _wait_ready(self, notify):
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise AssertionError("cowd did not send READY=1 in time:\n" + self.log())
            ready, _, _ = select.select([notify, self.proc.stdout], [], [], left)
            if self.proc.stdout in ready and not self.proc.stdout.read(1):
                self.proc.wait()
                raise AssertionError("cowd exited with %d before it was ready:\n%s"
                                     % (self.proc.returncode, self.log()))
            if notify in ready and b"READY=1" in notify.recv(4096).split(b"\n"):
                return

    def log(self):
        try:
            with open(self.stderr_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS for cowd")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self, check=True):
        """SIGTERM, then expect a clean exit 0 within the deadline."""
        try:
            if self.proc and self.proc.stdout:
                self.proc.stdout.close()
            if self.proc and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.kill()
                    raise AssertionError("cowd did not stop on SIGTERM:\n" + self.log())
            if check and self.proc.returncode != 0:
                raise AssertionError("cowd exited with %d:\n%s"
                                     % (self.proc.returncode, self.log()))
        finally:
            if self.dir:
                shutil.rmtree(self.dir, ignore_errors=True)

    def connect(self, timeout=10.0):
        return Wire(self.socket_path, timeout)


class Wire:
    """A raw protocol client: length-prefixed protobuf frames over a socket."""

    def __init__(self, path, timeout=10.0):
        """path: a Unix socket path, or a (host, port) pair for TCP."""
        if isinstance(path, tuple):
            self.sock = socket.create_connection(path, timeout)
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(path)
        self.next_id = 1

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, req):
        if not req.id:
            req.id = self.next_id
            self.next_id += 1
        body = req.SerializeToString()
        self.sock.sendall(struct.pack(">I", len(body)) + body)
        return req.id

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def recv(self):
        """The next Response, or None when the daemon closed the connection."""
        hdr = self._recv_exact(4)
        if hdr is None:
            return None
        (n,) = struct.unpack(">I", hdr)
        body = self._recv_exact(n)
        if body is None:
            return None
        resp = pb2().Response()
        resp.ParseFromString(body)
        return resp

    def send_op(self, **op):
        """Sends one operation, e.g. send_op(spawn={"name": "x"}), without waiting for
        its reply; returns the request id."""
        req = pb2().Request()
        ((name, fields),) = op.items()
        getattr(req, name).SetInParent()
        for k, v in (fields or {}).items():
            if isinstance(v, list):
                getattr(getattr(req, name), k).extend(v)
            else:
                setattr(getattr(req, name), k, v)
        return self.send(req)

    def call(self, **op):
        """Sends one operation, e.g. call(spawn={"name": "x"}), and returns its Response."""
        ((name, _),) = op.items()
        rid = self.send_op(**op)
        resp = self.recv()
        assert resp is not None, "daemon closed the connection during %s" % name
        assert resp.id == rid, "response id %d for request %d" % (resp.id, rid)
        return resp

    def closed_within(self, seconds):
        """True when the daemon closes the connection within the time (data is drained)."""
        deadline = time.monotonic() + seconds
        self.sock.settimeout(None)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                return False
            try:
                if not self.sock.recv(65536):
                    return True
            except (ConnectionResetError, BrokenPipeError):
                return True


def fault_env(rules, gate=None):
    """The environment that loads the fault injector (fault_shim.c) into the daemon
    with the given COWD_FAULT rules, and the FIFO its "block" rules wait on."""
    env = {"LD_PRELOAD": os.environ["COWD_FAULT_SHIM"], "COWD_FAULT": rules}
    if gate:
        env["COWD_FAULT_GATE"] = gate
    if os.environ.get("COWD_SANITIZED") in ("1", "ON", "TRUE", "true"):
        # The injector is preloaded ahead of the sanitizer's runtime, on purpose.
        opts = os.environ.get("ASAN_OPTIONS", "")
        env["ASAN_OPTIONS"] = (opts + ":" if opts else "") + "verify_asan_link_order=0"
    return env


def open_gate(gate):
    """Lets one call held by a "block" rule go on (waits until it is held)."""
    with at_gate(gate) as f:
        f.write(b"x")


def at_gate(gate):
    """Waits until a call is held by a "block" rule, and returns the gate's write end:
    the call stays held until a byte is written to it, or goes on when it is closed."""
    return open(gate, "wb", buffering=0)


def has_reply(w):
    """True if a reply has arrived on w (looked at without waiting)."""
    w.sock.setblocking(False)
    try:
        return len(w.sock.recv(1, socket.MSG_PEEK)) > 0
    except BlockingIOError:
        return False
    finally:
        w.sock.settimeout(10.0)


def children_of(pid):
    """The pids of a process's children, from /proc."""
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        return [int(x) for x in f.read().split()]


@contextlib.contextmanager
def small_tmpfs(testcase, size, prefix="cowd-small-"):
    """A tmpfs of size (a mount option: "64k") on a fresh directory, for full-disk
    tests; unmounted afterwards. Skips the test where it cannot be mounted."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        testcase.skipTest("needs root to mount a small tmpfs")
    with tempfile.TemporaryDirectory(prefix=prefix) as mnt:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", mnt],
                       check=True)
        try:
            yield mnt
        finally:
            subprocess.run(["umount", mnt], check=True)


def state_entries(state_dir):
    """What the daemon keeps in its state directory besides clients' files (the
    "files" data directory it makes there by default), sorted: the checkpoint and
    anything left beside it."""
    return sorted(e for e in os.listdir(state_dir) if e != "files")


def code_name(resp):
    return pb2().Code.Name(resp.status.code)


def ok(resp):
    """resp, once it is checked to be OK (else the status message is the failure)."""
    assert code_name(resp) == "OK", resp.status.message
    return resp


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()
