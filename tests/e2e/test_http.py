"""The HTTP front (sockit serve --http ADDR): /metrics in the Prometheus text
format, parsed with prometheus_client's own parser; the loopback-or-token
rule; HTTP errors and limits; the WebSocket at /ws carrying sockit/1."""

import os
import re
import socket
import struct
import time

import pytest

import sockit_proto as sp
import ws_proto
from conftest import unread_bytes, wait_for

prom_parser = pytest.importorskip("prometheus_client.parser")




def get(addr, path, headers=b"", timeout=5.0):
    """One GET on its own connection -> (status, headers text, body)."""
    raw = ws_proto.http_request(
        addr, b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" +
        headers + b"\r\n", timeout)
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, head.decode("latin-1"), body


def scrape(addr, headers=b""):
    """-> {(name, frozenset(labels.items())): value} of every sample."""
    status, head, body = get(addr, "/metrics", headers)
    assert status == 200, (status, head, body)
    assert "text/plain; version=0.0.4" in head
    out = {}
    for fam in prom_parser.text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def val(m, name, **labels):
    return m.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def hsrv(start_server, key_file, tmp_path):
    root = tmp_path / "root"
    srv = start_server("--key-file", key_file, "--root", str(root), "--http", "127.0.0.1:0",
                       "--threads", "2")
    srv.root = root
    srv.http = ws_proto.http_addr(srv, wait_for)
    return srv


def authed(srv, secret):
    c = srv.connect()
    c.handshake(secret)
    return c


# ---- /metrics -----------------------------------------------------------------


def test_metrics_has_the_spec_families_with_help_and_type(hsrv):
    status, head, body = get(hsrv.http, "/metrics")
    assert status == 200
    text = body.decode()
    for name, kind in [("sockit_requests_total", "counter"),
                       ("sockit_auth_failures_total", "counter"),
                       ("sockit_connections_open", "gauge"),
                       ("sockit_bytes_total", "counter"),
                       ("sockit_request_duration_seconds", "histogram"),
                       ("sockit_chat_rooms", "gauge"), ("sockit_chat_members", "gauge"),
                       ("sockit_files_total", "counter"), ("sockit_exec_runs_total", "counter"),
                       ("sockit_rate_limited_total", "counter")]:
        assert "# TYPE %s %s\n" % (name, kind) in text
        assert "# HELP %s " % name in text
    fams = {f.name: f for f in prom_parser.text_string_to_metric_families(text)}
    assert fams["sockit_request_duration_seconds"].type == "histogram"
    assert fams["sockit_requests"].type == "counter"
    listeners = {s.labels["listener"] for s in fams["sockit_connections_open"].samples}
    assert hsrv.addr in listeners and hsrv.http in listeners


@pytest.mark.no_tls
def test_metrics_count_known_traffic_exactly(hsrv, secret):
    n, k = 7, 12345
    before = scrape(hsrv.http)
    c = authed(hsrv, secret)
    for i in range(n):
        assert c.echo(b"x" * (i + 1)) == b"x" * (i + 1)
    # one wrong mac
    bad = hsrv.connect()
    bad.hello()
    bad.send({"type": "auth", "nonce": "ab" * 32, "mac": "00" * 32})
    bad.expect_error("auth_failed")
    bad.close()
    # one upload of k bytes
    data = os.urandom(k)
    c.send({"type": "put", "name": "m.bin", "total": k, "offset": 0, "hash": "sha256"}, data)
    c.send({"type": "put_end"})
    ok, _ = c.recv_frame()
    assert ok["type"] == "put_ok" and ok["total"] == k
    # one chat message to a room with one member
    c.request({"type": "join", "room": "metrics", "nick": "ann"})
    c.send({"type": "say", "room": "metrics"}, b"hello")
    msg, body = c.recv_frame()
    assert msg["type"] == "msg" and body == b"hello"
    after = scrape(hsrv.http)

    def d(name, **labels):
        return val(after, name, **labels) - val(before, name, **labels)

    assert d("sockit_requests_total", type="echo", code="ok") == n
    assert d("sockit_request_duration_seconds_count", type="echo") == n
    assert d("sockit_request_duration_seconds_bucket", type="echo", le="+Inf") == n
    assert d("sockit_auth_failures_total") == 1
    assert d("sockit_requests_total", type="auth", code="auth_failed") == 1
    assert d("sockit_requests_total", type="auth", code="ok") == 1
    assert d("sockit_requests_total", type="put", code="ok") == 1
    assert d("sockit_requests_total", type="put_end", code="ok") == 1
    assert d("sockit_files_total", direction="put") == 1
    assert d("sockit_file_bytes_total", direction="put") == k
    assert d("sockit_requests_total", type="join", code="ok") == 1
    assert d("sockit_requests_total", type="say", code="ok") == 1
    assert d("sockit_chat_messages_said_total") == 1
    assert d("sockit_chat_messages_delivered_total") == 1
    assert val(after, "sockit_chat_rooms") == 1
    assert val(after, "sockit_chat_members") == 1
    assert val(after, "sockit_connections_open", listener=hsrv.addr) == 1
    assert d("sockit_connections_total", listener=hsrv.addr) == 2
    assert d("sockit_bytes_total", direction="in") >= k + sum(range(1, n + 1))
    assert d("sockit_bytes_total", direction="out") >= sum(range(1, n + 1))
    assert_only_grew(before, after)
    c.close()
    assert wait_for(lambda: val(scrape(hsrv.http), "sockit_chat_members") == 0)
    last = scrape(hsrv.http)
    assert val(last, "sockit_chat_rooms") == 0
    assert val(last, "sockit_connections_open", listener=hsrv.addr) == 0


GROWING = ("_total", "_bucket", "_count", "_sum")  # counters and histogram parts


def assert_only_grew(before, after):
    """Every counter sample of before is in after, no smaller; histogram
    buckets are cumulative (each le no smaller than the one below it)."""
    for (name, labels), v in before.items():
        if name.endswith(GROWING):
            assert (name, labels) in after and after[(name, labels)] >= v, (name, labels)
    buckets = {}
    for (name, labels), v in after.items():
        if name == "sockit_request_duration_seconds_bucket":
            d = dict(labels)
            buckets.setdefault(d["type"], []).append((float(d["le"]), v))
    assert buckets
    for t, bs in buckets.items():
        counts = [v for _, v in sorted(bs)]
        assert counts == sorted(counts) and len(counts) == 8, (t, bs)
        assert counts[-1] == val(after, "sockit_request_duration_seconds_count", type=t)


@pytest.mark.no_tls
def test_metrics_count_gets_exec_classes_and_http_exactly(start_server, key_file, secret,
                                                           tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    k = 54321
    data = os.urandom(k)
    (root / "g.bin").write_bytes(data)
    srv = start_server("--key-file", key_file, "--root", str(root), "--allow-exec",
                       "--http", "127.0.0.1:0")
    http = ws_proto.http_addr(srv, wait_for)
    before = scrape(http)
    c = authed(srv, secret)
    head, body = c.request({"type": "get", "name": "g.bin", "offset": 0, "hash": "sha256"})
    assert head["type"] == "file" and body == data
    c.expect("file_end")
    exits = []
    for req in ({"argv": ["true"]}, {"shell": "exit 3"}, {"shell": "kill -9 $$"},
                {"argv": ["sleep", "30"], "timeout": 1}):
        c.send(dict({"type": "exec"}, **req))
        while True:
            h, _ = c.recv_frame(10)
            if h["type"] == "exit":
                exits.append(h)
                break
    assert [e.get("code", e.get("signal")) for e in exits] == [0, 3, 9, 15], exits
    for _ in range(3):
        assert get(http, "/nope")[0] == 404
    ws = ws_proto.WSSocket(http)
    w = sp.Client(ws)
    w.handshake(secret)
    assert w.echo(b"over ws") == b"over ws"
    after = scrape(http)

    def d(name, **labels):
        return val(after, name, **labels) - val(before, name, **labels)

    assert d("sockit_files_total", direction="get") == 1
    assert d("sockit_file_bytes_total", direction="get") == k
    assert d("sockit_files_total", direction="put") == 0
    assert d("sockit_requests_total", type="get", code="ok") == 1
    for cls in ("ok", "error", "signal", "timeout"):
        assert d("sockit_exec_runs_total", **{"class": cls}) == 1, cls
    assert d("sockit_requests_total", type="exec", code="ok") == 4
    # the first scrape's answer, three 404s and the upgrade (this scrape counts later)
    assert d("sockit_http_requests_total") == 5
    assert d("sockit_websocket_connections_total") == 1
    assert d("sockit_requests_total", type="echo", code="ok") == 1
    assert d("sockit_tls_handshakes_total") == 0
    assert_only_grew(before, after)
    w.close()
    c.close()


@pytest.mark.no_tls
def test_metrics_error_codes_are_labelled(hsrv, secret):
    c = authed(hsrv, secret)
    before = scrape(hsrv.http)
    c.send({"type": "nosuchtype"})
    c.expect_error("unknown_type")
    c.send({"type": "get", "name": "missing.bin"})
    c.expect_error("not_found")
    after = scrape(hsrv.http)
    assert val(after, "sockit_requests_total", type="other", code="unknown_type") - \
        val(before, "sockit_requests_total", type="other", code="unknown_type") == 1
    assert val(after, "sockit_requests_total", type="get", code="not_found") - \
        val(before, "sockit_requests_total", type="get", code="not_found") == 1


def non_loopback_ip():
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("192.0.2.1", 9))  # no packet is sent: only picks the source address
        ip = s.getsockname()[0]
        s.close()
    except OSError:
        return None
    return None if ip.startswith("127.") else ip


@pytest.mark.no_tls
def test_metrics_need_the_token_off_loopback(start_server, key_file, tmp_path):
    ip = non_loopback_ip()
    if ip is None:
        pytest.skip("no non-loopback IPv4 address here")
    token = tmp_path / "token"
    token.write_text("s3cret-token-0123456789\n")
    os.chmod(token, 0o600)
    log = tmp_path / "conn.log"
    srv = start_server("--key-file", key_file, "--http", "0.0.0.0:0",
                       "--http-metrics-token-file", str(token), "--log", str(log))
    port = ws_proto.http_addr(srv, wait_for).rsplit(":", 1)[1]
    outside = "%s:%s" % (ip, port)
    status, head, _ = get(outside, "/metrics")
    assert status == 401 and "WWW-Authenticate: Bearer" in head
    # the server saw the machine's own non-loopback address as the peer
    assert wait_for(lambda: any(l.split(" ")[1].startswith(ip + ":") and "status=401" in l
                                for l in log.read_text().splitlines()))
    assert get(outside, "/metrics", b"Authorization: Bearer wrong-token-0123456789\r\n")[0] == 401
    assert get(outside, "/metrics", b"Authorization: Bearer s3cret-token-0123456789\r\n")[0] == 200
    assert get("127.0.0.1:%s" % port, "/metrics")[0] == 200


@pytest.mark.no_tls
def test_metrics_token_of_the_longest_length_is_accepted(start_server, key_file, tmp_path):
    ip = non_loopback_ip()
    if ip is None:
        pytest.skip("no non-loopback IPv4 address here")
    secret_token = ("t0k3n-" * 50)[:255]  # the longest the token file may hold
    token = tmp_path / "token"
    token.write_text(secret_token + "\n")
    os.chmod(token, 0o600)
    srv = start_server("--key-file", key_file, "--http", "0.0.0.0:0",
                       "--http-metrics-token-file", str(token))
    outside = "%s:%s" % (ip, ws_proto.http_addr(srv, wait_for).rsplit(":", 1)[1])
    auth = b"Authorization: Bearer " + secret_token.encode() + b"\r\n"
    assert get(outside, "/metrics", auth)[0] == 200
    assert get(outside, "/metrics", auth.replace(b"t0k", b"x0k"))[0] == 401


@pytest.mark.no_tls
def test_metrics_off_loopback_without_a_token_file_is_refused(start_server, key_file):
    ip = non_loopback_ip()
    if ip is None:
        pytest.skip("no non-loopback IPv4 address here")
    srv = start_server("--key-file", key_file, "--http", "0.0.0.0:0")
    port = ws_proto.http_addr(srv, wait_for).rsplit(":", 1)[1]
    assert get("%s:%s" % (ip, port), "/metrics", b"Authorization: Bearer x\r\n")[0] == 401


def test_token_file_readable_by_others_is_refused(run_cli, key_file, tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret-token-0123456789\n")
    os.chmod(token, 0o644)
    r = run_cli("serve", "-l", "127.0.0.1:0", "--key-file", key_file, "--http", "127.0.0.1:0",
                "--http-metrics-token-file", str(token))
    assert r.returncode != 0 and "chmod 600" in r.stderr


# ---- HTTP errors and limits -------------------------------------------------------


def status_of(raw):
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else None


@pytest.mark.no_tls
def test_http_errors_are_clean(hsrv, secret):
    a = hsrv.http
    assert status_of(ws_proto.http_request(a, b"BLAH\r\n\r\n")) == 400
    assert status_of(ws_proto.http_request(a, b"GET / HTTP/1.1\r\nHost\r\n\r\n")) == 400
    assert status_of(ws_proto.http_request(a, b"GET /nope HTTP/1.1\r\nHost: x\r\n"
                                              b"Connection: close\r\n\r\n")) == 404
    r = ws_proto.http_request(a, b"POST /metrics HTTP/1.1\r\nHost: x\r\n"
                                 b"Content-Length: 5\r\n\r\nhello")
    assert status_of(r) == 405 and b"Allow: GET, HEAD" in r
    assert status_of(ws_proto.http_request(a, b"GET / HTTP/1.1\r\nHost: x\r\n"
                                              b"Content-Length: 100000000\r\n\r\n")) == 413
    assert status_of(ws_proto.http_request(a, b"GET / HTTP/1.1\r\nHost: x\r\n"
                                              b"Transfer-Encoding: chunked\r\n\r\n"
                                              b"ffffff\r\n")) == 413
    huge = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
    assert status_of(ws_proto.http_request(a, huge)) == 431
    many = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(100)) + b"\r\n"
    assert status_of(ws_proto.http_request(a, many)) == 431
    assert status_of(ws_proto.http_request(a, b"GET /" + b"a" * 5000 +
                                              b" HTTP/1.1\r\n\r\n")) == 414
    assert status_of(ws_proto.http_request(a, b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")) == 426
    # nothing else was disturbed
    c = authed(hsrv, secret)
    assert c.echo(b"still here") == b"still here"
    assert get(a, "/metrics")[0] == 200


def test_keep_alive_and_pipelining(hsrv):
    raw = ws_proto.http_request(
        hsrv.http, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
        b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert raw.count(b"HTTP/1.1 ") == 3
    assert raw.startswith(b"HTTP/1.1 404 ")
    assert b"HTTP/1.1 200 OK" in raw
    assert raw.rstrip().endswith(b"Connection: close")  # HEAD: no body after it


def test_http10_closes_after_the_answer(hsrv):
    raw = ws_proto.http_request(hsrv.http, b"GET /metrics HTTP/1.0\r\n\r\n", timeout=3)
    assert status_of(raw) == 200 and b"Connection: close" in raw


@pytest.mark.no_tls
def test_slow_headers_hit_the_deadline(hsrv, secret):
    s = socket.create_connection(("127.0.0.1", int(hsrv.http.rsplit(":", 1)[1])), timeout=15)
    t0 = time.monotonic()
    s.sendall(b"GET / HTTP/1.1\r\n")
    got = b""
    for i in range(20):  # one header line a second: each keeps the socket busy
        try:
            s.sendall(b"X-Slow-%d: 1\r\n" % i)
        except OSError:
            break
        s.settimeout(1.0)
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            continue
        got += chunk
        if not chunk or b"\r\n\r\n" in got:
            break
    took = time.monotonic() - t0
    s.close()
    assert status_of(got) == 408, got
    assert 4.0 <= took < 9.0
    c = authed(hsrv, secret)
    assert c.echo(b"ok") == b"ok"


@pytest.mark.no_tls
def test_idle_http_connection_holds_no_read_buffer_and_closes_on_stop(hsrv):
    s = socket.create_connection(("127.0.0.1", int(hsrv.http.rsplit(":", 1)[1])), timeout=5)
    s.sendall(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
    assert s.recv(4096).startswith(b"HTTP/1.1 404")
    assert hsrv.terminate() == 0
    s.close()


# ---- /ws ----------------------------------------------------------------------


def ws_client(srv, secret=None):
    ws = ws_proto.WSSocket(srv.http)
    c = sp.Client(ws)
    if secret is not None:
        c.handshake(secret)
    return ws, c


@pytest.mark.no_tls
def test_ws_carries_the_native_protocol(hsrv, secret):
    ws, c = ws_client(hsrv, secret)
    before = scrape(hsrv.http)
    for n in (0, 1, 1000, 70000):
        body = os.urandom(n)
        head, got = c.request({"type": "echo"}, body)
        assert got == body and head["size"] == n
    # pipelined: every response frame is one whole message
    for i in range(16):
        c.send({"type": "echo", "id": i}, b"p%d" % i)
    for i in range(16):
        head, body = c.recv_frame()
        assert head["id"] == i and body == b"p%d" % i
    sizes = ws.messages[-16:]
    assert all(s == 4 + len(sp.encode_head({"type": "echo", "size": 2 + (i >= 10), "id": i}))
               + 2 + (i >= 10) for i, s in enumerate(sizes)), sizes
    after = scrape(hsrv.http)
    assert val(after, "sockit_requests_total", type="echo", code="ok") - \
        val(before, "sockit_requests_total", type="echo", code="ok") == 20
    c.close()


@pytest.mark.no_tls
def test_ws_one_frame_per_message_and_file_bodies_over_the_limit_in_pieces(hsrv, secret):
    ws, c = ws_client(hsrv, secret)
    body = os.urandom(3 << 20)
    # sent as several binary messages: their bytes form one stream
    frame = sp.frame({"type": "echo"}, body)
    for i in range(0, len(frame), 1 << 20):
        ws.sendall(frame[i:i + (1 << 20)])
    head, got = c.recv_frame(timeout=30)
    assert got == body
    # the answer, 3 MiB and more, is one message
    assert ws.messages[-1] == len(sp.frame({"type": "echo", "size": len(body)}, body))
    # a frame over 16 MiB + 64 KiB (only a file's body can be that long): the
    # head is a message of its own, then each piece of the body
    data = os.urandom((17 << 20) + 5)
    hsrv.root.mkdir(exist_ok=True)
    (hsrv.root / "big.bin").write_bytes(data)
    seen = len(ws.messages)
    c.send({"type": "get", "name": "big.bin", "offset": 0})
    head, got = c.recv_frame(timeout=30)
    assert head["type"] == "file" and got == data
    end, _ = c.expect("file_end")
    pieces = ws.messages[seen:-1]
    assert pieces[0] == 4 + len(sp.encode_head(head)) and sum(pieces[1:]) == len(data)
    assert len(pieces) > 2 and max(pieces[1:]) <= (16 << 20) + 65540
    assert ws.messages[-1] == 4 + len(sp.encode_head(end))
    c.close()


@pytest.mark.no_tls
def test_ws_auth_required_and_wrong_key(hsrv, secret):
    ws, c = ws_client(hsrv)
    c.hello()
    c.send({"type": "auth", "nonce": "cd" * 32, "mac": "11" * 32})
    c.expect_error("auth_failed")
    assert c.is_closed()
    assert ws.close_code == 1008


BAD_FRAMES = {
    "text": (lambda: ws_proto.encode_frame(1, b"{}"), 1003),  # text where binary is expected
    "unmasked": (lambda: ws_proto.encode_frame(2, b"abcd", mask=False), 1002),
    "too_big": (lambda: ws_proto.encode_frame(2, b"abcd", length=1 << 40)[:20], 1009),
    "rsv": (lambda: ws_proto.encode_frame(2, b"ab", rsv=4), 1002),  # reserved bits
    "orphan": (lambda: ws_proto.encode_frame(0, b"ab"), 1002),  # continuation of nothing
}


@pytest.mark.parametrize("kind", sorted(BAD_FRAMES))
@pytest.mark.no_tls
def test_ws_bad_frames_close_cleanly(hsrv, secret, kind):
    make, code = BAD_FRAMES[kind]
    raw = make()
    ws, c = ws_client(hsrv, secret)
    other_ws, other = ws_client(hsrv, secret)
    ws.send_frame(raw)
    with pytest.raises(sp.Closed):
        c.recv_frame(timeout=5)
    assert ws.close_code == code
    assert other.echo(b"undisturbed") == b"undisturbed"
    tcp = authed(hsrv, secret)
    assert tcp.echo(b"ok") == b"ok"


@pytest.mark.no_tls
def test_ws_ping_close_handshake(hsrv, secret):
    ws, c = ws_client(hsrv, secret)
    ws.send_frame(ws_proto.encode_frame(9, b"hi"))
    op, payload = ws.recv_message()
    assert (op, payload) == (10, b"hi")
    ws.send_frame(ws_proto.encode_frame(8, struct.pack("!H", 1000)))
    op, payload = ws.recv_message()
    assert op == 8 and payload[:2] == struct.pack("!H", 1000)


@pytest.mark.no_tls
def test_ws_has_the_native_rules_and_log_lines(start_server, key_file, secret, tmp_path):
    """The same log line for the same request over TCP and over /ws, and a
    native framing error over /ws ends the way it does on TCP: bad_frame,
    then (the WebSocket's part) close code 1008."""
    log = tmp_path / "conn.log"
    srv = start_server("--key-file", key_file, "--root", str(tmp_path), "--allow-exec",
                       "--log", str(log), "--http", "127.0.0.1:0")
    srv.http = ws_proto.http_addr(srv, wait_for)
    tcp = authed(srv, secret)
    ws, w = ws_client(srv, secret)
    for cl, arg in ((tcp, "over-tcp"), (w, "over-ws")):
        cl.send({"type": "exec", "argv": ["true", arg]})
        while cl.recv_frame()[0]["type"] != "exit":
            pass

    def exec_lines():
        return [l for l in log.read_text().splitlines() if " exec argv=" in l]
    assert wait_for(lambda: len(exec_lines()) == 2)

    def fields(line):  # after the time and the peer, with the values that differ as _
        return re.sub(r'argv="[^"]*"|duration=[0-9.]+', "_", line.split(" ", 2)[2])
    lines = sorted(exec_lines(), key=lambda l: "over-ws" in l)
    assert "over-tcp" in lines[0] and "over-ws" in lines[1]
    assert fields(lines[0]) == fields(lines[1]) == "exec _ code=0 signal=0 result=ok _ bytes_out=0"
    # a head_len over 65536: the native framing error, then the close
    w.sock.sendall(ws_proto.encode_frame(2, struct.pack("!I", 70000) + b"{" * 16))
    head, _ = w.recv_frame(5)
    assert head["type"] == "error" and head["code"] == "bad_frame"
    assert w.is_closed() and ws.close_code == 1008
    assert tcp.echo(b"undisturbed") == b"undisturbed"
    tcp.close()


@pytest.mark.no_tls
def test_ws_member_that_never_reads_is_dropped_as_slow_consumer(hsrv, secret):
    """The chat's 8 MiB rule holds for a member on /ws exactly as on TCP."""
    ws = ws_proto.WSSocket(hsrv.http, rcvbuf=4096)
    slow = sp.Client(ws)
    slow.handshake(secret)
    slow.request({"type": "join", "room": "s", "nick": "slow"})
    a = authed(hsrv, secret)
    a.request({"type": "join", "room": "s", "nick": "alice"})
    big = os.urandom(32 * 1024).hex().encode()  # 64 KiB of text
    left = None
    for _ in range(15):  # ~19 MiB: well past 8 MiB for the member that never reads
        for _ in range(20):
            a.send({"type": "say", "room": "s"}, big)
        got = 0
        while got < 20:  # alice reads her own messages: only `slow` falls behind
            head, _ = a.recv_frame(20)
            got += head["type"] == "msg"
            if head["type"] == "presence" and head["event"] == "leave":
                left = head["nick"]
    assert left == "slow"
    frames = slow.frames_until_close(30)
    assert frames[-1][0]["type"] == "error" and frames[-1][0]["code"] == "slow_consumer"
    assert ws.close_code == 1008
    a.close()


@pytest.mark.no_tls
def test_ws_chat_reaches_tcp_members(hsrv, secret):
    ws, w = ws_client(hsrv, secret)
    t = authed(hsrv, secret)
    t.request({"type": "join", "room": "mix", "nick": "tcp"})
    w.request({"type": "join", "room": "mix", "nick": "web"})
    assert t.recv_frame()[0]["event"] == "join"
    w.send({"type": "say", "room": "mix"}, b"from the web")
    for cl in (t, w):
        head, body = cl.recv_frame()
        assert head["type"] == "msg" and head["from"] == "web" and body == b"from the web"
    t.send({"type": "say", "room": "mix"}, b"from tcp")
    for cl in (t, w):
        head, body = cl.recv_frame()
        assert head["from"] == "tcp" and body == b"from tcp"


@pytest.mark.no_tls
def test_metrics_rate_limited_peers(hsrv):
    before = scrape(hsrv.http)
    assert val(before, "sockit_rate_limited_peers") == 0
    for _ in range(5):
        bad = hsrv.connect()
        bad.hello()
        bad.send({"type": "auth", "nonce": "ab" * 32, "mac": "00" * 32})
        bad.expect_error("auth_failed")
        bad.close()
    c = hsrv.connect()
    c.expect_error("rate_limited")  # in place of the hello
    after = scrape(hsrv.http)
    assert val(after, "sockit_rate_limited_peers") == 1
    assert val(after, "sockit_auth_failures_total") - val(before, "sockit_auth_failures_total") == 5
    assert val(after, "sockit_rate_limited_total") - val(before, "sockit_rate_limited_total") == 1
    # the HTTP front still serves that address; its WebSocket does not talk
    ws = ws_proto.WSSocket(hsrv.http)
    c = sp.Client(ws)
    c.expect_error("rate_limited")
    assert c.is_closed()


def test_pipelined_requests_wait_for_a_slow_reader(hsrv):
    """300 pipelined scrapes (over 3 MiB of answers) sent before reading any:
    the server stops parsing while its queue is full and answers them all."""
    n = 300
    s = socket.create_connection(("127.0.0.1", int(hsrv.http.rsplit(":", 1)[1])), timeout=10)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * (n - 1) +
              b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    # let the server fill its queue: answers back up towards us, unread
    wait_for(lambda: unread_bytes(s) >= 32 * 1024, 10)
    data = b""
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        data += chunk
    s.close()
    assert data.count(b"HTTP/1.1 200 OK") == n


def test_metrics_redis_link_state(start_server, tmp_path):
    import signal
    trc = pytest.importorskip("test_chat_redis")
    if trc.REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    r = trc.Redis(str(tmp_path))
    try:
        srv = start_server("--no-auth", "--threads", "2", "--chat-redis", r.url, "--log", "-",
                           "--http", "127.0.0.1:0")
        http = ws_proto.http_addr(srv, wait_for)
        trc.redis_up(srv)
        links = srv.stderr_text().count("redis_up")
        assert val(scrape(http), "sockit_redis_links_up") == links
        r.stop(signal.SIGKILL)
        assert wait_for(lambda: val(scrape(http), "sockit_redis_links_up") == 0, timeout=15)
        assert val(scrape(http), "sockit_redis_link_drops_total") == links
    finally:
        r.stop()


def test_https_and_wss_in_certificate_mode(start_server, key_file, secret, tmp_path):
    cert, key = ws_proto.self_signed_cert(str(tmp_path))
    srv = start_server("--key-file", key_file, "--root", str(tmp_path / "root"),
                       "--http", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key)
    assert wait_for(lambda: any(l.endswith(" (https)") for l in srv.stderr_lines))
    addr = ws_proto.http_addr(srv, wait_for)
    raw = ws_proto.http_request(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
                                      b"Connection: close\r\n\r\n", tls_ca=cert)
    assert status_of(raw) == 200 and b"sockit_requests_total" in raw
    # plain HTTP on the HTTPS port gets nothing useful
    assert status_of(ws_proto.http_request(addr, b"GET / HTTP/1.1\r\n\r\n", timeout=3)) is None
    ws = ws_proto.WSSocket(addr, tls_ca=cert)
    c = sp.Client(ws)
    hello = c.hello()
    assert hello["auth"] == "hmac-sha256"  # certificate mode: the key's exchange inside TLS
    c.auth(secret)
    assert c.echo(b"over wss") == b"over wss"
    after = scrape_tls(addr, cert)
    # three handshakes (two scrapes, the wss), one failure (the plain request)
    assert val(after, "sockit_tls_handshakes_total") == 3
    assert val(after, "sockit_tls_handshake_failures_total") == 1
    assert val(after, "sockit_websocket_connections_total") == 1


def scrape_tls(addr, cert):
    raw = ws_proto.http_request(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
                                      b"Connection: close\r\n\r\n", tls_ca=cert)
    body = raw.partition(b"\r\n\r\n")[2]
    out = {}
    for fam in prom_parser.text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out
