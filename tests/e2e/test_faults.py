"""Fault injection against the real binary (issue 9): slowloris, resource
exhaustion (--max-conns, the fd limit), absurd body sizes, kill -9 during
uploads, a full disk, an exec child that leaves a daemon behind, and 10,000
connect/auth/close cycles. Each test says what it injects and what must
hold; the figures (connections held, faults injected) are printed with -s."""

import os
import resource
import selectors
import socket
import struct
import subprocess
import threading
import time

import pytest

import sockit_proto as sp
from conftest import fd_count, rss_kib, sha256, wait_for

# Raw sockit/1 frames from Python: plain servers (conftest.py).
pytestmark = pytest.mark.no_tls

MiB = 1 << 20


# ---------------------------------------------------------------------------
# helpers


def small_quarantine():
    """An ASan server keeps freed memory in a quarantine (256 MiB by default),
    which would read as growth; a small one keeps RSS meaningful."""
    opts = os.environ.get("ASAN_OPTIONS", "")
    return {"ASAN_OPTIONS": (opts + ":" if opts else "") + "quarantine_size_mb=1"}


def wrapped():
    """True when the server runs under a wrapper such as valgrind."""
    return bool(os.environ.get("SOCKIT_WRAP"))


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(n, hard) if hard != resource.RLIM_INFINITY else n
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def authed(srv, secret):
    c = srv.connect()
    c.handshake(secret)
    return c


def head_only(head):
    """A frame head announcing head["size"] body bytes, with no body sent."""
    h = sp.encode_head(head)
    return struct.pack(">I", len(h)) + h


# ---------------------------------------------------------------------------
# slowloris: 500 connections drip one byte every 5 s and never authenticate


SLOW_CONNS = 500


class Prober(threading.Thread):
    """A normal client that keeps asking while the attack runs: a ping and an
    echo every 50 ms on one connection, and a new authenticated connection
    every second. Records the slowest answer."""

    def __init__(self, srv, secret):
        super().__init__(daemon=True)
        self.srv, self.secret = srv, secret
        self.stop = threading.Event()
        self.worst = 0.0
        self.answered = 0
        self.error = None

    def timed(self, fn):
        t = time.monotonic()
        fn()
        self.worst = max(self.worst, time.monotonic() - t)
        self.answered += 1

    def run(self):
        try:
            c = authed(self.srv, self.secret)
            last_new = time.monotonic()
            while not self.stop.is_set():
                self.timed(c.ping)
                self.timed(lambda: c.echo(b"x" * 1000))
                if time.monotonic() - last_new >= 1.0:
                    last_new = time.monotonic()
                    self.timed(lambda: authed(self.srv, self.secret).close())
                self.stop.wait(0.05)
            c.close()
        except Exception as e:  # reported by the test
            self.error = e


def test_slowloris_closed_at_auth_deadline_while_others_served(start_server, key_file, secret):
    raise_nofile(SLOW_CONNS * 2 + 256)
    srv = start_server("--key-file", key_file)
    fam, sa = sp.parse_addr(srv.addr)
    probe = Prober(srv, secret)
    probe.start()

    socks, opened, got, closed_at = [], {}, {}, {}
    sel = selectors.DefaultSelector()
    for _ in range(SLOW_CONNS):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.connect(sa)
        s.setblocking(False)
        opened[s] = time.monotonic()
        got[s] = b""
        socks.append(s)
        sel.register(s, selectors.EVENT_READ)
    held = 0

    def drip():
        for s in socks:
            if s not in closed_at:
                try:
                    s.send(b"\x00")  # the first byte of a head_len, forever
                except OSError:
                    pass

    next_drip = time.monotonic()
    deadline = time.monotonic() + 20
    while len(closed_at) < SLOW_CONNS and time.monotonic() < deadline:
        if time.monotonic() >= next_drip:
            drip()
            next_drip += 5.0
        held = max(held, fd_count(srv.proc.pid))
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if data:
                got[s] += data
            else:
                closed_at[s] = time.monotonic()
                sel.unregister(s)
    probe.stop.set()
    probe.join(5)
    for s in socks:
        s.close()

    print("slowloris: %d connections held (server fds %d), %d closed; prober answered %d "
          "requests, slowest %.3f s" % (SLOW_CONNS, held, len(closed_at), probe.answered,
                                         probe.worst))
    assert probe.error is None, probe.error
    assert len(closed_at) == SLOW_CONNS, "%d of %d closed" % (len(closed_at), SLOW_CONNS)
    assert held >= SLOW_CONNS
    lifetimes = sorted(closed_at[s] - opened[s] for s in socks)
    assert lifetimes[0] >= 9.0, lifetimes[:5]     # not before the 10 s deadline
    assert lifetimes[-1] <= 14.0, lifetimes[-5:]  # and not long after it
    assert all(b'"timeout"' in got[s] for s in socks)
    assert probe.answered > 100 and probe.worst < 1.0, probe.worst
    assert srv.alive()


# ---------------------------------------------------------------------------
# resource exhaustion


def test_past_max_conns_refused_then_served_again(start_server, key_file, secret):
    srv = start_server("--key-file", key_file, "--max-conns", "20")
    held = [authed(srv, secret) for _ in range(20)]
    refused = []
    for _ in range(10):
        c = srv.connect()
        h, _ = c.recv_frame()
        assert h["type"] == "error" and h["code"] == "busy", h
        assert c.is_closed(2)
        refused.append(c)
    assert held[0].ping()["type"] == "pong"
    for c in held[:5] + refused:
        c.close()
    again = wait_for(lambda: _try_authed(srv, secret), 3)
    assert again, "not served again after connections went"
    again.close()
    for c in held[5:]:
        assert c.ping()["type"] == "pong"
        c.close()


def _try_authed(srv, secret):
    try:
        return authed(srv, secret)
    except sp.ProtoError:
        return None


def _hello_or_closed(c, timeout=3):
    """'hello' when served, 'closed' when the server shed the connection."""
    try:
        h, _ = c.recv_frame(timeout)
        return h["type"]
    except sp.Closed:
        return "closed"


@pytest.mark.skipif(wrapped(), reason="valgrind keeps its own fds under the limit")
def test_past_the_fd_limit_refused_cleanly_then_served_again(start_server, key_file, secret):
    # The default --threads, and at least two loops: the reserve descriptor
    # used to shed is shared by the loops, whose accepts must not take it.
    threads = str(max(2, os.cpu_count() or 2))
    srv = start_server("--key-file", key_file, "--threads", threads)
    pid = srv.proc.pid
    keep = authed(srv, secret)
    assert keep.ping()["type"] == "pong"  # the server is done with keep's start
    base = fd_count(pid)
    limit = base + 8
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, limit))
    conns = [srv.connect() for _ in range(40)]
    outcome = [_hello_or_closed(c) for c in conns]
    served = outcome.count("hello")
    shed = outcome.count("closed")
    print("fd limit %d: %d served, %d shed" % (limit, served, shed))
    assert served + shed == len(conns), outcome
    assert 1 <= served <= 9 and shed >= 30, outcome
    assert srv.alive() and keep.ping()["type"] == "pong"
    for c in conns:
        c.close()
    assert wait_for(lambda: fd_count(pid) <= base, 5), (fd_count(pid), base)
    again = [authed(srv, secret) for _ in range(6)]  # within the limit: all served
    for c in again:
        assert c.ping()["type"] == "pong"
        c.close()
    keep.close()


# ---------------------------------------------------------------------------
# absurd sizes: too_large before anything is allocated


@pytest.mark.parametrize("req", [
    {"type": "echo"},
    {"type": "put", "name": "huge.bin", "total": 2 ** 50, "offset": 0},
    {"type": "say", "room": "lobby"},
], ids=["echo", "put", "say"])
def test_size_2_50_is_too_large_before_allocation(start_server, key_file, secret, tmp_path, req):
    root = tmp_path / "root"
    root.mkdir()
    srv = start_server("--key-file", key_file, "--root", str(root), "--max-file", "1G",
                       env_extra=small_quarantine())
    pid = srv.proc.pid
    with authed(srv, secret) as c:
        if req["type"] == "say":
            c.request({"type": "join", "room": "lobby", "nick": "ann"})
        rss0 = rss_kib(pid)
        for _ in range(20):
            d = authed(srv, secret)
            d.send_raw(head_only(dict(req, size=2 ** 50)) + b"x" * 65536)
            h = d.expect_error("too_large")
            assert d.is_closed(3), "a body over 16 MiB is not read: the server closes"
            d.close()
        grown = rss_kib(pid) - rss0
        print("%s size 2^50 x20: RSS grew %d KiB" % (req["type"], grown))
        assert grown < 16 * 1024, grown
        assert c.ping()["type"] == "pong"
    assert not list(root.iterdir()) or req["type"] != "put"


def test_size_2_50_before_auth_is_refused(server):
    with server.connect() as c:
        c.hello()
        c.send_raw(head_only({"type": "echo", "size": 2 ** 50}))
        c.expect_error("auth_required")
        assert c.is_closed(3)


# ---------------------------------------------------------------------------
# kill -9 during 20 uploads


UPLOADS = 20


def _uploader(srv, name, data, chunk, pause, result):
    """Send one put slowly; result[name] = 'ok' once put_ok came back."""
    try:
        c = srv.connect(timeout=20)
        c.hello()
        c.send_raw(head_only({"type": "put", "name": name, "total": len(data), "offset": 0,
                              "size": len(data), "hash": "sha256"}))
        for off in range(0, len(data), chunk):
            c.send_raw(data[off:off + chunk])
            time.sleep(pause)  # a slow uploader, so that the kill finds bytes in flight
        c.send({"type": "put_end", "hash": sha256(data)})
        h, _ = c.recv_frame(20)
        result[name] = "ok" if h["type"] == "put_ok" else h
    except (OSError, sp.ProtoError) as e:
        result[name] = "cut: %s" % type(e).__name__


def test_kill_9_during_20_uploads_then_every_one_resumes(start_server, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    srv = start_server("--no-auth", "--root", str(root))
    datas = {"up/f%02d.bin" % i: os.urandom(MiB + i * 300 * 1024 + i) for i in range(UPLOADS)}
    result = {}
    threads = [threading.Thread(target=_uploader, args=(srv, n, d, 64 * 1024, 0.01, result),
                                daemon=True) for n, d in datas.items()]
    for t in threads:
        t.start()

    def partial_parts():
        try:
            return sum(1 for p in (root / "up").iterdir()
                       if p.name.endswith(".sockit-part") and p.stat().st_size > 0)
        except OSError:
            return 0

    # kill once some uploads are done and others have bytes on disk, in flight
    assert wait_for(lambda: sum(1 for v in result.values() if v == "ok") >= 2
                    and partial_parts() >= 5, 20), result
    srv.kill()
    for t in threads:
        t.join(20)
    done_before = sorted(n for n, v in result.items() if v == "ok")
    for name, data in datas.items():
        target = root / name
        if target.exists():  # published: complete, never partial
            assert target.read_bytes() == data, name
        assert name not in done_before or target.exists(), name

    srv2 = start_server("--no-auth", "--root", str(root))
    resumed = 0
    with srv2.connect() as c:
        c.hello()
        for name, data in datas.items():
            st, _ = c.request({"type": "stat", "name": name})
            if st["exists"] and st["length"] == len(data) and st["partial"] == 0:
                continue
            k = st["partial"]
            assert 0 <= k <= len(data), st
            c.send_raw(head_only({"type": "put", "name": name, "total": len(data), "offset": k,
                                  "size": len(data) - k, "hash": "sha256"}) + data[k:])
            c.send({"type": "put_end", "hash": sha256(data)})
            ok, _ = c.expect("put_ok")
            assert ok["hash"] == sha256(data), ok
            resumed += k > 0
    for name, data in datas.items():
        assert (root / name).read_bytes() == data, name
    parts = [p.name for p in (root / "up").iterdir() if p.name.endswith(".sockit-part")]
    assert parts == [], parts
    print("kill -9: %d uploads, %d complete before, %d resumed from a part file" % (
        UPLOADS, len(done_before), resumed))


# ---------------------------------------------------------------------------
# disk full: a 2 MiB tmpfs as the root


@pytest.fixture
def tiny_fs(tmp_path):
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): %s" % r.stderr.decode().strip())
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_disk_full_during_upload(start_server, tiny_fs):
    srv = start_server("--no-auth", "--root", str(tiny_fs))
    with srv.connect() as c:
        c.hello()
        data = os.urandom(3 * MiB)
        c.send({"type": "put", "name": "full.bin", "total": len(data), "offset": 0,
                "hash": "sha256"}, data)
        c.send({"type": "put_end", "hash": sha256(data)})
        c.expect_error("io_error", timeout=10)
        assert not (tiny_fs / "full.bin").exists()
        assert [p.name for p in tiny_fs.iterdir()] == []  # no part file left
        small = b"s" * 1000
        c.send({"type": "put", "name": "small.bin", "total": len(small), "offset": 0,
                "hash": "sha256"}, small)
        c.send({"type": "put_end", "hash": sha256(small)})
        ok, _ = c.expect("put_ok")
        assert (tiny_fs / "small.bin").read_bytes() == small
        assert c.ping()["type"] == "pong"


# ---------------------------------------------------------------------------
# exec: a child that leaves a daemon holding its pipes, closes its own and sleeps


def _dead(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def test_exec_daemon_closed_stdout_timeout_ends_group(start_server, key_file, secret, tmp_path):
    srv = start_server("--key-file", key_file, "--allow-exec", "--root", str(tmp_path))
    with authed(srv, secret) as c:
        t0 = time.monotonic()
        c.send({"type": "exec", "timeout": 1,
                "shell": "sleep 300 & echo $!; exec >&- 2>&-; sleep 300"})
        out = b""
        while True:
            h, body = c.recv_frame(10)
            if h["type"] == "stdout":
                out += body
            elif h["type"] == "exit":
                break
        took = time.monotonic() - t0
        assert h.get("timed_out") is True and h.get("signal") in (9, 15), h
        assert took < 5, took
        daemon = int(out.split()[0])
        assert wait_for(lambda: _dead(daemon), 3), "the daemon %d survived" % daemon
        assert c.ping()["type"] == "pong"


# ---------------------------------------------------------------------------
# 10,000 connect/auth/close cycles: fds and memory come back


CYCLES = 10000


def _cycles(srv, secret, n, errors):
    fam, sa = sp.parse_addr(srv.addr)
    try:
        for _ in range(n):
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.connect(sa)
            c = sp.Client(s, timeout=10)
            c.handshake(secret)
            c.close()
    except Exception as e:
        errors.append(e)


@pytest.mark.skipif(wrapped(), reason="10,000 handshakes under valgrind take too long")
def test_10000_auth_cycles_fds_and_rss_return(start_server, key_file, secret):
    srv = start_server("--key-file", key_file, env_extra=small_quarantine())
    pid = srv.proc.pid
    errors = []
    fds_idle = fd_count(pid)
    _cycles(srv, secret, 300, errors)  # warm up pools and allocator arenas
    # the server has closed the warm-up connections
    assert wait_for(lambda: fd_count(pid) <= fds_idle, 5), (fd_count(pid), fds_idle)
    fds0, rss0 = fd_count(pid), rss_kib(pid)
    threads = [threading.Thread(target=_cycles, args=(srv, secret, CYCLES // 4, errors))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [], errors[:3]
    assert wait_for(lambda: fd_count(pid) == fds0, 5), (fd_count(pid), fds0)
    rss1 = rss_kib(pid)
    print("10,000 cycles: fds %d -> %d, RSS %d -> %d KiB" % (fds0, fd_count(pid), rss0, rss1))
    assert rss1 - rss0 < 8 * 1024, (rss0, rss1)
    with authed(srv, secret) as c:
        assert c.ping()["type"] == "pong"


# ---------------------------------------------------------------------------
# the key: never logged, never handed to children


def test_key_never_in_log_or_stderr(start_server, key_file, secret, tmp_path):
    log = tmp_path / "conn.log"
    srv = start_server("--key-file", key_file, "--log", str(log), "--log-format", "json")
    authed(srv, secret).close()
    with srv.connect() as c:
        c.hello()
        assert c.auth(b"wrong key of enough length!!")["code"] == "auth_failed"
    srv.stop()
    text = log.read_bytes() + srv.stderr_text().encode()
    assert b"auth_ok" in log.read_bytes()
    assert secret not in text
    assert secret.decode() not in text.decode("utf-8", "replace")


def test_exec_children_get_no_key(start_server, key_file, secret, tmp_path):
    srv = start_server("--key-file", key_file, "--allow-exec", "--root", str(tmp_path),
                       env_extra={"SOCKIT_KEY_FILE": key_file})
    with authed(srv, secret) as c:
        c.send({"type": "exec", "shell": "env; ls -l /proc/self/fd/"})
        out = b""
        while True:
            h, body = c.recv_frame(10)
            if h["type"] in ("stdout", "stderr"):
                out += body
            elif h["type"] == "exit":
                break
    assert b"SOCKIT_" not in out
    assert secret not in out
    assert key_file.encode() not in out
