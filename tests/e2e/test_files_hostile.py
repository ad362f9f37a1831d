"""The files service against a hostile key holder (issue 15, items 1 and 6):
every member of every files request with a value of every JSON kind, and
FIFOs and other special files in the root. Raw frames from sockit_proto, as
an attacker would send them."""

import os
import time

import pytest

import conftest
import sockit_proto as sp

# Raw sockit/1 frames from Python: plain servers (conftest.py).
pytestmark = pytest.mark.no_tls

ERROR_CODES = {"bad_frame", "bad_request", "unknown_type", "auth_required", "auth_failed",
               "rate_limited", "forbidden", "not_found", "exists", "too_large",
               "hash_mismatch", "io_error", "busy", "nick_taken", "slow_consumer", "timeout",
               "internal"}

# One value of each JSON kind, and the integers at the edges.
KINDS = [None, True, False, 0, -1, 1.5, -0.0, 1e300, 2**63 - 1, -2**63, "", "x", "a/../b",
         [], [1], {}, {"a": 1}]


@pytest.fixture
def root(tmp_path):
    d = tmp_path / "root"
    d.mkdir()
    (d / "a").write_bytes(b"hello")
    (d / "dir").mkdir()
    return d


@pytest.fixture
def asrv(start_server, key_file, root):
    return start_server("--key-file", key_file, "--root", str(root))


def authed(srv, secret):
    c = srv.connect()
    c.handshake(secret)
    return c


def until_pong(c, label):
    """Frames up to the pong that follows a request; each must be a valid
    answer or a well-formed, non-fatal error."""
    c.send({"type": "ping", "id": "fence"})
    frames = []
    while True:
        try:
            head, body = c.recv_frame(timeout=5)
        except sp.Closed:
            raise AssertionError("server closed the connection after %s" % label)
        if head["type"] == "pong":
            assert head.get("id") == "fence", (label, head)
            return frames
        if head["type"] == "error":
            assert head.get("code") in ERROR_CODES, (label, head)
            assert head["code"] not in ("bad_frame", "internal"), (label, head)
            assert isinstance(head.get("message", ""), str), (label, head)
        frames.append(head)


BASES = {
    "get": ({"type": "get", "name": "a", "offset": 0, "hash": "sha256"}, b""),
    "stat": ({"type": "stat", "name": "a"}, b""),
    "list": ({"type": "list", "name": "dir", "detail": True}, b""),
    "put": ({"type": "put", "name": "p", "total": 3, "offset": 0, "mode": 420, "mtime": 1,
             "hash": "sha256", "exclusive": False}, b"abc"),
    "put_end": ({"type": "put_end", "hash": conftest.sha256(b"abc")}, b""),
    "rm": ({"type": "rm", "name": "gone", "recursive": False}, b""),
}


def send_case(c, kind, head, body):
    if kind == "put_end":  # put_end only means something after a put
        c.send(dict(BASES["put"][0]), BASES["put"][1])
    c.send(head, body)
    if kind == "put":
        c.send({"type": "put_end", "hash": conftest.sha256(b"abc")})


@pytest.mark.parametrize("kind", sorted(BASES))
def test_every_member_of_every_kind_is_answered(asrv, secret, root, kind):
    """Issue 15 item 1: {"type":"get","name":"a","offset":1.5} crashed the
    server (an unset message passed to the error path). Every member of every
    files request, with a value of each JSON kind, and the member missing,
    must get an answer or a clean error, and the server must live on."""
    (root / "gone").write_bytes(b"x")
    base, body = BASES[kind]
    c = authed(asrv, secret)
    members = [m for m in base if m != "type"]
    for member in members:
        for value in KINDS + ["<missing>"]:
            head = dict(base)
            if value == "<missing>":
                del head[member]
            else:
                head[member] = value
            label = "%s with %s=%r" % (kind, member, value)
            send_case(c, kind, head, body)
            frames = until_pong(c, label)
            if kind == "get" and member == "offset" and not isinstance(value, int):
                assert [f["type"] for f in frames] in (["error"], ["file", "file_end"]), label
                if value is not None and value != "<missing>":
                    assert frames[0]["code"] == "bad_request", (label, frames)
                    assert "offset" in frames[0]["message"], (label, frames)
    assert asrv.alive()
    c.close()
    # and a fresh client is served
    c = authed(asrv, secret)
    head, body = c.request({"type": "get", "name": "a", "offset": 0})
    assert head["type"] == "file" and body == b"hello"
    assert c.recv_head()["type"] == "file_end"


def test_get_offset_float_and_string_exact_answer(asrv, secret):
    """The two frames of the issue, with the exact answer."""
    c = authed(asrv, secret)
    for off in (1.5, "x"):
        head, _ = c.request({"type": "get", "name": "a", "offset": off, "id": 3})
        assert head["type"] == "error" and head["code"] == "bad_request", head
        assert head["id"] == 3
    assert c.ping()["type"] == "pong"
    assert asrv.alive()


# ---- special files in the root (issue 15 item 6) ----------------------------


def test_fifo_in_root_does_not_hang_the_workers(asrv, secret, root):
    """`get fifo` blocked a pool thread in open(); four of them stalled every
    other client's get and list. Now each is refused at once, and the others
    answer promptly."""
    os.mkfifo(root / "fifo")
    stuck = []
    for _ in range(6):  # more than libuv's 4 pool threads
        c = authed(asrv, secret)
        c.send({"type": "get", "name": "fifo", "offset": 0})
        stuck.append(c)
    for c in stuck:
        head, _ = c.recv_frame(timeout=3)
        assert head["type"] == "error" and head["code"] == "forbidden", head
        assert "regular" in head["message"]
    t0 = time.monotonic()
    other = authed(asrv, secret)
    head, body = other.request({"type": "get", "name": "a", "offset": 0}, timeout=3)
    assert head["type"] == "file" and body == b"hello"
    assert other.recv_head(timeout=3)["type"] == "file_end"
    head, _ = other.request({"type": "list", "name": ""}, timeout=3)
    assert head["type"] == "list"
    assert time.monotonic() - t0 < 3
    types = {e["name"]: e["type"] for e in head["entries"]}
    assert types == {"a": "file", "dir": "dir", "fifo": "other"}
    head, _ = other.request({"type": "stat", "name": "fifo"}, timeout=3)
    assert head["type"] == "stat" and head["exists"] is True
    for c in stuck:
        c.close()


def test_put_over_a_fifo_refused(asrv, secret, root):
    os.mkfifo(root / "fifo")
    c = authed(asrv, secret)
    head, _ = c.request({"type": "put", "name": "fifo", "total": 2, "offset": 0}, b"hi")
    assert head["type"] == "error" and head["code"] == "exists", head
    assert c.ping()["type"] == "pong"
    assert os.path.exists(root / "fifo") and not os.path.isfile(root / "fifo")


def test_device_node_refused_without_opening(asrv, secret, root):
    """A character device (made as root) is never opened: reading some has
    side effects. /dev/null's numbers are safe for the test."""
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    os.mknod(root / "null", 0o666 | 0o020000, os.makedev(1, 3))
    c = authed(asrv, secret)
    head, _ = c.request({"type": "get", "name": "null", "offset": 0}, timeout=3)
    assert head["type"] == "error" and head["code"] == "forbidden", head
    head, _ = c.request({"type": "list", "name": ""}, timeout=3)
    assert {e["name"]: e["type"] for e in head["entries"]}["null"] == "other"


def test_get_client_gone_while_blocks_are_queued(asrv, secret, root):
    """A get whose client vanishes (reset) while the server holds queued
    blocks and has a read in flight: the connection's last reference gave
    the blocks back and freed the download under release_conn (ASan:
    heap-use-after-free; the plain build segfaulted). The server is frozen
    while the client goes, so the close and the read's end meet in one
    loop turn."""
    import signal
    import socket
    import struct
    with open(str(root / "big.bin"), "wb") as f:
        f.write(os.urandom(64 << 20))
    for _ in range(16):
        c = authed(asrv, secret)
        c.send({"type": "get", "name": "big.bin", "offset": 0})
        c.recv_exact(1 << 20, timeout=5)
        os.kill(asrv.proc.pid, signal.SIGSTOP)
        try:
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
        finally:
            os.kill(asrv.proc.pid, signal.SIGCONT)
        other = authed(asrv, secret)
        assert other.ping()["type"] == "pong"
        other.close()
    assert asrv.alive()


def test_list_of_hostile_names_still_answers(asrv, secret, root):
    """Names whose JSON escapes are six times their length (control bytes)
    once pushed a listing past the head limit (internal error for every
    client listing that folder); a name that is not UTF-8 failed it too.
    Now the listing fits (truncated when it must) and skips what JSON
    cannot carry."""
    d = root / "hostile"
    d.mkdir()
    for i in range(300):
        name = "%03d" % i + "\x01" * 200
        (d / name).write_bytes(b"")
    os.close(os.open(os.path.join(os.fsencode(str(d)), b"caf\xe9"), os.O_CREAT | os.O_WRONLY))
    c = authed(asrv, secret)
    head, _ = c.request({"type": "list", "name": "hostile"})
    assert head["type"] == "list", head
    assert head.get("truncated") is True
    assert 0 < len(head["entries"]) < 300
    assert all(e["name"].endswith("\x01" * 200) for e in head["entries"])
    (d / "x").mkdir()
    head, _ = c.request({"type": "list", "name": ""})
    assert head["type"] == "list"
    os.rename(str(d), str(root / "gone"))
    (root / "ok").mkdir()
    os.close(os.open(os.path.join(os.fsencode(str(root / "ok")), b"caf\xe9"),
                     os.O_CREAT | os.O_WRONLY))
    (root / "ok" / "fine").write_bytes(b"1")
    head, _ = c.request({"type": "list", "name": "ok"})
    assert head["type"] == "list" and [e["name"] for e in head["entries"]] == ["fine"]


def test_plain_list_keeps_spec_types_detail_adds_links_and_uploads(asrv, secret, root):
    """A list as SPEC 4.7 asks it sees files, folders and "other" (what is
    never served: links, FIFOs); part files stay hidden. With "detail" (what
    sockit ls sends) links are "link" and uploads in progress show."""
    os.symlink("a", str(root / "ln"))
    os.mkfifo(str(root / "ff"))
    (root / ".a.sockit-part").write_bytes(b"12")
    (root / ".up.sockit-part").write_bytes(b"123")
    c = authed(asrv, secret)
    head, _ = c.request({"type": "list", "name": ""})
    assert {e["name"]: e["type"] for e in head["entries"]} == {
        "a": "file", "dir": "dir", "ln": "other", "ff": "other"}
    assert all("partial" not in e for e in head["entries"])
    head, _ = c.request({"type": "list", "name": "", "detail": True})
    got = {e["name"]: (e["type"], e.get("partial")) for e in head["entries"]}
    assert got == {"a": ("file", 2), "dir": ("dir", None), "ln": ("link", None),
                   "ff": ("other", None), "up": ("partial", None)}
    assert [e["length"] for e in head["entries"] if e["name"] == "up"] == [3]
