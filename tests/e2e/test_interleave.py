"""Chat pushes never land inside another frame's body (SPEC 4.1, 4.8).

A member downloading a large file keeps receiving room messages; they must
come whole, between frames, and the file's bytes must be intact."""
import hashlib
import os
import threading
import time

import pytest

import sockit_proto as sp
from conftest import unread_bytes, wait_for

# Raw sockit/1 frames from Python: plain servers (conftest.py).
pytestmark = pytest.mark.no_tls


def joined_member(srv, nick):
    c = srv.connect()
    c.hello()
    c.send({"type": "join", "room": "r", "nick": nick})
    c.expect("joined")
    return c


def test_pushes_wait_for_a_streamed_body(start_server, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    data = os.urandom(48 << 20)
    (root / "big.bin").write_bytes(data)
    srv = start_server("--no-auth", "--root", str(root))
    reader = joined_member(srv, "reader")
    talker = joined_member(srv, "talker")
    reader.send({"type": "get", "name": "big.bin", "hash": "sha256", "id": 1})

    def talk():
        for i in range(300):
            talker.send({"type": "say", "room": "r"}, b"message %d" % i)
            time.sleep(0.001)  # pacing: the says spread over the download

    t = threading.Thread(target=talk)
    t.start()
    # the body queues up (the reader reads nothing yet), so pushes arrive
    # while it streams
    wait_for(lambda: unread_bytes(reader.sock) >= 64 * 1024, 10)
    msgs, file_head, body, end = [], None, None, None
    deadline = time.monotonic() + 30
    while end is None or len(msgs) < 300:
        head, b = reader.recv_frame(max(0.1, deadline - time.monotonic()))
        if head["type"] == "msg":
            msgs.append(b)
        elif head["type"] == "file":
            file_head, body = head, b
        elif head["type"] == "file_end":
            end = head
    t.join()
    assert file_head["size"] == len(data) and body == data
    assert end["hash"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert msgs == [b"message %d" % i for i in range(300)]
    reader.close()
    talker.close()
