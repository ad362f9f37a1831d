"""Multi-loop servers (--threads 2) under concurrent load: the tests `make
test-tsan` runs against a ThreadSanitizer build (issue 9). Each one crosses
loops on purpose: clients spread over both SO_REUSEPORT listeners, chat rooms
with members on both loops, uploads finishing on the shared thread pool, and
a graceful stop while all of that is live. Any TSan report fails the test
through the conftest's sanitizer check."""

import hashlib
import os
import signal
import threading

import pytest

import sockit_proto as sp
from conftest import wait_for

# Raw sockit/1 frames from Python: plain servers (conftest.py).
pytestmark = pytest.mark.no_tls

THREADS = ("--threads", "2")


def authed(srv, secret):
    c = srv.connect(timeout=30)
    c.handshake(secret)
    return c


def run_all(fns):
    errors = []

    def wrap(fn):
        try:
            fn()
        except Exception as e:  # collected and reported below
            errors.append(e)

    ts = [threading.Thread(target=wrap, args=(fn,)) for fn in fns]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert errors == [], errors[:3]


def test_concurrent_echo_clients_on_two_loops(start_server, key_file, secret):
    srv = start_server("--key-file", key_file, *THREADS)

    def client(k):
        def go():
            with authed(srv, secret) as c:
                for i in range(60):
                    data = os.urandom((k * 7919 + i * 104729) % 200000)
                    assert c.echo(data, id=i) == data
                frames = b"".join(sp.frame({"type": "echo", "id": i}, b"%d" % i) for i in range(50))
                c.send_raw(frames)
                for i in range(50):
                    h, body = c.recv_frame(30)
                    assert h["id"] == i and body == b"%d" % i
        return go

    run_all([client(k) for k in range(12)])


def test_chat_room_across_loops_one_order(start_server, key_file, secret):
    srv = start_server("--key-file", key_file, *THREADS)
    members = []
    for k in range(8):  # 8 connections: both loops are used unless 1 in 128
        c = authed(srv, secret)
        c.send({"type": "join", "room": "tsan", "nick": "m%d" % k})
        while c.recv_frame(30)[0]["type"] != "joined":
            pass
        members.append(c)
    per = 40
    seen = {}

    def speaker(k, c):
        def go():
            for i in range(per):
                c.send({"type": "say", "room": "tsan"}, b"%d:%d" % (k, i))
            got = []
            while len(got) < per * len(members):
                h, body = c.recv_frame(60)
                if h["type"] == "msg":
                    got.append(body)
            seen[k] = got
        return go

    run_all([speaker(k, c) for k, c in enumerate(members)])
    orders = list(seen.values())
    assert all(o == orders[0] for o in orders), "members saw different orders"
    for c in members:
        c.close()


def test_concurrent_uploads_on_two_loops(start_server, key_file, secret, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    srv = start_server("--key-file", key_file, "--root", str(root), *THREADS)
    datas = {"u%02d.bin" % i: os.urandom(300 * 1024 + i * 4099) for i in range(10)}

    def upload(name, data):
        def go():
            with authed(srv, secret) as c:
                c.send({"type": "put", "name": name, "total": len(data), "offset": 0,
                        "hash": "sha256"}, data)
                c.send({"type": "put_end", "hash": "sha256:" + hashlib.sha256(data).hexdigest()})
                ok, _ = c.expect("put_ok", timeout=60)
                c.send({"type": "get", "name": name})
                h, body = c.expect("file", timeout=60)
                assert body == data
                c.expect("file_end", timeout=60)
        return go

    run_all([upload(n, d) for n, d in datas.items()])
    for n, d in datas.items():
        assert (root / n).read_bytes() == d


def test_graceful_stop_under_load_on_two_loops(start_server, key_file, secret):
    srv = start_server("--key-file", key_file, *THREADS)
    stop = threading.Event()
    echoed = []

    def busy():
        try:
            with authed(srv, secret) as c:
                while not stop.is_set():
                    c.echo(b"y" * 5000)
                    echoed.append(1)
        except (sp.ProtoError, OSError):
            pass  # the server went away: expected

    ts = [threading.Thread(target=busy, daemon=True) for _ in range(6)]
    for t in ts:
        t.start()
    # under load: the six clients have had 30 answers between them
    wait_for(lambda: len(echoed) >= 6 * 5, 10)
    assert srv.terminate(signal.SIGTERM, 30) == 0
    stop.set()
    for t in ts:
        t.join(10)
