"""End-to-end tests of the UDP service (issue 6, SPEC 5): one frame per
datagram, echo and time over IPv4 and IPv6, exec/files refused, garbage
never answered, answers bounded by their request, and the client side of
`sockit echo --udp` / `sockit time --udp`. The server has a key, so every
datagram here is authenticated (udp_proto); the attacks on that are in
test_udp_security.py."""

import calendar
import hashlib
import hmac
import socket
import time

import pytest

import sockit_proto as sp
import udp_proto as up
from conftest import have_ipv6, udp_addrs

AMP = 512


@pytest.fixture
def udp_server(start_server, key_file):
    """An authenticated server with a TCP listener and UDP on IPv4 (and IPv6)."""
    args = ["--key-file", key_file, "--udp", "127.0.0.1:0"]
    if have_ipv6():
        args += ["--udp", "[::1]:0"]
    srv = start_server(*args)
    srv.udp = udp_addrs(srv, 2 if have_ipv6() else 1)
    srv.kudp = up.udp_key(sp.load_secret(key_file))
    srv.key_file = key_file
    return srv


@pytest.fixture
def plain_udp_server(start_server):
    srv = start_server("--no-auth", "--udp", "127.0.0.1:0")
    srv.udp = udp_addrs(srv, 1)
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


def ask(srv, addr, head, body=b""):
    """One authenticated request and its authenticated answer."""
    req = up.seal(srv.kudp, head, body)
    data = exchange(addr, req)
    assert data is not None, "no answer to %r" % (head,)
    assert len(data) <= len(req) + AMP
    return up.unseal(srv.kudp, data)


def strip(head):
    return {k: v for k, v in head.items() if k not in ("ts", "n")}


@pytest.mark.no_tls
def test_echo_and_time_ipv4_and_ipv6(udp_server, run_cli):
    key = ["--key-file", udp_server.key_file]
    for addr in udp_server.udp:
        head, body = ask(udp_server, addr, {"type": "echo", "id": "e1"}, "héllo 😀".encode())
        assert strip(head) == {"type": "echo", "size": len(body), "id": "e1"}
        assert body == "héllo 😀".encode()
        # an authenticated datagram's "ts" is its send time: the time of now
        head, _ = ask(udp_server, addr, {"type": "time", "tz": "+00:00", "id": 2})
        assert head["id"] == 2 and abs(head["now"] - time.time()) < 5
        t = time.strptime(head["text"], "%Y-%m-%d %H:%M:%S")
        assert abs(calendar.timegm(t) - time.time()) < 5, head
        assert ask(udp_server, addr, {"type": "ping"})[0]["type"] == "pong"
        r = run_cli("echo", "--udp", addr, "hello", "over", "udp", *key)
        assert (r.returncode, r.stdout) == (0, "hello over udp\n"), r.stderr
        r = run_cli("time", "--udp", addr, "--tz", "UTC", *key)
        assert r.returncode == 0, r.stderr
        t = time.strptime(r.stdout.strip(), "%Y-%m-%d %H:%M:%S")
        assert abs(calendar.timegm(t) - time.time()) < 5, r.stdout
        r = run_cli("echo", "-u", addr, *key, input="from stdin")
        assert (r.returncode, r.stdout) == (0, "from stdin"), r.stderr


@pytest.mark.no_tls
def test_time_of_a_given_ts_needs_a_plain_server(udp_server, plain_udp_server, run_cli):
    addr = plain_udp_server.udp[0]
    req = sp.frame(up.pad({"type": "time", "ts": 0, "tz": "+08:00", "id": 2}))
    head, _ = up.parse_frame(exchange(addr, req))
    assert head["text"] == "1970-01-01 08:00:00" and head["id"] == 2
    r = run_cli("time", "--udp", addr, "--no-auth", "--ts", "0", "--tz", "UTC")
    assert (r.returncode, r.stdout) == (0, "1970-01-01 00:00:00\n"), r.stderr
    # with a key the member is taken by the send time: said, nothing sent
    r = run_cli("time", "--udp", udp_server.udp[0], "--key-file", udp_server.key_file, "--ts", "0")
    assert r.returncode == 2 and "--ts" in r.stderr and r.stdout == ""


@pytest.mark.no_tls
def test_exec_and_files_are_forbidden(udp_server):
    addr = udp_server.udp[0]
    for head, body in [({"type": "exec", "argv": ["id"]}, b""),
                       ({"type": "put", "name": "x", "total": 3, "offset": 0}, b"abc"),
                       ({"type": "get", "name": "x"}, b""),
                       ({"type": "list"}, b""),
                       ({"type": "auth", "nonce": "0" * 64, "mac": "0" * 64}, b""),
                       ({"type": "no_such_type"}, b"")]:
        got, _ = ask(udp_server, addr, dict(head, id=9), body)
        assert (got["type"], got["code"], got["id"]) == ("error", "forbidden", 9)


@pytest.mark.no_tls
def test_malformed_datagrams_get_no_answer(udp_server):
    addr = udp_server.udp[0]

    def sealed(data):
        return data + hmac.new(udp_server.kudp, data, hashlib.sha256).digest()

    good = sp.frame(up.stamp({"type": "echo"}), b"abc")
    for junk in [b"", b"garbage", b"\x00\x00\x00\x01{", b"\xff\xff\xff\xff" + b"x" * 50,
                 sp.raw_frame(b"[1,2]"), sp.raw_frame(b'{"no":"type"}'),
                 good[:-1], good + b"extra",  # size must match the rest exactly
                 good + sp.frame({"type": "ping"})]:  # exactly one frame per datagram
        # neither as it is nor with a valid trailer: the frame itself is bad
        assert exchange(addr, junk, timeout=0.3) is None, junk
        assert exchange(addr, sealed(junk), timeout=0.3) is None, junk
    assert ask(udp_server, addr, {"type": "echo"}, b"abc")[1] == b"abc"  # still serving


@pytest.mark.no_tls
def test_answers_stay_within_512_bytes_of_the_request(udp_server):
    addr = udp_server.udp[0]
    small = {"type": "time"}
    head, _ = ask(udp_server, addr, small)  # the default answer to a tiny request fits
    assert head["type"] == "time"
    head, _ = ask(udp_server, addr, {"type": "time", "format": "%c" * 128})  # would be ~3 KiB
    assert (head["type"], head["code"]) == ("error", "too_large")
    head, _ = ask(udp_server, addr, {"type": "time", "format": "%Y" * 40})  # within bounds
    assert head["type"] == "time"


def test_oversize_frame_refused_by_the_client(udp_server, run_cli):
    addr = udp_server.udp[0]
    key = ["--key-file", udp_server.key_file]
    r = run_cli("echo", "--udp", addr, *key, input="x" * 65450)  # the trailer would not fit
    assert r.returncode == 1
    assert "65507" in r.stderr and "nothing was sent" in r.stderr and "trailer" in r.stderr
    assert r.stderr.count("\n") == 1
    r = run_cli("echo", "--udp", addr, *key, input="y" * 65300)  # fits in one datagram
    assert r.returncode == 0 and r.stdout == "y" * 65300


@pytest.mark.no_tls
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


def test_an_unusable_key_file_is_named_before_anything_is_sent(run_cli, tmp_path):
    from conftest import write_key
    loose = str(tmp_path / "loose")
    write_key(loose, mode=0o644)
    for key, want in [(loose, "chmod 600"), (str(tmp_path / "none"), "no key file at")]:
        for cmd in (["echo", "--udp", "127.0.0.1:9", "hi"], ["time", "--udp", "127.0.0.1:9"],
                    ["chat", "--udp", "127.0.0.1:9"]):
            r = run_cli(*cmd, "--key-file", key)
            assert r.returncode == 255 and want in r.stderr and r.stderr.count("\n") == 1, r
