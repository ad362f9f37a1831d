"""`sockit chat` as a terminal program (issue 15 item 5, issue 16 item 5):
what other members send is shown escaped, never obeyed by the terminal; a
refused /nick or /join leaves you where you were; /who outside a room; a lost
server on a line of its own."""

import json
import os
import pty
import select
import socket
import subprocess
import termios
import threading
import time

import pytest

import sockit_proto as sp
from conftest import Output, wait_for

HOSTILE_BODIES = [
    ("\n[07:00:00] alice: hi", "\\n[07:00:00] alice: hi"),
    ("\x1b]52;c;cm0gLXJmIH4=\x07", "\\x1b]52;c;cm0gLXJmIH4=\\x07"),
    ("\x1b[2Jclear", "\\x1b[2Jclear"),
    ("abc\u202edef", "abc\\u202edef"),
    ("\u009b2J c1", "\\u009b2J c1"),
    ("fine: caf\u00e9 \U0001f389", "fine: caf\u00e9 \U0001f389"),
]


def member(srv, room, nick):
    c = sp.Client.connect(srv.addr)
    c.hello()
    c.send({"type": "join", "room": room, "nick": nick})
    c.joined_members = c.expect("joined")[0]["members"]
    return c


def members_of(srv, room):
    c = member(srv, room, "probe%d" % time.monotonic_ns())
    c.send({"type": "leave", "room": room})
    c.close()
    return c.joined_members


def next_of(c, types, timeout=5):
    deadline = time.monotonic() + timeout
    while True:
        head, body = c.recv_frame(max(0.01, deadline - time.monotonic()))
        if head["type"] in types:
            return head, body


@pytest.fixture
def chat_server(start_server):
    return start_server("--no-auth")


def test_piped_chat_shows_hostile_bodies_escaped(chat_server, sockit_bin):
    proc = subprocess.Popen(
        [sockit_bin, "chat", chat_server.addr, "--no-auth", "--room", "r", "--nick", "bob"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    output = Output(proc.stdout)
    try:
        m = member(chat_server, "r", "mallory")
        # bob may have joined before mallory or after: wait until he is there
        assert wait_for(lambda: "bob" in members_of(chat_server, "r"), 5)
        for body, _ in HOSTILE_BODIES:
            m.send({"type": "say", "room": "r"}, body.encode())
        for _ in HOSTILE_BODIES:
            next_of(m, {"msg"})
        m.send({"type": "say", "room": "r"}, b"the end")
        next_of(m, {"msg"})
        assert output.wait("mallory: the end", 10), output.data()  # bob has printed it all
        proc.stdin.close()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = output.all()
    text = out.decode("utf-8")
    lines = [ln.split("] ", 1)[1] for ln in text.splitlines() if ln.startswith("[")]
    said = [ln for ln in lines if ln.startswith("mallory: ")]
    assert said == ["mallory: " + shown for _, shown in HOSTILE_BODIES] + ["mallory: the end"], text
    assert b"\x1b" not in out and "\u202e" not in text and "\u009b" not in text
    assert not any(ln.startswith("alice") for ln in lines)


class HostileServer:
    """A server that speaks sockit/1 (no auth) but sends nicks, rooms and
    error messages full of control and bidi characters, as a compromised or
    malicious server may."""

    NICK = "\x1b]0;owned\x07eve\u202e"

    def __init__(self):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4)
        self.addr = "127.0.0.1:%d" % self.lsock.getsockname()[1]
        self.t = threading.Thread(target=self._serve, daemon=True)
        self.t.start()

    def _serve(self):
        s, _ = self.lsock.accept()
        c = sp.Client(s, timeout=10)
        try:
            c.send({"type": "hello", "proto": "sockit/1", "server": "evil\x1b[2J 1",
                    "auth": "none", "services": ["chat"]})
            head, _ = c.recv_frame()
            room = head["room"]
            c.send({"type": "joined", "room": room, "nick": head["nick"],
                    "members": [head["nick"], self.NICK]})
            c.send({"type": "presence", "room": room, "nick": self.NICK, "event": "join"})
            c.send({"type": "msg", "room": room, "from": self.NICK, "ts": time.time()},
                   b"\x1b[31mred\r\nforged")
            c.send({"type": "error", "code": "bad\x1b[2J", "message": "no\x1b]52;c;eA==\x07pe"})
        except sp.ProtoError:
            pass
        finally:
            c.close()

    def close(self):
        self.lsock.close()


def test_piped_chat_escapes_what_a_hostile_server_sends(sockit_bin):
    srv = HostileServer()
    rfd, wfd = os.pipe()  # stdin stays open: the client reads until the server closes
    try:
        proc = subprocess.Popen([sockit_bin, "chat", srv.addr, "--no-auth", "--room", "r",
                                 "--nick", "bob"], stdin=rfd, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        out, err = proc.communicate(timeout=15)
    finally:
        os.close(rfd)
        os.close(wfd)
        srv.close()
    assert proc.returncode == 255
    out, err = out.decode(), err.decode()
    assert "\x1b" not in out + err and "\u202e" not in out + err and "\r" not in out + err
    nick = "\\x1b]0;owned\\x07eve\\u202e"
    assert "* %s joined" % nick in out, out
    assert "%s: \\x1b[31mred\\r\\nforged" % nick in out, out
    assert "server said bad\\x1b[2J: no\\x1b]52;c;eA==\\x07pe" in err, err


def test_chat_json_one_object_per_event(chat_server, sockit_bin):
    """--json (issue 16 item 13): joined, presence and msg as JSON lines,
    stdin lines said as when piped, a refusal as an error object."""
    proc = subprocess.Popen(
        [sockit_bin, "chat", chat_server.addr, "--no-auth", "--room", "r", "--nick", "bob",
         "--json"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    output = Output(proc.stdout)
    try:
        assert output.wait('"type":"joined"'), output.data()
        ann = member(chat_server, "r", "ann")
        assert output.wait('"nick":"ann"'), output.data()
        ann.send({"type": "say", "room": "r"}, "caf\u00e9\n".encode())
        assert output.wait('"from":"ann"'), output.data()
        proc.stdin.write(b"\xff\nhello\n")
        proc.stdin.close()
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    objs = [json.loads(ln) for ln in output.all().decode().splitlines()]
    for o in objs:
        assert "ok" in o or isinstance(o.pop("ts", None), float), o
    assert objs == [
        {"type": "joined", "room": "r", "nick": "bob"},
        {"type": "presence", "room": "r", "nick": "ann", "event": "join"},
        {"type": "msg", "room": "r", "from": "ann", "text": "caf\u00e9\n"},
        {"ok": False, "error": "bad_request", "message": "a message must be UTF-8 text"},
        {"type": "msg", "room": "r", "from": "bob", "text": "hello"},
    ]


# ---------------------------------------------------------------------------
# on a terminal


def read_pty(fd, until, timeout=5):
    out = b""
    deadline = time.monotonic() + timeout
    while until not in out and time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                out += os.read(fd, 65536)
            except OSError:
                break
    return out


class Tty:
    def __init__(self, sockit_bin, addr, room, nick):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execv(sockit_bin, [sockit_bin, "chat", addr, "--room", room, "--nick", nick,
                                  "--no-auth"])
        assert b"[%s]" % room.encode() in self.read(b"[%s]" % room.encode())
        # typing is safe once the line editor has the terminal in raw mode
        assert wait_for(lambda: not termios.tcgetattr(self.fd)[3] & termios.ECHO)

    def read(self, until, timeout=5):
        return read_pty(self.fd, until, timeout)

    def type(self, text):
        os.write(self.fd, text.encode())

    def wait(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.pid = 0
                return os.WEXITSTATUS(status)
            read_pty(self.fd, b"\0", 0.05)
        return None

    def close(self):
        if self.pid:
            try:
                os.kill(self.pid, 9)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        os.close(self.fd)


@pytest.fixture
def tty(sockit_bin):
    made = []

    def make(addr, room, nick):
        t = Tty(sockit_bin, addr, room, nick)
        made.append(t)
        return t

    yield make
    for t in made:
        t.close()


def test_taken_nick_keeps_you_in_the_room(chat_server, tty):
    other = member(chat_server, "r", "other")
    t = tty(chat_server.addr, "r", "typist")
    next_of(other, {"presence"})
    t.type("/nick other\r")
    out = t.read(b"you are still typist")
    assert b"cannot take the nick other in r (" in out, out
    assert b"you are still typist" in out
    assert out.count(b"joined") == 0, out  # one clear line, no rejoin noise
    t.type("still here\r")
    head, body = next_of(other, {"msg"})
    assert (head["from"], body) == ("typist", b"still here")
    # later commands work: a free nick, then another room
    t.type("/nick typist2\r")
    head, _ = next_of(other, {"presence"})
    head, _ = next_of(other, {"presence"})
    assert (head["nick"], head["event"]) == ("typist2", "join")
    t.type("/join elsewhere\r")
    assert b"joined elsewhere" in t.read(b"joined elsewhere")
    t.type("/quit\r")
    assert t.wait() == 0


def test_who_outside_a_room(chat_server, tty):
    t = tty(chat_server.addr, "r", "loner")
    t.type("/leave\r")
    assert b"left r" in t.read(b"left r")
    t.type("/who\r")
    assert b"not in a room: /join ROOM" in t.read(b"not in a room")
    t.type("/quit\r")
    assert t.wait() == 0


def test_lost_server_prints_on_its_own_line(start_server, tty):
    srv = start_server("--no-auth")
    t = tty(srv.addr, "r", "stay")
    t.type("half typed")
    assert b"half typed" in t.read(b"half typed")
    srv.kill()
    out = t.read(b"lost the connection")
    assert b"sockit chat: lost the connection to the server" in out, out
    before = out.split(b"sockit chat: lost")[0]
    # the prompt line was cleared (and flushed) before the message
    assert before.endswith(b"\r\x1b[K"), before[-40:]
    assert t.wait() == 255
