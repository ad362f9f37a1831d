"""End-to-end tests of the UDP service (issue 6, SPEC 5): one frame per
datagram, echo and time over IPv4 and IPv6, exec/files refused, garbage
never answered, answers bounded by their request, and the client side of
`sockit echo --udp` / `sockit time --udp`."""

import re
import socket
import struct
import time

import pytest

import sockit_proto as sp
from conftest import have_ipv6

AMP = 512


def udp_addrs(srv, n, timeout=5):
    deadline = time.monotonic() + timeout
    while True:
        found = re.findall(r"listening on (\S+) \(udp\)", srv.stderr_text())
        if len(found) >= n or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


@pytest.fixture
def udp_server(start_server, key_file):
    """An authenticated server with a TCP listener and UDP on IPv4 (and IPv6)."""
    args = ["--key-file", key_file, "--udp", "127.0.0.1:0"]
    if have_ipv6():
        args += ["--udp", "[::1]:0"]
    srv = start_server(*args)
    srv.udp = udp_addrs(srv, 2 if have_ipv6() else 1)
    return srv


def exchange(addr, data, timeout=1.0):
    """Send one datagram; the answer's bytes, or None when none came."""
    fam, sa = sp.parse_addr(addr)
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(data, sa)
        try:
            return s.recv(70000)
        except socket.timeout:
            return None


def parse(data):
    hlen = struct.unpack(">I", data[:4])[0]
    head = sp.check_head(data[4:4 + hlen])
    body = data[4 + hlen:]
    assert len(body) == head.get("size", 0), "one frame fills the whole datagram"
    return head, body


def ask(addr, head, body=b""):
    req = sp.frame(head, body)
    data = exchange(addr, req)
    assert data is not None, "no answer to %r" % (head,)
    assert len(data) <= len(req) + AMP
    return parse(data)


def test_echo_and_time_ipv4_and_ipv6(udp_server, run_cli):
    for addr in udp_server.udp:
        head, body = ask(addr, {"type": "echo", "id": "e1"}, "héllo 😀".encode())
        assert head == {"type": "echo", "size": len(body), "id": "e1"}
        assert body == "héllo 😀".encode()
        head, _ = ask(addr, {"type": "time", "ts": 0, "tz": "+08:00", "id": 2})
        assert head["text"] == "1970-01-01 08:00:00" and head["id"] == 2
        assert abs(head["now"] - time.time()) < 5
        assert ask(addr, {"type": "ping"})[0]["type"] == "pong"
        r = run_cli("echo", "--udp", addr, "hello", "over", "udp")
        assert (r.returncode, r.stdout) == (0, "hello over udp\n"), r.stderr
        r = run_cli("time", "--udp", addr, "--ts", "0", "--tz", "UTC")
        assert (r.returncode, r.stdout) == (0, "1970-01-01 00:00:00\n"), r.stderr
        r = run_cli("echo", "-u", addr, input="from stdin")
        assert (r.returncode, r.stdout) == (0, "from stdin"), r.stderr


def test_exec_and_files_are_forbidden(udp_server):
    addr = udp_server.udp[0]
    for head, body in [({"type": "exec", "argv": ["id"]}, b""),
                       ({"type": "put", "name": "x", "total": 3, "offset": 0}, b"abc"),
                       ({"type": "get", "name": "x"}, b""),
                       ({"type": "list"}, b""),
                       ({"type": "auth", "nonce": "0" * 64, "mac": "0" * 64}, b""),
                       ({"type": "no_such_type"}, b"")]:
        got, _ = ask(addr, dict(head, id=9), body)
        assert (got["type"], got["code"], got["id"]) == ("error", "forbidden", 9)


def test_malformed_datagrams_get_no_answer(udp_server):
    addr = udp_server.udp[0]
    good = sp.frame({"type": "echo"}, b"abc")
    for junk in [b"", b"garbage", b"\x00\x00\x00\x01{", b"\xff\xff\xff\xff" + b"x" * 50,
                 sp.raw_frame(b"[1,2]"), sp.raw_frame(b'{"no":"type"}'),
                 good[:-1], good + b"extra",  # size must match the rest exactly
                 good + sp.frame({"type": "ping"})]:  # exactly one frame per datagram
        assert exchange(addr, junk, timeout=0.3) is None, junk
    assert ask(addr, {"type": "echo"}, b"abc")[1] == b"abc"  # still serving


def test_answers_stay_within_512_bytes_of_the_request(udp_server):
    addr = udp_server.udp[0]
    small = {"type": "time"}
    head, _ = ask(addr, small)  # the default answer to a tiny request fits
    assert head["type"] == "time"
    head, _ = ask(addr, {"type": "time", "format": "%c" * 128})  # would be ~3 KiB
    assert (head["type"], head["code"]) == ("error", "too_large")
    head, _ = ask(addr, {"type": "time", "format": "%Y" * 40})  # grows, but within bounds
    assert head["type"] == "time"


def test_oversize_frame_refused_by_the_client(udp_server, run_cli):
    addr = udp_server.udp[0]
    r = run_cli("echo", "--udp", addr, input="x" * 65500)
    assert r.returncode == 1
    assert "65507" in r.stderr and "nothing was sent" in r.stderr
    assert r.stderr.count("\n") == 1
    r = run_cli("echo", "--udp", addr, input="y" * 65400)  # fits in one datagram
    assert r.returncode == 0 and r.stdout == "y" * 65400


def test_client_retries_and_reports_silence(run_cli):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # bound, never answers
        s.bind(("127.0.0.1", 0))
        addr = "127.0.0.1:%d" % s.getsockname()[1]
        t0 = time.monotonic()
        r = run_cli("time", "--udp", addr)
        assert r.returncode == 255 and "no answer" in r.stderr
        assert time.monotonic() - t0 >= 2.5
        seen = 0
        s.settimeout(0.1)
        try:
            while True:
                s.recv(70000)
                seen += 1
        except socket.timeout:
            pass
        assert seen == 3  # asked again on each timeout


def test_udp_on_a_unix_address_is_refused(sockit_bin, env, tmp_path):
    import subprocess
    r = subprocess.run([sockit_bin, "serve", "--no-auth", "-l", "127.0.0.1:0", "--udp",
                        "unix:%s/u.sock" % tmp_path], env=env.make(), capture_output=True,
                       text=True, timeout=10)
    assert r.returncode != 0 and "udp" in r.stderr.lower()
