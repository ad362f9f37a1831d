"""Datagrams of SPEC 5 written from the spec, for the UDP tests: the HKDF
key, the HMAC trailer, "ts"/"n", and the --no-auth cookie round trip.
Nothing here comes from sockit's code."""

import hashlib
import hmac
import os
import socket
import struct
import time

import sockit_proto as sp

TAG = 32
SKEW_MS = 30000


def udp_key(secret):
    """K_udp = HMAC(HMAC("sockit/2 udp", secret), "udp" || 0x01)."""
    prk = hmac.new(b"sockit/2 udp", secret, hashlib.sha256).digest()
    return hmac.new(prk, b"udp\x01", hashlib.sha256).digest()


def now_ms():
    return int(time.time() * 1000)


def stamp(head, ts=None, n=None):
    """A copy of head with "ts" (now, ms) and a fresh "n"."""
    head = dict(head)
    head["ts"] = now_ms() if ts is None else ts
    head["n"] = os.urandom(8).hex() if n is None else n
    return head


def seal(key, head, body=b"", **stamp_args):
    """frame(stamp(head)) + its trailer: one authenticated datagram."""
    f = sp.frame(stamp(head, **stamp_args), body)
    return f + hmac.new(key, f, hashlib.sha256).digest()


def parse_frame(data):
    """Exactly one frame: (head, body)."""
    hlen = struct.unpack(">I", data[:4])[0]
    head = sp.check_head(data[4:4 + hlen])
    body = data[4 + hlen:]
    assert len(body) == head.get("size", 0), "one frame fills the whole datagram"
    return head, body


def unseal(key, data):
    """(head, body) of an authenticated datagram; asserts what SPEC 5 asks
    of it (a trailer that verifies, integer ts within 30 s, 16-hex n)."""
    assert len(data) > TAG
    f, tag = data[:-TAG], data[-TAG:]
    assert hmac.compare_digest(tag, hmac.new(key, f, hashlib.sha256).digest()), "bad trailer"
    head, body = parse_frame(f)
    assert isinstance(head["ts"], int) and abs(head["ts"] - now_ms()) <= SKEW_MS, head
    assert len(head["n"]) == 16 and all(c in "0123456789abcdef" for c in head["n"]), head
    return head, body


def sock_for(addr, timeout=1.0):
    fam, sa = sp.parse_addr(addr)
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    s.connect(sa)
    return s


def recv_or_none(s, timeout=0.5):
    """The next datagram's bytes, or None when nothing comes in time."""
    s.settimeout(timeout)
    try:
        return s.recv(70000)
    except (socket.timeout, ConnectionRefusedError):
        return None


def recv_all(s, timeout=0.5):
    """Every datagram until none comes for timeout seconds."""
    out = []
    while True:
        d = recv_or_none(s, timeout)
        if d is None:
            return out
        out.append(d)


def pad(head, size=256):
    """A plain head with a "pad" member making its frame at least size bytes,
    as the library does (an unproven address gets no more than it sent)."""
    head = dict(head)
    short = size - len(sp.frame(head))
    if short > 0:
        head["pad"] = " " * max(0, short - 9)
    return head


def plain_join(s, room, nick, history=None, **extra):
    """A --no-auth join with its cookie round trip; the joined head."""
    head = dict({"type": "join", "room": room, "nick": nick}, **extra)
    if history is not None:
        head["history"] = history
    s.send(sp.frame(pad(head)))
    got, _ = parse_frame(s.recv(70000))
    if got["type"] == "cookie":
        head["cookie"] = got["cookie"]
        s.send(sp.frame(pad(head)))
        got, _ = parse_frame(s.recv(70000))
    return got
