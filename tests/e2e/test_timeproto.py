"""Classic time protocols (SPEC 7): `--daytime` (RFC 867) and `--rfc868`
(RFC 868), each on TCP and UDP at one address. Expected values are computed
here from the system clock or from datetime, never from sockit."""

import calendar
import datetime
import re
import signal
import socket
import struct
import time

import pytest

from conftest import Server, sanitizer_report, helper_program

# Raw sockit/1 frames from Python: plain servers (conftest.py).
pytestmark = pytest.mark.no_tls

DAYTIME_RE = re.compile(r"^([A-Z][a-z]{2}) ([A-Z][a-z]{2}) ([ \d]\d) (\d\d):(\d\d):(\d\d) (\d{4})\r\n$")
EPOCH_1900 = datetime.datetime(1900, 1, 1, tzinfo=datetime.timezone.utc)
# POSIX TZ "XXX-8" is 8 hours east of UTC, and needs no tzdata
TZ_EAST_8 = "XXX-8"


@pytest.fixture
def time_server(sockit_bin, env, tmp_path):
    """time_server(fake_time=None, **env_extra) -> (server, daytime (host, port),
    rfc868 (host, port)). A fake_time (Unix seconds) runs the test program
    tests/helpers/fixed_clock_server instead of `sockit serve`: the library
    reads no test variable, the clock is injected through its API. Servers are
    stopped at teardown and fail the test on a sanitizer report."""
    started = []

    def make(fake_time=None, **env_extra):
        argv = ["--no-auth", "--root", str(tmp_path / "root"), "-l", "127.0.0.1:0",
                "--daytime", "127.0.0.1:0", "--rfc868", "127.0.0.1:0"]
        command = None
        if fake_time is not None:  # the same options, as sk_server_set names them
            argv = ["no-auth", "root=" + str(tmp_path / "root"), "listen=127.0.0.1:0",
                    "daytime=127.0.0.1:0", "rfc868=127.0.0.1:0"]
            command = [helper_program("fixed_clock_server"), str(fake_time)]
        srv = Server(argv, env.make(**env_extra), 3, command=command)
        started.append(srv)
        day, rfc = (split(a) for a in srv.addrs[1:3])
        return srv, day, rfc

    yield make
    for srv in started:
        srv.stop()
        assert not sanitizer_report(srv.stderr_text()), srv.stderr_text()[-4000:]


def split(addr):
    host, port = addr.rsplit(":", 1)
    return host, int(port)


def tcp_read_all(addr):
    with socket.create_connection(addr, timeout=5) as s:
        data = b""
        while True:
            chunk = s.recv(100)
            if not chunk:
                return data
            data += chunk


def udp_ask(addr, payload=b"?"):  # an empty datagram gets no answer (reflection)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(payload, addr)
        data, peer = s.recvfrom(100)
        assert peer == addr
        return data


def daytime_to_unix(text, utc_offset_s):
    m = DAYTIME_RE.match(text.decode("ascii"))
    assert m, text
    tm = time.strptime(" ".join(m.group(1, 2)) + " %d %s:%s:%s %s" % (
        int(m.group(3)), m.group(4), m.group(5), m.group(6), m.group(7)), "%a %b %d %H:%M:%S %Y")
    return calendar.timegm(tm) - utc_offset_s


def rfc868_expected(unix_seconds):
    when = datetime.datetime.fromtimestamp(unix_seconds, datetime.timezone.utc)
    return int((when - EPOCH_1900).total_seconds()) % (1 << 32)


def modular_diff(a, b):
    d = (a - b) % (1 << 32)
    return min(d, (1 << 32) - d)


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_daytime_matches_the_clock_in_local_time(time_server, transport):
    _, day, _ = time_server(TZ=TZ_EAST_8)
    text = tcp_read_all(day) if transport == "tcp" else udp_ask(day, b"what time is it?")
    assert abs(daytime_to_unix(text, 8 * 3600) - time.time()) <= 2, text


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_rfc868_matches_the_clock(time_server, transport):
    _, _, rfc = time_server()
    data = tcp_read_all(rfc) if transport == "tcp" else udp_ask(rfc)
    assert len(data) == 4
    assert modular_diff(struct.unpack(">I", data)[0], rfc868_expected(int(time.time()))) <= 2


def test_rfc868_wraps_after_2036(time_server):
    # 2040-12-25 12:34:56 UTC: past 2036-02-07T06:28:16Z, where 32 bits of
    # seconds since 1900 run out
    fake = calendar.timegm((2040, 12, 25, 12, 34, 56, 0, 0, 0))
    expected = rfc868_expected(fake)
    assert expected == fake + 2208988800 - (1 << 32)  # it did wrap
    _, day, rfc = time_server(fake_time=fake, TZ="UTC")
    for data in (tcp_read_all(rfc), udp_ask(rfc)):
        assert struct.unpack(">I", data)[0] == expected
    when = datetime.datetime.fromtimestamp(fake, datetime.timezone.utc)
    want = ("%s %2d %s\r\n" % (when.strftime("%a %b"), when.day,
                               when.strftime("%H:%M:%S %Y"))).encode()
    assert tcp_read_all(day) == want == udp_ask(day)


def test_daytime_day_is_space_padded_like_asctime(time_server):
    fake = calendar.timegm((2026, 11, 6, 1, 10, 0, 0, 0, 0))
    _, day, _ = time_server(fake_time=fake, TZ="UTC")
    assert tcp_read_all(day) == b"Fri Nov  6 01:10:00 2026\r\n"


def test_the_shipped_server_reads_no_test_clock_variable(time_server):
    # SOCKIT_FAKE_TIME was a test hook read by the library (issue 14): gone,
    # the clock is injected through sk_server_set_clock only
    fake = calendar.timegm((2040, 12, 25, 12, 34, 56, 0, 0, 0))
    _, _, rfc = time_server(SOCKIT_FAKE_TIME=str(fake))
    got = struct.unpack(">I", tcp_read_all(rfc))[0]
    assert modular_diff(got, rfc868_expected(int(time.time()))) <= 2


def test_a_talkative_tcp_client_still_gets_the_answer(time_server):
    _, day, rfc = time_server()
    with socket.create_connection(rfc, timeout=5) as s:
        s.sendall(b"x" * 100000)  # unread input must not turn the close into a reset
        data = b""
        while len(data) < 4:
            chunk = s.recv(4 - len(data))
            assert chunk
            data += chunk
    assert modular_diff(struct.unpack(">I", data)[0], rfc868_expected(int(time.time()))) <= 2


def test_sigterm_exits_0_with_time_listeners(time_server):
    srv, day, rfc = time_server()
    assert tcp_read_all(day)
    idle = socket.create_connection(rfc, timeout=5)  # never reads, never closes
    try:
        assert srv.terminate(signal.SIGTERM, 8.0) == 0
    finally:
        idle.close()


def test_native_listener_works_beside_them(time_server):
    srv, _, _ = time_server()
    c = srv.connect(srv.addrs[0])
    hello, _ = c.recv_frame()
    assert hello["type"] == "hello"
    c.close()
