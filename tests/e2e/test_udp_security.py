"""Attacks on UDP (issue 15 items 2 and 3, SPEC 5), kept as tests.

With a key: a datagram without the key's trailer, a replayed one, one with
a stale ts or a flipped byte gets no answer of any kind and changes nothing
(before the fix a keyless datagram joined the key holders' rooms, read their
history and spoke in them); the client drops answers that fail the same
checks. Without a key (--no-auth): the return-routability cookie, at most 16
memberships per source, answers to unproven addresses never larger than the
request, and the classic time protocols' per-source limit."""

import hashlib
import hmac
import socket
import subprocess
import threading
import time

import pytest

import sockit_proto as sp
import udp_proto as up
from test_chat import member, next_of, say, udp_addrs


@pytest.fixture
def keyed(start_server, key_file, secret):
    """A server with a key, a TCP listener and UDP on 127.0.0.1."""
    srv = start_server("--key-file", key_file, "--udp", "127.0.0.1:0")
    srv.uaddr = udp_addrs(srv)[0]
    srv.kudp = up.udp_key(secret)
    srv.secret = secret
    srv.key_file = key_file
    return srv


def sealed_join(srv, s, room, nick, history=None):
    head = {"type": "join", "room": room, "nick": nick}
    if history is not None:
        head["history"] = history
    s.send(up.seal(srv.kudp, head))
    return up.unseal(srv.kudp, s.recv(70000))[0]


def no_news(c):
    """The TCP member c got nothing since: its next frame is the pong."""
    c.ping()


# ---- item 2: authenticated datagrams ----------------------------------------


def test_a_keyless_datagram_cannot_join_read_or_speak(keyed):
    alice, _ = member(keyed, "secret", "alice", secret=keyed.secret)
    say(alice, "secret", "the plan")
    next_of(alice, {"msg"})
    attacks = [({"type": "join", "room": "secret", "nick": "mallory", "history": 10}, b""),
               ({"type": "say", "room": "secret"}, b"forged"),
               ({"type": "leave", "room": "secret"}, b""),
               ({"type": "echo"}, b"x" * 100),
               ({"type": "time"}, b""),
               ({"type": "ping"}, b""),
               ({"type": "exec", "argv": ["id"]}, b""),
               ({"type": "no_such_type"}, b"")]
    wrong_key = up.udp_key(b"not-the-server-key-0123456789")
    s = up.sock_for(keyed.uaddr)
    for head, body in attacks:
        s.send(sp.frame(head, body))  # no trailer
        s.send(sp.frame(up.stamp(head), body))  # ts and n, still no trailer
        s.send(up.seal(wrong_key, head, body))  # a trailer under another key
    assert up.recv_all(s, 1.0) == []  # no answer of any kind
    no_news(alice)  # nobody joined, nobody spoke
    # a key holder over UDP is a member like any other, and reads the history
    bob = up.sock_for(keyed.uaddr)
    joined = sealed_join(keyed, bob, "secret", "bob", history=10)
    assert sorted(joined["members"]) == ["alice", "bob"]
    head, body = up.unseal(keyed.kudp, bob.recv(70000))
    assert (head["type"], head["from"], body) == ("msg", "alice", b"the plan")
    assert next_of(alice, {"presence"})[0]["nick"] == "bob"


def test_a_replayed_datagram_is_dropped(keyed):
    alice, _ = member(keyed, "r", "alice", secret=keyed.secret)
    bob = up.sock_for(keyed.uaddr)
    assert sealed_join(keyed, bob, "r", "bob")["type"] == "joined"
    next_of(alice, {"presence"})
    datagram = up.seal(keyed.kudp, {"type": "say", "room": "r"}, b"pay 10")
    bob.send(datagram)
    assert next_of(alice, {"msg"})[1] == b"pay 10"
    assert up.unseal(keyed.kudp, bob.recv(70000))[1] == b"pay 10"
    eve = up.sock_for(keyed.uaddr)  # the same bytes from another address too
    for s in (bob, bob, eve):
        s.send(datagram)
    assert up.recv_all(bob, 0.5) == [] and up.recv_all(eve, 0.2) == []
    no_news(alice)  # said once, not four times
    echo = up.seal(keyed.kudp, {"type": "echo"}, b"once")
    bob.send(echo)
    assert up.unseal(keyed.kudp, bob.recv(70000))[1] == b"once"
    bob.send(echo)
    assert up.recv_or_none(bob) is None


def test_a_stale_or_future_ts_is_dropped(keyed):
    s = up.sock_for(keyed.uaddr)
    now = up.now_ms()
    for ts in (now - 31000, now + 31000, now - 3600 * 1000, now // 1000, now + 0.5, str(now)):
        s.send(up.seal(keyed.kudp, {"type": "echo"}, b"late", ts=ts))
    for n in ("", "0" * 15, "0" * 17, "ABCDEF0123456789", 12345):
        s.send(up.seal(keyed.kudp, {"type": "echo"}, b"odd n", n=n))
    assert up.recv_all(s, 0.8) == []
    for off in (-25000, 25000):  # within 30 s either way: served
        s.send(up.seal(keyed.kudp, {"type": "echo"}, b"ok", ts=up.now_ms() + off))
        assert up.unseal(keyed.kudp, s.recv(70000))[1] == b"ok"


def test_a_flipped_byte_is_dropped(keyed):
    s = up.sock_for(keyed.uaddr)
    good = up.seal(keyed.kudp, {"type": "echo"}, b"payload")
    for i in (len(good) - 1, len(good) - 32, len(good) - 33, 10, 3):
        bad = bytearray(good)
        bad[i] ^= 0x01
        s.send(bytes(bad))
    s.send(good[:-1])  # a trailer cut short
    s.send(good + b"\x00")  # one byte too many
    assert up.recv_all(s, 0.8) == []
    s.send(good)  # the original still passes (nothing above was accepted)
    assert up.unseal(keyed.kudp, s.recv(70000))[1] == b"payload"


class FakeUdpServer:
    """Answers every datagram with what answer(request_head, request_body)
    returns: a list of datagrams to send back."""

    def __init__(self, answer):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(("127.0.0.1", 0))
        self.s.settimeout(0.2)
        self.addr = "127.0.0.1:%d" % self.s.getsockname()[1]
        self.answer, self.seen, self.done = answer, [], False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.done:
            try:
                data, peer = self.s.recvfrom(70000)
            except socket.timeout:
                continue
            self.seen.append(data)
            for d in self.answer(data, peer):
                self.s.sendto(d, peer)

    def close(self):
        self.done = True
        self.t.join(5)
        self.s.close()


def test_the_client_drops_answers_that_fail_the_checks(run_cli, key_file, secret):
    kudp = up.udp_key(secret)
    wrong = up.udp_key(b"not-the-server-key-0123456789")

    def forged(data, peer):
        head, _ = up.unseal(kudp, data)  # what the client sends is authenticated
        ans = {"type": "echo", "id": head["id"]}
        good = up.seal(kudp, ans, b"forged")
        flipped = bytearray(good)
        flipped[-1] ^= 1
        return [sp.frame(ans, b"forged"), up.seal(wrong, ans, b"forged"), bytes(flipped),
                up.seal(kudp, ans, b"forged", ts=up.now_ms() - 40000),
                up.seal(kudp, ans, b"forged", ts=up.now_ms() + 40000)]

    fake = FakeUdpServer(forged)
    try:
        r = run_cli("echo", "--udp", fake.addr, "--key-file", key_file, "hi")
        assert r.returncode == 255 and r.stdout == "" and "no answer" in r.stderr, r
        assert len(fake.seen) == 3  # every try was dropped
    finally:
        fake.close()
    honest = FakeUdpServer(lambda data, peer: [up.seal(kudp, {"type": "echo", "id": up.unseal(
        kudp, data)[0]["id"]}, b"real")])
    try:
        r = run_cli("echo", "--udp", honest.addr, "--key-file", key_file, "hi")
        assert (r.returncode, r.stdout) == (0, "real\n"), r.stderr
    finally:
        honest.close()


def test_the_chat_client_shows_a_replayed_push_once(sockit_bin, env, key_file, secret):
    kudp = up.udp_key(secret)
    pushes = []

    def server(data, peer):
        head, _ = up.unseal(kudp, data)
        if head["type"] != "join":
            return []
        joined = up.seal(kudp, {"type": "joined", "room": "r", "nick": "bob",
                                "members": ["bob", "alice"]})
        msg = up.seal(kudp, {"type": "msg", "room": "r", "from": "alice", "size": 4}, b"once")
        forged = sp.frame({"type": "msg", "room": "r", "from": "alice",
                           "ts": time.time(), "size": 6}, b"forged")
        stale = up.seal(kudp, {"type": "msg", "room": "r", "from": "alice"}, b"stale",
                        ts=up.now_ms() - 60000)
        end = up.seal(kudp, {"type": "msg", "room": "r", "from": "alice"}, b"end")
        pushes.extend([msg, msg, forged, stale, msg, end])
        return [joined] + pushes

    fake = FakeUdpServer(server)
    p = subprocess.Popen([sockit_bin, "chat", "--udp", fake.addr, "--key-file", key_file,
                          "--room", "r", "--nick", "bob"], env=env.make(),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        lines = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n").split("] ", 1)[1])
            if lines[-1] == "alice: end":
                break
        assert lines == ["alice: once", "alice: end"], lines
    finally:
        p.stdin.close()
        p.wait(10)
        fake.close()
