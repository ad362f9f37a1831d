"""Fixtures for the sockit end-to-end suite: the binary, an isolated
environment (HOME, XDG dirs), key files, and servers started on port 0 whose
real addresses are read from their `sockit: listening on ADDR` lines.

TLS: servers speak TLS 1.3 as sockit does by default, except for tests that
talk raw sockit/1 frames from Python (sockit_proto.py cannot speak TLS-PSK:
Python's ssl module has no TLS 1.3 external PSK). Those are marked
`@pytest.mark.no_tls` (or call start_server(..., tls=False)) and get a
`--no-tls` server; run_cli then adds `--no-tls` to client commands aimed at
such a server (or at a FakeServer), so one test can mix raw frames and the
command line."""

import fcntl
import hashlib
import os
import queue
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sockit_proto as sp  # noqa: E402

SOCKIT_BIN = os.environ.get("SOCKIT_BIN", "/work/main/build/sockit")
# SOCKIT_WRAP runs every server under a wrapper, e.g. "valgrind --error-exitcode=99"
# (make test-valgrind): exit status 99 then fails the test like a sanitizer report.
SOCKIT_WRAP = shlex.split(os.environ.get("SOCKIT_WRAP", ""))
WRAP_ERROR_EXIT = 99
READY_DEADLINE = 60.0 if SOCKIT_WRAP else 10.0
LISTEN_RE = re.compile(
    r"^sockit: listening on (\S+)(?: \((?:udp|daytime|rfc868|seed wire: [a-z]+)\))*\s*$")


# Helpers several test files share: polling, /proc readings, hash names.


def wait_for(pred, timeout=5.0, step=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def unread_bytes(sock):
    """Bytes waiting in sock's receive queue (FIONREAD)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]


def unacked_bytes(sock):
    """Bytes sock has sent that the peer's kernel has not acknowledged yet
    (TIOCOUTQ: unsent plus in flight)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]


def signal_pending(pid, sig):
    """True while sig waits to be delivered to process pid (its SigPnd or
    ShdPnd mask in /proc): once false, its handler has run or is running."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("SigPnd:", "ShdPnd:")) and int(line.split()[1], 16) >> (sig - 1) & 1:
                return True
    return False


def udp_addrs(srv, n=1, timeout=5):
    """The addresses of srv's first n UDP listeners, from its stderr."""
    def found():
        return re.findall(r"listening on (\S+) \(udp\)", srv.stderr_text())

    wait_for(lambda: len(found()) >= n, timeout)
    return found()


class Output:
    """What a child writes to one pipe, gathered by a thread, so that a test
    waits (bounded) for a line to appear instead of sleeping. Use it instead
    of communicate() for that pipe; text() is everything once it ended."""

    def __init__(self, stream):
        self._fd = stream.fileno()
        self._chunks = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except OSError:  # the pipe was closed under us (teardown): the end
                return
            if not chunk:
                return
            self._chunks.append(chunk)

    def data(self):
        return b"".join(self._chunks)

    def wait(self, needle, timeout=5.0):
        """True once needle (bytes or str) has been written."""
        if isinstance(needle, str):
            needle = needle.encode()
        return bool(wait_for(lambda: needle in self.data(), timeout))

    def all(self, timeout=10.0):
        """Everything, once the writer has closed the pipe (bounded)."""
        self._thread.join(timeout)
        return self.data()

    def text(self, timeout=10.0):
        return self.all(timeout).decode("utf-8", "replace")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def small_asan_quarantine():
    """env_extra for a server whose RSS a test reads: an ASan build keeps
    freed memory in a quarantine (256 MiB by default); 1 MiB here."""
    opts = os.environ.get("ASAN_OPTIONS", "")
    return {"ASAN_OPTIONS": (opts + ":" if opts else "") + "quarantine_size_mb=1"}


def sha256(data):
    """The SPEC 4.7 hash name of data: "sha256:HEX"."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def have_binary():
    return os.path.isfile(SOCKIT_BIN) and os.access(SOCKIT_BIN, os.X_OK)


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: ThreadSanitizer")


def sanitizer_report(text):
    """True when a sanitizer (ASan, LSan, UBSan, TSan) reported something."""
    return any(m in text for m in SANITIZER_MARKS)


def have_ipv6():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def free_port():
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_key(path, mode=0o600, secret_hex=None):
    secret_hex = secret_hex or os.urandom(32).hex()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(secret_hex + "\n")
    os.chmod(path, mode)
    return secret_hex.encode("ascii")


class Env:
    """An isolated HOME / XDG_CONFIG_HOME / XDG_DATA_HOME under a tmp dir.
    plain_addrs: the addresses of plain (--no-tls) servers, in every form a
    test may write them, so that run_cli knows to add --no-tls."""

    def __init__(self, base):
        self.base = str(base)
        self.plain_addrs = set()
        self.home = os.path.join(self.base, "home")
        self.config = os.path.join(self.base, "config")
        self.data = os.path.join(self.base, "data")
        for d in (self.home, self.config, self.data):
            os.makedirs(d, exist_ok=True)
        env = dict(os.environ)
        for k in ("SOCKIT_KEY_FILE", "SOCKIT_ADDR"):
            env.pop(k, None)
        env["HOME"] = self.home
        env["XDG_CONFIG_HOME"] = self.config
        env["XDG_DATA_HOME"] = self.data
        self.vars = env

    def add_plain(self, addr):
        self.plain_addrs.add(addr)
        m = re.match(r"^(?:127\.0\.0\.1|localhost)?:(\d+)$", addr)
        if m:
            for host in ("", "127.0.0.1", "localhost"):
                self.plain_addrs.add("%s:%s" % (host, m.group(1)))

    def make(self, **extra):
        env = dict(self.vars)
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env


def helper_program(name):
    """The path of a test-only program (tests/helpers/NAME.c, built with the
    unit tests, never installed) beside the binary under test."""
    path = os.path.join(os.path.dirname(os.path.abspath(SOCKIT_BIN)), "tests", "helpers", name)
    assert os.access(path, os.X_OK), "%s not built (make build builds it with the tests)" % path
    return path


class Server:
    """One running `sockit serve` (or `command`: a test helper program that
    prints the same `sockit: listening on ADDR` lines)."""

    def __init__(self, args, env, nlisteners, tls=True, command=None):
        self.tls = tls
        self.args = SOCKIT_WRAP + (list(command) if command else [SOCKIT_BIN, "serve"]) + list(args)
        self.stderr_lines = []
        self._q = queue.Queue()
        self.proc = subprocess.Popen(
            self.args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, start_new_session=True)
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        self.addrs = []
        deadline = time.monotonic() + READY_DEADLINE
        while len(self.addrs) < nlisteners:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise RuntimeError("server not ready within %.0fs: %r\nstderr:\n%s" % (
                    READY_DEADLINE, self.args, self.stderr_text()))
            try:
                line = self._q.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(timeout=5)
                raise RuntimeError("server exited with %s before ready: %r\nstderr:\n%s" % (
                    self.proc.returncode, self.args, self.stderr_text()))
            m = LISTEN_RE.match(line)
            if m:
                self.addrs.append(m.group(1))

    def _read_stderr(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.stderr_lines.append(line)
            self._q.put(line)
        self._q.put(None)

    def stderr_text(self):
        return "\n".join(self.stderr_lines)

    # addresses --------------------------------------------------------------

    @property
    def addr(self):
        """The first listener's address (ADDR text as printed)."""
        return self.addrs[0]

    def addr_of(self, kind):
        for a in self.addrs:
            if kind == "unix" and a.startswith("unix:"):
                return a
            if kind == "ipv6" and a.startswith("["):
                return a
            if kind == "ipv4" and not a.startswith(("unix:", "[")):
                return a
        raise KeyError(kind)

    @property
    def port(self):
        return sp.parse_addr(self.addr_of("ipv4"))[1][1]

    def connect(self, addr=None, timeout=sp.DEFAULT_TIMEOUT):
        return sp.Client.connect(addr or self.addr, timeout)

    # life cycle ---------------------------------------------------------------

    def alive(self):
        return self.proc.poll() is None

    def terminate(self, sig=signal.SIGTERM, timeout=5.0):
        """Send sig and wait; returns the exit status or None if still running."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
            self.proc.wait(timeout=5)

    def stop(self):
        if self.terminate(signal.SIGTERM, 30.0 if SOCKIT_WRAP else 5.0) is None:
            self.kill()
        self._reader.join(timeout=2)


@pytest.fixture(scope="session")
def sockit_bin():
    if not have_binary():
        pytest.skip("sockit binary not found at %s (set SOCKIT_BIN)" % SOCKIT_BIN)
    return SOCKIT_BIN


@pytest.fixture
def env(tmp_path):
    return Env(tmp_path)


@pytest.fixture
def key_file(tmp_path):
    path = str(tmp_path / "key")
    write_key(path)
    return path


@pytest.fixture
def secret(key_file):
    return sp.load_secret(key_file)


@pytest.fixture
def short_dir():
    """A short directory for Unix socket paths (sun_path is ~108 bytes)."""
    d = tempfile.mkdtemp(prefix="sk-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "no_tls: servers of this test run with --no-tls (it speaks raw frames)")


@pytest.fixture
def start_server(sockit_bin, env, request):
    """start_server(*args, listen=["127.0.0.1:0"], env_extra={}, tls=None) -> Server.
    tls=None: TLS unless the test is marked no_tls; tls=False adds --no-tls.
    Every server is stopped (SIGTERM, then SIGKILL after 5 s) at teardown."""
    started = []

    def start(*args, listen=("127.0.0.1:0",), env_extra=None, tls=None):
        if tls is None:
            tls = request.node.get_closest_marker("no_tls") is None and "--no-tls" not in args
        argv = []
        for a in listen:
            argv += ["-l", a]
        argv += list(args)
        if not tls and "--no-tls" not in argv:
            argv.append("--no-tls")
        srv = Server(argv, env.make(**(env_extra or {})), len(listen), tls=tls)
        started.append(srv)
        if not tls:
            for a in srv.addrs:
                env.add_plain(a)
        return srv

    yield start
    reports = []
    for srv in started:
        srv.stop()
        if sanitizer_report(srv.stderr_text()) or (
                SOCKIT_WRAP and srv.proc.returncode == WRAP_ERROR_EXIT):
            reports.append("%r:\n%s" % (srv.args, srv.stderr_text()[-4000:]))
    if reports:
        pytest.fail("sanitizer report from the server:\n" + "\n".join(reports))


@pytest.fixture
def server(start_server, key_file):
    """A default authenticated server on 127.0.0.1:0."""
    return start_server("--key-file", key_file)


# Commands that connect with the native client (and take --no-tls).
CLIENT_COMMANDS = {"echo", "time", "exec", "put", "get", "ls", "rm", "chat", "bench"}


def plain_args(env, args, env_extra=None):
    """args with --no-tls after the command when it is a client command
    aimed at a plain server (by address, or by $SOCKIT_ADDR)."""
    args = [str(a) for a in args]
    if not args or args[0] not in CLIENT_COMMANDS or "--no-tls" in args:
        return args
    target = set(args[1:])
    target.add((env_extra or {}).get("SOCKIT_ADDR") or "")
    if target & env.plain_addrs:
        return [args[0], "--no-tls"] + args[1:]
    return args


@pytest.fixture
def run_cli(sockit_bin, env):
    """run_cli(*args, env_extra={}, input=None, timeout=10, as_is=False) ->
    CompletedProcess (text mode). Adds --no-tls for plain servers (see
    plain_args) unless as_is."""

    def run(*args, env_extra=None, input=None, timeout=10, as_is=False):
        argv = [str(a) for a in args] if as_is else plain_args(env, args, env_extra)
        r = subprocess.run(
            [sockit_bin] + argv, env=env.make(**(env_extra or {})),
            input=input, capture_output=True, text=True, timeout=timeout)
        assert not sanitizer_report(r.stderr), r.stderr
        return r

    return run


# ---------------------------------------------------------------------------
# A tiny reference server written from the spec, used to check the oracle
# itself and to play a server with a wrong mac against the real client.


class FakeServer:
    """Serves SPEC 4.3 hello/auth and echo/ping on 127.0.0.1:0, one thread per
    connection. With bad_server_mac the auth_ok carries a wrong mac."""

    def __init__(self, secret, bad_server_mac=False):
        self.secret = secret
        self.bad_server_mac = bad_server_mac
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.stopping = False
        self.threads = []
        self.errors = []
        self.t = threading.Thread(target=self._accept_loop, daemon=True)
        self.t.start()

    def _accept_loop(self):
        while not self.stopping:
            try:
                s, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(s,), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, s):
        c = sp.Client(s, timeout=5)
        try:
            sn = sp.new_nonce()
            c.send({"type": "hello", "proto": "sockit/1", "server": "fake 0",
                    "auth": "hmac-sha256", "nonce": sn, "services": ["echo", "time"]})
            head, _ = c.recv_frame()
            if head["type"] != "auth":
                c.send({"type": "error", "code": "auth_required"})
                return
            cn = head["nonce"]
            if not sp.hmac.compare_digest(head.get("mac", ""), sp.client_mac(self.secret, sn, cn)):
                c.send({"type": "error", "code": "auth_failed"})
                return
            mac = sp.server_mac(self.secret, sn, cn)
            if self.bad_server_mac:
                mac = sp.server_mac(self.secret, sn, sp.new_nonce())
            c.send({"type": "auth_ok", "mac": mac})
            while True:
                head, body = c.recv_frame(timeout=10)
                rid = {"id": head["id"]} if "id" in head else {}
                if head["type"] == "echo":
                    c.send(dict({"type": "echo", "size": len(body)}, **rid), body)
                elif head["type"] == "ping":
                    c.send(dict({"type": "pong"}, **rid))
                elif head["type"] == "bye":
                    return
                else:
                    c.send(dict({"type": "error", "code": "unknown_type"}, **rid))
        except sp.Closed:
            pass
        except Exception as e:  # recorded for the self-test
            self.errors.append(e)
        finally:
            c.close()

    def stop(self):
        self.stopping = True
        self.lsock.close()
        self.t.join(timeout=2)


@pytest.fixture
def fake_server(env):
    made = []

    def make(secret, **kw):
        fs = FakeServer(secret, **kw)
        made.append(fs)
        env.add_plain(fs.addr)  # it speaks plain sockit/1
        return fs

    yield make
    for fs in made:
        fs.stop()
