"""Edge cases of the put sink's zero-copy receive (docs/internals.md, "Streamed
bodies"): the server reads a put body straight into the files service's ring
once none of the body's bytes wait in its read buffer, capped at the bytes
the body still owes. These tests mix the two paths (bytes that came with the
head, then many small reads), pipeline the next frames right behind a body
(they must never land in the ring), and drop a connection mid-body."""

import os
import random
import time

import pytest

import sockit_proto as sp
from conftest import unacked_bytes, wait_for
from test_files import fsrv, raw, root, sha256  # noqa: F401 (fixtures)

# Raw sockit/1 frames from Python: plain servers (conftest.py).
pytestmark = pytest.mark.no_tls

MiB = 1 << 20


def put_frame(name, data, offset=0, **extra):
    head = {"type": "put", "name": name, "total": len(data), "offset": offset,
            "hash": "sha256"}
    head.update(extra)
    return sp.frame(head, data[offset:])


def dribble(c, data, seed, most=70000):
    """Send data in many writes of random sizes, pausing now and then so that
    the server sees many small reads rather than one coalesced stream."""
    rnd = random.Random(seed)
    pos = 0
    while pos < len(data):
        k = rnd.choice((1, 7, 512, 4096, rnd.randint(1, most)))
        c.send_raw(data[pos:pos + k])
        pos += k
        if rnd.random() < 0.05:
            time.sleep(0.001)  # pacing, so that reads stay small (not a synchronisation)


def test_head_with_first_bytes_then_small_writes(fsrv, root):
    data = os.urandom(5 * MiB + 4321)  # past the 4 x 1 MiB ring: the sink pauses too
    wire = put_frame("d.bin", data, id="p")
    first = len(wire) - len(data) + 1000  # the head and the body's first 1000 bytes
    c = raw(fsrv)
    c.send_raw(wire[:first])
    dribble(c, wire[first:], seed=1)
    c.send({"type": "put_end", "hash": sha256(data)})
    head, _ = c.expect("put_ok")
    assert head["hash"] == sha256(data) and head["id"] == "p"
    assert (root / "d.bin").read_bytes() == data
    head, body = c.request({"type": "echo", "id": "e"}, b"after")
    assert head["id"] == "e" and body == b"after"


@pytest.mark.parametrize("size", [1, MiB - 1, MiB, MiB + 1, 3 * MiB + 5],
                         ids=["1B", "1MiB-1", "1MiB", "1MiB+1", "3MiB+5"])
def test_put_pipelined_with_put_end_and_echo(fsrv, root, size):
    a, b = os.urandom(size), os.urandom(size // 3 + 1)
    wire = (put_frame("a.bin", a, id=1) + sp.frame({"type": "put_end", "hash": sha256(a)})
            + put_frame("b.bin", b, id=2) + sp.frame({"type": "put_end", "hash": sha256(b)})
            + sp.frame({"type": "echo", "id": 3}, b"tail"))
    c = raw(fsrv)
    c.send_raw(wire)  # one write: every frame boundary falls inside a read
    h1, _ = c.expect("put_ok")
    h2, _ = c.expect("put_ok")
    h3, body = c.expect("echo")
    assert (h1["id"], h2["id"], h3["id"], body) == (1, 2, 3, b"tail")
    assert h1["hash"] == sha256(a) and h2["hash"] == sha256(b)
    assert (root / "a.bin").read_bytes() == a and (root / "b.bin").read_bytes() == b


def test_pipelined_after_small_writes_body(fsrv, root):
    """The body's last bytes and the next frames arrive together after the
    sink has been receiving in place: the read into the ring must stop at the
    body's end."""
    data = os.urandom(2 * MiB + 99)
    wire = put_frame("e.bin", data, id=1)
    tail = sp.frame({"type": "put_end", "hash": sha256(data)}) + sp.frame(
        {"type": "echo", "id": 2}, b"x" * 100)
    c = raw(fsrv)
    cut = len(wire) - 5000
    c.send_raw(wire[:4096])
    dribble(c, wire[4096:cut], seed=2)
    # the server has what was sent (and so waits inside the body, reading in
    # place) once its kernel has acknowledged every byte; the asserts below
    # hold either way, this only steers the test onto that path
    wait_for(lambda: unacked_bytes(c.sock) == 0, 10)
    c.send_raw(wire[cut:] + tail)
    h1, _ = c.expect("put_ok")
    h2, body = c.expect("echo")
    assert (h1["id"], h2["id"], body) == (1, 2, b"x" * 100)
    assert (root / "e.bin").read_bytes() == data


def test_drop_mid_body_then_resume(fsrv, root):
    data = os.urandom(6 * MiB + 321)
    half = 5 * MiB + 4321  # not on a ring buffer's boundary
    wire = put_frame("r.bin", data)
    start = len(wire) - len(data)
    c = raw(fsrv)
    c.send_raw(wire[:start + 1000])
    dribble(c, wire[start + 1000:start + half], seed=3)
    c.close()  # gone mid-body: the part file keeps what arrived
    c = raw(fsrv)
    # The dropped upload's part file is fsynced on the thread pool first; on
    # a disk busy with the other tests that can take seconds.
    st = {}

    def partial_is_half():
        st.update(c.request({"type": "stat", "name": "r.bin"}, timeout=30)[0])
        return st.get("partial") == half

    wait_for(partial_is_half, 30)
    assert st["exists"] is False and st["partial"] == half
    c.send_raw(put_frame("r.bin", data, offset=half, id="r"))
    c.send({"type": "put_end", "hash": sha256(data)})
    head, _ = c.expect("put_ok", timeout=30)
    assert head["hash"] == sha256(data) and head["id"] == "r"
    assert (root / "r.bin").read_bytes() == data
    assert not (root / ".r.bin.sockit-part").exists()
