"""`sockit listen` / `sockit connect`: raw byte pipes over TCP, UDP and Unix
sockets (issue 6, SPEC 2 and 3). Every listener binds port 0 (or a fresh Unix
path) and is found through its `sockit: listening on ADDR` line."""

import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import LISTEN_RE, SOCKIT_BIN, have_ipv6, sanitizer_report, wait_for

MIB = 1 << 20


class Proc:
    """A running sockit command whose stdout and stderr are collected by
    threads, so that a test can wait for output without blocking."""

    def __init__(self, args, env, stdin=subprocess.PIPE):
        self.args = [SOCKIT_BIN] + [str(a) for a in args]
        self.proc = subprocess.Popen(self.args, env=env, stdin=stdin, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.out = bytearray()
        self.err = bytearray()
        self.cond = threading.Condition()
        self.readers = [threading.Thread(target=self._read, args=(s, b), daemon=True)
                        for s, b in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for t in self.readers:
            t.start()

    def _read(self, stream, buf):
        while True:
            chunk = stream.read1(1 << 16)
            with self.cond:
                if chunk:
                    buf += chunk
                self.cond.notify_all()
            if not chunk:
                return

    def wait_for(self, pred, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out: %r\nstdout: %r\nstderr: %s" % (
                        self.args, bytes(self.out[:200]), self.err.decode(errors="replace")))
                self.cond.wait(left)

    def listening(self, timeout=10.0):
        """The address from the `sockit: listening on ADDR` line."""
        found = []

        def pred():
            for line in self.err.decode(errors="replace").splitlines():
                m = LISTEN_RE.match(line)
                if m:
                    found.append(m.group(1))
                    return True
            return self.proc.poll() is not None and not found
        self.wait_for(pred, timeout)
        assert found, "exited before listening: %s" % self.err.decode(errors="replace")
        return found[0]

    def write(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def close_stdin(self):
        self.proc.stdin.close()

    def finish(self, timeout=15.0):
        """Wait for the exit; returns the status. Fails on a sanitizer report."""
        rc = self.proc.wait(timeout=timeout)
        for t in self.readers:
            t.join(timeout=5)
        assert not sanitizer_report(self.err.decode(errors="replace")), self.err.decode()
        return rc

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.finish()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


@pytest.fixture
def spawn(sockit_bin, env):
    made = []

    def start(*args, stdin=subprocess.PIPE, env_extra=None):
        p = Proc(args, env.make(**(env_extra or {})), stdin)
        made.append(p)
        return p

    yield start
    for p in made:
        p.kill()


def feed(proc, data):
    """Write data to proc's stdin and close it, from a thread (full duplex)."""
    def run():
        try:
            proc.write(data)
            proc.close_stdin()
        except BrokenPipeError:
            pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def duplex(spawn, listen_addr, connect_addr=None, size=MIB):
    """Both sides send size random bytes at once and half-close; both must
    print exactly the other's bytes and exit 0. --keep-sending: without it a
    side whose peer has finished stops once its stdin is silent for 0.5 s
    (SPEC 3.1), which a feeding thread starved on a loaded machine can be."""
    a, b = os.urandom(size), os.urandom(size)
    lis = spawn("listen", "--keep-sending", listen_addr)
    addr = lis.listening()
    con = spawn("connect", "--keep-sending", connect_addr or addr)
    threads = [feed(lis, a), feed(con, b)]
    assert con.finish(30) == 0, con.err.decode()
    assert lis.finish(30) == 0, lis.err.decode()
    for t in threads:
        t.join(5)
    assert bytes(con.out) == a
    assert bytes(lis.out) == b
    return addr


def test_full_duplex_1mib_each_way(spawn):
    duplex(spawn, "127.0.0.1:0")


def test_bare_port_and_colon_port_forms(spawn):
    lis = spawn("listen", "0")
    port = lis.listening().rsplit(":", 1)[1]
    con = spawn("connect", port)
    feed(con, b"bare port\n")
    feed(lis, b"")
    assert con.finish() == 0 and lis.finish() == 0
    assert bytes(lis.out) == b"bare port\n"


def test_half_close_answer_after_eof(spawn):
    """connect's stdin EOF only shuts its write side: the listener sees EOF,
    answers afterwards, and connect still receives that answer."""
    lis = spawn("listen", "--keep-sending", "127.0.0.1:0")
    con = spawn("connect", lis.listening())
    request = os.urandom(300000)
    feed(con, request)
    lis.wait_for(lambda: len(lis.out) == len(request))
    lis.wait_for(lambda: lis.proc.stdout.closed or lis.readers[0].is_alive() is False, 10)
    assert bytes(lis.out) == request  # stdout reached EOF: the peer's FIN came through
    answer = os.urandom(200000)
    feed(lis, answer)
    assert lis.finish() == 0
    assert con.finish() == 0
    assert bytes(con.out) == answer


def test_peer_eof_keeps_sending_stdin(spawn):
    """The listener half-closes first (stdin empty); with --keep-sending
    connect's stdout ends, but it goes on sending its stdin until that ends."""
    lis = spawn("listen", "--keep-sending", "127.0.0.1:0", stdin=subprocess.DEVNULL)
    con = spawn("connect", "--keep-sending", lis.listening())
    con.wait_for(lambda: not con.readers[0].is_alive())  # stdout closed at the peer's EOF
    data = os.urandom(100000)
    feed(con, data)
    assert con.finish() == 0
    assert lis.finish() == 0
    assert bytes(lis.out) == data


def test_keep_serves_three_clients_in_turn(spawn):
    lis = spawn("listen", "-k", "127.0.0.1:0", stdin=subprocess.DEVNULL)
    addr = lis.listening()
    for i in range(3):
        con = spawn("connect", addr)
        feed(con, b"client %d\n" % i)
        assert con.finish() == 0, con.err.decode()
        lis.wait_for(lambda: lis.out.count(b"\n") == i + 1)
    assert lis.proc.poll() is None  # still listening
    assert lis.stop() == 0
    assert bytes(lis.out) == b"client 0\nclient 1\nclient 2\n"


@pytest.mark.no_tls
def test_without_keep_the_listener_takes_one_client(spawn):
    lis = spawn("listen", "127.0.0.1:0")
    addr = lis.listening()
    host, port = addr.rsplit(":", 1)
    first = socket.create_connection((host, int(port)), timeout=5)

    def refused():
        try:
            socket.create_connection((host, int(port)), timeout=2).close()
            return False
        except OSError:
            return True

    # the listener closes its socket once the client is in: others are refused
    assert wait_for(refused, 5)
    first.sendall(b"one")
    first.shutdown(socket.SHUT_WR)
    feed(lis, b"")
    assert first.recv(10) == b""
    first.close()
    assert lis.finish() == 0
    assert bytes(lis.out) == b"one"


def test_udp_one_datagram_each_way(spawn):
    lis = spawn("listen", "-u", "127.0.0.1:0")
    addr = lis.listening()
    con = spawn("connect", "-u", addr)
    con.write(b"ping from client")
    lis.wait_for(lambda: bytes(lis.out) == b"ping from client")
    lis.write(b"pong from listener")  # goes to the last sender
    con.wait_for(lambda: bytes(con.out) == b"pong from listener")
    con.close_stdin()
    t0 = time.monotonic()
    assert con.finish() == 0
    assert time.monotonic() - t0 < 5
    assert lis.stop() == 0


@pytest.mark.no_tls
def test_udp_listen_answers_a_plain_socket(spawn):
    lis = spawn("listen", "-u", "127.0.0.1:0")
    host, port = lis.listening().rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(b"\x00\x01binary\xff", (host, int(port)))
        lis.wait_for(lambda: bytes(lis.out) == b"\x00\x01binary\xff")
        lis.write(b"reply")
        assert s.recvfrom(100)[0] == b"reply"
    assert lis.stop() == 0


@pytest.mark.skipif(not have_ipv6(), reason="no IPv6 loopback")
def test_ipv6_duplex(spawn):
    addr = duplex(spawn, "[::1]:0", size=64 * 1024)
    assert addr.startswith("[::1]:")


@pytest.mark.no_tls
def test_unix_stream_duplex_stale_file_and_cleanup(spawn, short_dir):
    path = os.path.join(short_dir, "pipe.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # a crashed listener's leftover: nobody answers on it
    assert os.path.exists(path)
    addr = duplex(spawn, "unix:" + path, size=MIB)
    assert addr == "unix:" + path
    assert not os.path.exists(path)  # removed on exit


@pytest.mark.no_tls
def test_unix_live_socket_is_not_stolen(spawn, short_dir):
    path = os.path.join(short_dir, "live.sock")
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(path)
    live.listen(1)
    try:
        lis = spawn("listen", "unix:" + path, stdin=subprocess.DEVNULL)
        assert lis.finish() == 1
        assert "cannot listen" in lis.err.decode()
        assert os.path.exists(path)
    finally:
        live.close()


def test_unix_datagram_each_way(spawn, short_dir):
    path = os.path.join(short_dir, "dgram.sock")
    lis = spawn("listen", "-u", "unix:" + path)
    assert lis.listening() == "unix:" + path
    con = spawn("connect", "-u", "unix:" + path)
    con.write(b"hello over unix dgram")
    lis.wait_for(lambda: bytes(lis.out) == b"hello over unix dgram")
    lis.write(b"back")
    con.wait_for(lambda: bytes(con.out) == b"back")
    con.close_stdin()
    assert con.finish() == 0
    assert lis.stop() == 0
    assert not os.path.exists(path)


def test_serve_and_echo_over_unix(start_server, run_cli, short_dir):
    path = os.path.join(short_dir, "serve.sock")
    srv = start_server("--no-auth", listen=("unix:" + path,))
    assert srv.addr == "unix:" + path
    r = run_cli("echo", "--no-auth", "unix:" + path, "hello", "unix")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello unix\n"


@pytest.mark.no_tls
def test_listen_idle_timeout_closes(spawn):
    lis = spawn("listen", "--idle-timeout", "1", "127.0.0.1:0")
    host, port = lis.listening().rsplit(":", 1)
    c = socket.create_connection((host, int(port)), timeout=10)
    t0 = time.monotonic()
    assert c.recv(10) == b""  # the listener gave up on the silent client
    assert 0.8 < time.monotonic() - t0 < 5
    c.close()
    assert lis.finish() == 1
    assert "idle-timeout" in lis.err.decode()


@pytest.mark.no_tls
def test_connect_idle_timeout_closes(spawn):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    try:
        # connect's idle clock starts when its connection is made, which is
        # after spawning it and before accept() here returns (by as much as
        # the machine's load): at least 0.5 s after the first, soon after the second
        t_spawn = time.monotonic()
        con = spawn("connect", "--idle-timeout", "0.5", "127.0.0.1:%d" % srv.getsockname()[1])
        peer, _ = srv.accept()
        t_accept = time.monotonic()
        assert con.finish(10) == 1
        t_end = time.monotonic()
        assert t_end - t_spawn > 0.4
        assert t_end - t_accept < 5
        peer.close()
    finally:
        srv.close()


@pytest.mark.no_tls
def test_keep_idle_client_does_not_block_the_next(spawn):
    lis = spawn("listen", "-k", "--idle-timeout", "0.5", "127.0.0.1:0", stdin=subprocess.DEVNULL)
    host, port = lis.listening().rsplit(":", 1)
    silent = socket.create_connection((host, int(port)), timeout=10)
    con = spawn("connect", "%s:%s" % (host, port))
    feed(con, b"after the silent one")
    assert con.finish() == 0
    lis.wait_for(lambda: bytes(lis.out) == b"after the silent one")
    silent.close()
    assert lis.stop() == 0


@pytest.mark.no_tls
def test_connect_refused_is_255(spawn):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    con = spawn("connect", "127.0.0.1:%d" % port, stdin=subprocess.DEVNULL)
    assert con.finish() == 255
    assert "cannot connect" in con.err.decode()


def test_bad_usage_is_2(spawn):
    assert spawn("connect", "host:notaport", stdin=subprocess.DEVNULL).finish() == 2
    assert spawn("listen", "--bogus", stdin=subprocess.DEVNULL).finish() == 2
    assert spawn("listen", "a:1", "b:2", stdin=subprocess.DEVNULL).finish() == 2
    assert spawn("connect", "-k", stdin=subprocess.DEVNULL).finish() == 2


@pytest.mark.no_tls
def test_listen_address_in_use_is_1(spawn):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        lis = spawn("listen", "127.0.0.1:%d" % s.getsockname()[1], stdin=subprocess.DEVNULL)
        assert lis.finish() == 1


def test_sigterm_and_sigint_end_listen_with_0(spawn):
    for sig in (signal.SIGTERM, signal.SIGINT):
        lis = spawn("listen", "127.0.0.1:0")
        lis.listening()
        assert lis.stop(sig) == 0
