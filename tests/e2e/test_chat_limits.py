"""Issue 15 item 4: room squatting and chat memory, as the attacks were run.

- Squatting: 17 sockets from one address joined 64 rooms each (1,021 rooms
  held), after which a key holder's join got `busy`. Now a connection is in
  at most 32 rooms, a source address in at most 64 distinct rooms, and the
  key holder from another address joins.
- Memory: filling room histories (join, say 1 MiB, leave, next room) took
  the server from 3 MiB to 1,002 MiB. Now history is bounded per room (1 MiB)
  and in total (--chat-history-bytes, default 64 MiB); the RSS after the fill
  is read from /proc.

Run as a script for the figures in the closing note:
  /usr/bin/python3 tests/e2e/test_chat_limits.py ADDR SERVER_PID KEYFILE|-
"""

import os
import socket
import sys

import pytest

import sockit_proto as sp
from conftest import rss_kib, small_asan_quarantine

# Raw sockit/1 frames from Python: plain servers (conftest.py).
pytestmark = pytest.mark.no_tls

PER_CONN = 32     # rooms one connection may be in
PER_SOURCE = 64   # distinct rooms one source address may be in
BIG = 65536       # the largest say


def connect(addr, secret=None, source=None):
    fam, sa = sp.parse_addr(addr)
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(10)
    if source is not None:
        s.bind((source, 0))
    s.connect(sa)
    c = sp.Client(s, timeout=10)
    if secret is None:
        c.hello()
    else:
        c.handshake(secret)
    return c


def join(c, room, nick):
    """'joined' or the error code."""
    c.send({"type": "join", "room": room, "nick": nick})
    while True:
        head, _ = c.recv_frame()
        if head["type"] == "joined":
            return "joined"
        if head["type"] == "error":
            return head["code"]


def squat(addr, secret, sockets=17, rooms_each=64):
    """The attack: every socket joins rooms_each new rooms. -> (conns, count of
    'joined' per socket, the set of error codes)."""
    conns, joined, errors = [], [], set()
    for i in range(sockets):
        c = connect(addr, secret)
        conns.append(c)
        n = 0
        for j in range(rooms_each):
            r = join(c, "sq%d-%d" % (i, j), "squatter")
            if r == "joined":
                n += 1
            else:
                errors.add(r)
        joined.append(n)
    return conns, joined, errors


def fill(addr, secret, rooms, per_room=1 << 20):
    """The attack: one connection fills the history of `rooms` rooms with
    per_room bytes each (join, say, read its own msgs back, leave)."""
    c = connect(addr, secret)
    text = b"x" * BIG
    for i in range(rooms):
        room = "fill%d" % i
        assert join(c, room, "filler") == "joined"
        n = per_room // BIG
        c.send_raw(b"".join(sp.frame({"type": "say", "room": room}, text) for _ in range(n)))
        got = 0
        while got < n:
            head, _ = c.recv_frame()
            assert head["type"] == "msg", head
            got += 1
        c.send({"type": "leave", "room": room})
    c.ping()
    return c


def history_of(addr, secret, room):
    """How many messages of room a newcomer gets with "history":1000."""
    c = connect(addr, secret)
    c.send({"type": "join", "room": room, "nick": "reader", "history": 1000})
    c.expect("joined")
    n = 0
    c.send({"type": "ping", "id": "end"})
    while True:
        head, _ = c.recv_frame()
        if head["type"] == "msg":
            n += 1
        elif head["type"] == "pong":
            break
    c.close()
    return n


# ---------------------------------------------------------------------------


def test_squatting_17_sockets_is_capped_and_a_key_holder_still_joins(start_server, key_file,
                                                                      secret):
    srv = start_server("--key-file", key_file)
    conns, joined, errors = squat(srv.addr, secret)
    assert joined[0] == PER_CONN  # one connection: 32 rooms, then busy
    assert sum(joined) == PER_SOURCE  # every socket together: 64 rooms
    assert errors == {"busy"}
    # a key holder from another address is not affected by the squatter
    k = connect(srv.addr, secret, source="127.0.0.2")
    assert join(k, "lobby", "keyholder") == "joined"
    # the squatter's rooms are freed as it leaves: it may join others again
    conns[0].close()
    c = connect(srv.addr, secret)
    results = [join(c, "again%d" % i, "squatter") for i in range(PER_CONN)]
    assert results.count("joined") >= 1
    k.ping()


def test_unix_peers_of_one_user_share_the_source_cap(start_server, short_dir):
    srv = start_server("--no-auth", listen=("unix:%s/s" % short_dir,))
    conns, joined, errors = squat(srv.addr, None, sockets=3, rooms_each=PER_CONN)
    assert joined == [PER_CONN, PER_SOURCE - PER_CONN, 0] and errors == {"busy"}


def test_one_source_may_fill_many_members_of_one_room(start_server):
    # the cap is on distinct rooms: 100 connections from one address (a
    # bench, a NAT) all join the same room
    srv = start_server("--no-auth")
    conns = [connect(srv.addr) for _ in range(100)]
    assert [join(c, "one", "m%d" % i) for i, c in enumerate(conns)] == ["joined"] * 100


def test_filling_histories_keeps_rss_bounded(start_server, key_file, secret):
    srv = start_server("--key-file", key_file, "--threads", "1", env_extra=small_asan_quarantine())
    before = rss_kib(srv.proc.pid)
    fill(srv.addr, secret, rooms=160)  # 160 MiB offered
    after = rss_kib(srv.proc.pid)
    # 64 MiB of history (the default total) plus allocator slack
    assert after - before < 96 * 1024, (before, after)
    # a room filled first lost its history to the newer ones; the last kept 1 MiB
    assert history_of(srv.addr, secret, "fill0") == 0
    assert history_of(srv.addr, secret, "fill159") == 15  # 1 MiB / (64 KiB + head)


def test_chat_history_bytes_bounds_the_total(start_server):
    srv = start_server("--no-auth", "--chat-history-bytes", "4M")
    fill(srv.addr, None, rooms=8)
    counts = [history_of(srv.addr, None, "fill%d" % i) for i in range(8)]
    # 4 MiB in all: the newest four rooms' 15 messages, minus what the frames'
    # heads and bookkeeping take past 4 MiB
    assert sum(counts) * (BIG + 64) <= 4 << 20
    assert counts[-1] == 15 and counts[0] == 0


def test_chat_history_bytes_zero_keeps_none(start_server):
    srv = start_server("--no-auth", "--chat-history-bytes", "0")
    a = connect(srv.addr)
    assert join(a, "h", "alice") == "joined"
    a.send({"type": "say", "room": "h"}, b"hello")
    assert a.expect("msg")[1] == b"hello"
    assert history_of(srv.addr, None, "h") == 0


def main(argv):
    """Print the figures: rooms squatted from one address, and RSS after
    filling 1,021 rooms' histories."""
    addr, pid = argv[1], int(argv[2])
    secret = None if argv[3] == "-" else sp.load_secret(argv[3])
    conns, joined, errors = squat(addr, secret)
    k = connect(addr, secret, source="127.0.0.2")
    print("squat: 17 sockets x 64 joins from one address -> %d rooms held; errors %s; "
          "a key holder's join from 127.0.0.2: %s" % (sum(joined), sorted(errors),
                                                      join(k, "lobby", "keyholder")))
    for c in conns + [k]:
        c.close()
    before = rss_kib(pid)
    fill(addr, secret, rooms=1021)
    after = rss_kib(pid)
    print("fill: 1021 rooms x 1 MiB of history -> RSS %d KiB before, %d KiB after (+%.0f MiB)"
          % (before, after, (after - before) / 1024.0))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main(sys.argv)
