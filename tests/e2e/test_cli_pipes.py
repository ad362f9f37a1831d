"""`sockit connect` / `sockit listen` end as SPEC 3.1 says (issue 16 item 3):
exit 0 once the peer closed and everything received is written out, even
with stdin still open (a pipe or a terminal); --keep-sending for the old
behaviour; `listen -u` ends with stdin unless -k; a reset is exit 1; nc's
`connect HOST PORT`; -w and resolver errors as for every client command."""

import os
import pty
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import LISTEN_RE, Output, wait_for
from test_cli import FullBacklog


def tcp_server(payload, close="close", read_all=False, reset_when=None):
    """One-shot TCP server on loopback: sends payload, then closes (or
    shuts down its write side, or resets once the event reset_when is set).
    Returns (addr, thread, got)."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    got = bytearray()

    def run():
        s, _ = ls.accept()
        ls.close()
        s.sendall(payload)
        if close == "reset":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            reset_when.wait(10)
            s.close()
            return
        if close == "half":
            s.shutdown(socket.SHUT_WR)
        if close == "half" or read_all:
            s.settimeout(10)
            while True:
                d = s.recv(65536)
                if not d:
                    break
                got.extend(d)
        s.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return "127.0.0.1:%d" % ls.getsockname()[1], t, got


def run_with_open_stdin(args, stdin_fd, timeout=10):
    p = subprocess.Popen(args, stdin=stdin_fd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError("still running with stdin open: %r %r" % (out[-200:], err))
    return p.returncode, out, err


def connect_with_open_pipe(sockit_bin, addr):
    """`sockit connect addr` with stdin a pipe whose write end stays open
    (stdin never ends) until the command has exited."""
    r, w = os.pipe()
    try:
        return run_with_open_stdin([sockit_bin, "connect", addr], r)
    finally:
        os.close(r)
        os.close(w)


def test_connect_ends_when_the_peer_closes_stdin_a_pipe(sockit_bin):
    payload = os.urandom(300000)
    addr, t, _ = tcp_server(payload)
    code, out, err = connect_with_open_pipe(sockit_bin, addr)
    assert (code, err) == (0, b""), err
    assert out == payload


def test_connect_ends_when_the_peer_closes_stdin_a_terminal(sockit_bin):
    addr, t, _ = tcp_server(b"over and out\n")
    master, slave = pty.openpty()
    try:
        code, out, err = run_with_open_stdin([sockit_bin, "connect", addr], slave)
    finally:
        os.close(slave)
        os.close(master)
    assert (code, out, err) == (0, b"over and out\n", b"")


def test_listen_ends_when_the_client_closes_stdin_open(sockit_bin):
    r, w = os.pipe()
    p = subprocess.Popen([sockit_bin, "listen", "127.0.0.1:0"], stdin=r, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        line = p.stderr.readline().decode()
        m = LISTEN_RE.match(line.rstrip("\n"))
        assert m, line
        host, port = m.group(1).rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as c:
            c.sendall(b"hello listener")
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
        os.close(r)
        os.close(w)
    assert (p.returncode, out) == (0, b"hello listener")


def test_keep_sending_goes_on_until_stdin_ends(sockit_bin):
    addr, t, got = tcp_server(b"first", close="half")
    p = subprocess.Popen([sockit_bin, "connect", "--keep-sending", addr], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout.read() == b"first"  # our stdout closes at the peer's EOF
        p.stdin.write(b"and ")
        p.stdin.flush()
        assert wait_for(lambda: bytes(got) == b"and ", 5), bytes(got)  # but we still send
        assert p.poll() is None
        p.stdin.write(b"the rest")
        p.stdin.close()
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
    t.join(5)
    assert bytes(got) == b"and the rest"


def test_without_keep_sending_the_unsent_stdin_is_dropped(sockit_bin):
    addr, t, got = tcp_server(b"bye", close="half")
    code, out, err = connect_with_open_pipe(sockit_bin, addr)
    assert (code, out) == (0, b"bye")


def test_reset_by_the_peer_is_1_with_a_line(sockit_bin):
    printed = threading.Event()
    addr, t, _ = tcp_server(b"x", close="reset", reset_when=printed)
    r, w = os.pipe()
    p = subprocess.Popen([sockit_bin, "connect", addr], stdin=r, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        out = Output(p.stdout)
        out.wait(b"x", 10)  # the client is connected and has read: now the reset
        printed.set()
        code, err = p.wait(10), p.stderr.read()
    finally:
        printed.set()
        if p.poll() is None:
            p.kill()
        os.close(r)
        os.close(w)
    assert code == 1
    assert err.decode() == "sockit connect: the peer at %s reset the connection\n" % addr


def udp_listener(sockit_bin, *flags, stdin=subprocess.PIPE):
    p = subprocess.Popen([sockit_bin, "listen", "-u", *flags, "127.0.0.1:0"], stdin=stdin,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = p.stderr.readline().decode().rstrip("\n")
    m = LISTEN_RE.match(line)
    assert m, line
    host, port = m.group(1).rsplit(":", 1)
    return p, (host, int(port))


def test_listen_udp_ends_when_stdin_ends(sockit_bin):
    p, addr = udp_listener(sockit_bin)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(b"ping", addr)
            p.stdin.write(b"pong")
            p.stdin.flush()
            assert s.recvfrom(100)[0] == b"pong"
        p.stdin.close()
        assert p.wait(5) == 0
        assert p.stdout.read() == b"ping"
    finally:
        if p.poll() is None:
            p.kill()


def test_listen_udp_with_no_stdin_ends_at_once(sockit_bin):
    p, _ = udp_listener(sockit_bin, stdin=subprocess.DEVNULL)
    try:
        assert p.wait(5) == 0
    finally:
        if p.poll() is None:
            p.kill()


def test_listen_udp_keep_goes_on_after_stdin(sockit_bin):
    p, addr = udp_listener(sockit_bin, "-k", stdin=subprocess.DEVNULL)
    out = Output(p.stdout)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(3):
                s.sendto(b"d%d;" % i, addr)
        assert out.wait(b"d2;", 5), out.data()  # all three came, long after stdin ended
        assert p.poll() is None
        p.terminate()
        assert p.wait(5) == 0
        assert out.all() == b"d0;d1;d2;"
    finally:
        if p.poll() is None:
            p.kill()


def test_connect_host_port_as_nc_writes_it(sockit_bin):
    addr, t, _ = tcp_server(b"nc habit")
    host, port = addr.rsplit(":", 1)
    r = subprocess.run([sockit_bin, "connect", host, port], input=b"", capture_output=True,
                       timeout=10)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"nc habit", b"")
    r = subprocess.run([sockit_bin, "connect", addr, "extra"], capture_output=True, timeout=10)
    assert r.returncode == 2 and b"did you mean HOST:PORT?" in r.stderr


def test_connect_timeout_and_resolver_errors(sockit_bin):
    bh = FullBacklog()
    try:
        t0 = time.monotonic()
        r = subprocess.run([sockit_bin, "connect", "-w", "0.5", bh.addr], input=b"",
                           capture_output=True, timeout=10)
        assert time.monotonic() - t0 < 5
    finally:
        bh.close()
    assert r.returncode == 255
    assert r.stderr.decode() == "sockit connect: no answer from %s within 0.5 s while connecting\n" % (
        bh.addr)
    r = subprocess.run([sockit_bin, "connect", "nosuchhost.invalid:80"], input=b"",
                       capture_output=True, timeout=30)
    assert r.returncode == 255
    assert r.stderr.decode().startswith("sockit connect: cannot resolve nosuchhost.invalid: ")


def test_verbose_pipes_say_their_steps_as_nc_v(sockit_bin):
    """nc -v's habit: connect -v says where it connects; listen -v who came."""
    p = subprocess.Popen([sockit_bin, "listen", "-v", "127.0.0.1:0"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err = Output(p.stderr)

    def bound():
        for ln in err.data().decode().splitlines():
            m = LISTEN_RE.match(ln)
            if m:
                return m.group(1)

    try:
        addr = wait_for(bound)
        assert addr, err.data()
        r = subprocess.run([sockit_bin, "connect", "-v", addr], input=b"hi\n",
                           capture_output=True, timeout=10)
        assert r.returncode == 0, r
        assert r.stderr.decode().splitlines() == [
            "sockit connect: resolving %s" % addr, "sockit connect: connecting to %s" % addr,
            "sockit connect: connected to %s" % addr]
        assert p.wait(timeout=10) == 0
        assert p.stdout.read() == b"hi\n"
        lines = err.text().splitlines()
        assert lines[0] == "sockit listen: resolving 127.0.0.1:0", lines
        assert lines[2].startswith("sockit listen: connection from 127.0.0.1:"), lines
    finally:
        if p.poll() is None:
            p.kill()


def test_listen_timeout_is_explained_not_unknown(sockit_bin):
    """listen knows --timeout only to say what it is for (it used to answer
    'unknown option -?', naming neither the option nor the alternative)."""
    r = subprocess.run([sockit_bin, "listen", "--timeout", "3", "127.0.0.1:0"],
                       capture_output=True, timeout=10)
    assert r.returncode == 2
    assert r.stderr.decode().startswith("sockit listen: --timeout is how long connect tries"), r
    assert b"--idle-timeout S" in r.stderr and r.stderr.count(b"\n") == 1
