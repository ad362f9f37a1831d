#!/usr/bin/env python3
"""Write the seed corpora under fuzz/corpus/NAME/ from valid frames.

Run from anywhere; files are small and committed. Re-running rewrites the
seed-* files and leaves any other file (regression inputs, crash-*) alone.
"""

import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
NONCE = "0123456789abcdef" * 4


def frame(head, body=b""):
    if body:
        head = dict(head, size=len(body))
    h = json.dumps(head, separators=(",", ":")).encode()
    return struct.pack(">I", len(h)) + h + body


# Every request type of SPEC 4, one valid head each.
REQUESTS = [
    ({"type": "auth", "nonce": NONCE, "mac": NONCE}, b""),
    ({"type": "echo", "id": 1}, b"hello"),
    ({"type": "ping", "id": "x"}, b""),
    ({"type": "bye"}, b""),
    ({"type": "time", "ts": 0, "tz": "+08:00", "format": "%Y-%m-%d %H:%M:%S"}, b""),
    ({"type": "time", "tz": "UTC"}, b""),
    ({"type": "exec", "argv": ["ls", "-l"], "stdin": True, "timeout": 5,
      "env": {"A": "b"}}, b""),
    ({"type": "exec", "shell": "ls | wc -l"}, b""),
    ({"type": "stdin", "eof": True}, b"abc"),
    ({"type": "signal", "signal": "INT"}, b""),
    ({"type": "put", "name": "d/a.txt", "total": 3, "offset": 0, "mode": 420,
      "mtime": 1700000000, "hash": "sha256", "exclusive": True}, b"abc"),
    ({"type": "put_end", "hash": "sha256:" + NONCE}, b""),
    ({"type": "stat", "name": "a.txt"}, b""),
    ({"type": "get", "name": "a.txt", "offset": 0, "hash": "sha256"}, b""),
    ({"type": "list", "name": "d"}, b""),
    ({"type": "join", "room": "lobby", "nick": "ann", "history": 10}, b""),
    ({"type": "say", "room": "lobby"}, "héllo".encode()),
    ({"type": "leave", "room": "lobby"}, b""),
]

# What a server says, for the client harness.
HELLO_AUTH = {"type": "hello", "proto": "sockit/1", "server": "sockit 0.1.0",
              "auth": "hmac-sha256", "nonce": NONCE, "services": ["echo", "time", "files"],
              "hashes": ["sha256", "xxh128"]}
HELLO_NONE = dict(HELLO_AUTH, auth="none")
del HELLO_NONE["nonce"]
RESPONSES = [
    ({"type": "echo", "id": 1}, b"hello"),
    ({"type": "time", "id": 1, "ts": 0, "tz": "UTC", "text": "1970-01-01 00:00:00",
      "now": 1.5}, b""),
    ({"type": "file", "name": "a", "total": 5, "offset": 0, "mode": 420, "mtime": 1}, b"12345"),
    ({"type": "file_end", "hash": "sha256:" + NONCE}, b""),
    ({"type": "error", "code": "not_found", "message": "no such file"}, b""),
    ({"type": "msg", "room": "r", "from": "k", "ts": 1.0}, b"hi"),
]


def write(name, files):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for fn in os.listdir(d):
        if fn.startswith("seed-"):
            os.unlink(os.path.join(d, fn))
    for i, data in enumerate(files):
        with open(os.path.join(d, "seed-%02d" % i), "wb") as f:
            f.write(data)


def engine_op(case, high=0):
    """fuzz_engine.c reads op % 12 as the step and op's high bits as its
    argument: the smallest op byte with both."""
    for op in range(256):
        if op % 12 == case and op >> 4 == high:
            return bytes([op])
    for op in range(256):
        if op % 12 == case and op >> 4 >= high:
            return bytes([op])
    raise ValueError(case)


def engine_seeds():
    """Programs for fuzz_engine.c: a mode byte, then steps (see step())."""
    types = ["quick", "slow", "follow", "fail", "gather", "up", "auth", "nosuch"]

    def read(t, body=0, cut=None):
        pick = types.index(t) | (0x40 if cut is not None else 0)
        out = engine_op(0) + bytes([pick, body])
        if t == "auth":
            out += b"\x01"
        if cut is not None:
            out += bytes([cut])
        return out + bytes(range(body))

    done, resume, tick = engine_op(4), engine_op(5), engine_op(6)
    full, deadline, close = engine_op(7), engine_op(8), engine_op(9, 1)
    return [
        b"\x00" + read("quick") + read("slow") + read("quick") + done + tick,
        b"\x00" + read("slow") + read("follow") + read("quick") + read("follow") + done + tick,
        b"\x00" + engine_op(10, 7) + read("up", 30) + read("quick") + resume + tick + resume +
        tick + resume + tick + resume + tick + done + tick,
        b"\x00" + engine_op(10, 4) + read("up", 40, cut=20) + engine_op(3) + b"\x05" +
        engine_op(3) + b"\x09" + done + tick,
        b"\x00" + read("gather", 50, cut=30) + read("fail") + read("nosuch", 3) + read("quick"),
        b"\x00" + full + read("quick") + read("quick") + full + deadline + b"\x80" + close,
        b"\x02" + read("quick") + read("auth") + read("quick") + deadline + b"\x20",
        b"\x01" + engine_op(0) + b"\x20" + b"\x00\x00\x00\x10" + b'{"type":"quick"}',
    ]


def main():
    stream = b"".join(frame(h, b) for h, b in REQUESTS)
    write("frame", [
        b"\x00" + bytes([0, 0, 0, 0, 0, 0, 0, 0]) + stream,        # byte by byte
        b"\x01" + bytes([3, 200, 17, 1, 64, 5, 255, 9]) + stream,   # odd splits, pre-auth
        b"\x00" + bytes([255] * 8) + frame(*REQUESTS[1]) + frame(*REQUESTS[2]),
        b"\x00" + bytes(8) + struct.pack(">I", 1) + b"{}",           # head_len too small
        b"\x00" + bytes(8) + struct.pack(">I", 65537),              # too large
        b"\x00" + bytes(8) + frame({"type": "echo", "size": 2 ** 50}),
    ])
    write("head", [json.dumps(dict(h, size=len(b)) if b else h).encode() for h, b in REQUESTS] +
          [json.dumps(h).encode() for h, _ in RESPONSES] +
          [b'{"type":"x","size":9007199254740991}', b'{"type":"x","size":-1}',
           b'{"type":"x","size":1.0}', b'{"type":1}', b'[]'])
    write("time", [
        struct.pack("<q", 0) + b"\x02\x00" + b"%Y-%m-%d %H:%M:%S",
        struct.pack("<q", 1700000000) + b"\x01\xff" + b"%c %z %Z",
        struct.pack("<q", -1) + b"\x00\xff" + b"%s",
        struct.pack("<q", 2 ** 62) + b"\x03\xff" + b"-12:30\x00%Y",
        struct.pack("<q", 0) + b"\x03\x05" + b"+08:00\x00%A %B",
    ])
    write("names", [b"\x00a.txt", b"\x00d/e/f.bin", b"\x01", b"\x00a/../b", b"\x00/etc/passwd",
                    b"\x00a/up/x", b"\x00out/etc/x", b"\x00a/in/c", b"\x00.a.sockit-part",
                    b"\x00" + b"x" * 256, b"\x00a//b", b"\x00./a"])
    write("seed", [
        b"\x00 1700000000\n", b"\x00-12", b"\x00+0", b"\x009223372036854775808",
        b"\x01" + struct.pack("<i", 40), b"\x01" + struct.pack("<i", -1),
        b"\x02" + json.dumps({"filename": "C:\\tmp\\a.txt", "filesize": 3,
                              "filepath": "/x"}).encode(),
        b"\x02" + json.dumps({"filename": "../../etc/passwd", "filesize": 1}).encode(),
        b"\x03dir/sub/name.txt", b"\x03..", b"\x03a\\b\\.hidden",
        b"\x04" + bytes(range(256)),
    ])
    write("engine", engine_seeds())
    responses = b"".join(frame(h, b) for h, b in RESPONSES)
    write("client", [
        frame(HELLO_NONE) + responses,
        frame(HELLO_AUTH) + frame({"type": "auth_ok", "mac": NONCE}) + responses,
        frame(HELLO_AUTH) + frame({"type": "error", "code": "auth_failed"}),
        frame({"type": "error", "code": "rate_limited"}),
        frame(HELLO_NONE) + frame({"type": "echo", "id": 1, "size": 2 ** 40}),
        frame(HELLO_NONE) + frame({"type": "echo", "id": 1}, b"hello") +
        frame({"type": "time", "id": 1, "text": "x"}) +
        frame({"type": "file", "name": "a"}, b"x" * 600) + frame({"type": "file_end"}),
    ])


if __name__ == "__main__":
    main()
