"""A server-wide budget for queued output (--max-buffered, issue 15 item 10).

Before: each connection stopped reading above 1 MiB unsent, but nothing
bounded the server: 20 echo clients that send a 16 MiB echo each and never
read held 310 MiB. Now the total queued output is counted; over the budget
the connections with the largest queues stop reading and the slowest
consumers are dropped, each with an `over_budget` log line."""
import os
import socket

import pytest

import sockit_proto as sp
from conftest import rss_kib, wait_for

# Raw sockit/1 frames from Python: plain servers (conftest.py).
pytestmark = pytest.mark.no_tls

MiB = 1 << 20


def asan_env():
    """Keep an ASan server's freed memory from counting as live (RSS)."""
    opts = os.environ.get("ASAN_OPTIONS", "")
    return {"ASAN_OPTIONS": (opts + ":" if opts else "") + "quarantine_size_mb=1"}


def non_reader(srv, secret):
    fam, sa = sp.parse_addr(srv.addr)
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # reads nothing anyway
    s.settimeout(30)
    s.connect(sa)
    c = sp.Client(s, 30)
    c.handshake(secret)
    return c


def test_non_reading_echo_clients_stay_within_max_buffered(start_server, key_file, secret,
                                                           tmp_path):
    log = str(tmp_path / "conn.log")
    srv = start_server("--key-file", key_file, "--max-buffered", "32M", "--threads", "1",
                       "--log", log, env_extra=asan_env())
    pid = srv.proc.pid
    base = rss_kib(pid)
    body = os.urandom(16 * MiB)
    clients = []
    for _ in range(20):
        c = non_reader(srv, secret)
        try:
            c.send({"type": "echo", "size": len(body)}, body)
        except OSError:
            pass  # dropped while still sending: what the budget is for
        clients.append(c)
    held = lambda: (rss_kib(pid) - base) // 1024
    # 20 x 16 MiB = 320 MiB queued before; now the budget (32 MiB) plus the
    # request being gathered and what the allocator keeps
    assert wait_for(lambda: held() < 80, 10, step=0.2), "server holds %d MiB" % held()
    dropped = [l for l in open(log) if " over_budget " in l]
    assert len(dropped) >= 12, len(dropped)
    assert all("result=slow_consumer" in l and "max_buffered=33554432" in l for l in dropped)
    with srv.connect() as c:  # a reading client is served as ever
        c.handshake(secret)
        assert c.echo(os.urandom(MiB)) is not None
    for c in clients:
        c.close()


def test_under_the_budget_nothing_is_dropped(start_server, key_file, secret, tmp_path):
    log = str(tmp_path / "conn.log")
    srv = start_server("--key-file", key_file, "--max-buffered", "64M", "--log", log)
    body = os.urandom(4 * MiB)
    clients = [non_reader(srv, secret) for _ in range(4)]
    for c in clients:
        c.send({"type": "echo", "size": len(body)}, body)
    for c in clients:  # slow readers, all within the budget: each gets its echo whole
        head, got = c.recv_frame(timeout=30)
        assert head["size"] == len(body) and got == body
        c.close()
    assert " over_budget " not in open(log).read()
