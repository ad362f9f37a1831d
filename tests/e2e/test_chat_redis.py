"""End-to-end tests of chat across servers (issue 18; SPEC 9): several
`sockit serve --chat-redis` processes on one real redis-server, which the
fixture starts on a free loopback port with no persistence in its own
temporary directory (never the system service)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

import sockit_proto as sp
from conftest import free_port, wait_for
from test_chat import member, next_of, say, udp_addrs, udp_dgram, udp_frame

REDIS_SERVER = shutil.which("redis-server")

# every test here speaks raw native frames: plain servers (--no-tls)
pytestmark = [pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not installed"),
              pytest.mark.no_tls]


def redis_cmd(port, *args, timeout=2.0):
    """One command over RESP; the reply as bytes/int/list/None (errors raise)."""
    return redis_cmds(port, args, timeout=timeout)[-1]


def redis_cmds(port, *cmds, timeout=2.0):
    """Commands in turn on one connection (AUTH, SELECT, ...): their replies."""
    out = b""
    for args in cmds:
        out += b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(out)
        f = s.makefile("rb")
        return [_resp(f) for _ in cmds]


def _resp(f):
    line = f.readline()
    if not line:
        raise ConnectionError("redis closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_resp(f) for _ in range(n)]
    raise RuntimeError("bad RESP: %r" % line)


class Redis:
    """A private redis-server: loopback, a free port, no persistence. With
    cluster=True a one-node Redis Cluster that holds every slot: no MOVED
    redirects, but a command or script naming keys of two slots is refused
    (CROSSSLOT), so sockit's commands must each keep to one slot."""

    def __init__(self, base, cluster=False):
        self.dir = os.path.join(base, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.cluster = cluster
        self.bus_port = free_port() if cluster else None  # not port + 10000: it may pass 65535
        self.proc = None
        self.start()

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--daemonize", "no",
             "--logfile", os.path.join(self.dir, "redis.log")] + self.cluster_args(),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        assert wait_for(self.ping, timeout=10), "redis-server did not come up"
        if self.cluster:
            self.cluster_up()

    def cluster_args(self):
        # a short node timeout: a restarted node serves again after 0.5 s,
        # not 5 s (it would wait that long for peers it does not have)
        if not self.cluster:
            return []
        return ["--cluster-enabled", "yes", "--cluster-node-timeout", "500",
                "--cluster-port", str(self.bus_port),
                "--cluster-config-file", os.path.join(self.dir, "nodes.conf")]

    def cluster_up(self):
        """Every slot on this node (kept in nodes.conf across a restart),
        then wait until the cluster serves."""
        def info():
            text = self.cmd("CLUSTER", "INFO").decode()
            return dict(l.split(":", 1) for l in text.split("\r\n") if ":" in l)
        if info()["cluster_slots_assigned"] == "0":
            self.cmd("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        assert wait_for(lambda: info()["cluster_state"] == "ok", timeout=10), info()

    def ping(self):
        try:
            return redis_cmd(self.port, "PING", timeout=0.5) == b"PONG"
        except OSError:
            return False

    def stop(self, sig=signal.SIGTERM):
        """Stop it: SIGKILL for a crash (a SIGTERM'd Redis may still take a
        connection while it shuts down, so links would flap)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cmd(self, *args):
        return redis_cmd(self.port, *args)


@pytest.fixture(scope="session")
def cluster_node(tmp_path_factory):
    """One cluster node for all the tests of a worker: a node takes 2 s to
    serve after it starts (Redis waits that long before a master without
    peers says cluster_state:ok)."""
    r = Redis(str(tmp_path_factory.mktemp("cluster")), cluster=True)
    yield r
    r.stop()


@pytest.fixture
def redis(request, tmp_path):
    if getattr(request, "param", "plain") == "cluster":
        r = request.getfixturevalue("cluster_node")
        if r.proc is None:  # a test before stopped it
            r.start()
        r.cmd("FLUSHALL")  # the servers of the test before are gone by now
        r.cmd("CONFIG", "RESETSTAT")
        yield r
        # and no command was refused for naming keys of two slots, even
        # one whose failure the test would not see (a bell)
        if r.proc is not None:
            assert "CROSSSLOT" not in r.cmd("INFO", "errorstats").decode()
        return
    r = Redis(str(tmp_path))
    yield r
    r.stop()


# A test run on plain Redis and again on a one-node Redis Cluster: proves
# that every command it makes sockit send keeps to one slot.
on_cluster_too = pytest.mark.parametrize("redis", ["plain", "cluster"], indirect=True)


@pytest.fixture
def shared(start_server, redis):
    """shared(n, *extra) -> n servers on the one Redis (plain, no auth)."""

    def start(n=2, *extra, threads=2):
        servers = [start_server("--no-auth", "--threads", str(threads), "--chat-redis",
                                redis.url, "--log", "-", *extra) for _ in range(n)]
        for srv in servers:  # every Redis link up before the test speaks
            redis_up(srv, threads + 1)
        return servers

    return start


def redis_up(srv, n=None):
    """Wait until srv's log says every Redis link is up (threads + reader)."""
    def ready():
        return srv.stderr_text().count("redis_up") >= (n or 3)
    assert wait_for(ready, timeout=10), srv.stderr_text()


def settled(c, ping_id=999):
    """Wait until every say c sent is answered by Redis: a ping after them
    is answered only then (a sender's requests keep their order). Killing
    Redis before that would race its XADD reply, and the say would get a
    true "unavailable" although its message was stored and delivered."""
    c.send({"type": "ping", "id": ping_id})
    next_of(c, ("pong",), 10)


def drain(c, types=("msg", "presence"), quiet=0.3):
    """Every frame of types that comes until quiet seconds pass without one."""
    got = []
    while True:
        try:
            head, body = c.recv_frame(quiet)
        except sp.Timeout:
            return got
        if head["type"] in types:
            got.append((head, body))


def msgs_until(c, n, timeout=10):
    """The next n msg frames (other frames skipped) as (from, text)."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        head, body = next_of(c, ("msg",), max(0.01, deadline - time.monotonic()))
        out.append((head["from"], body.decode()))
    return out


def presence_of(c, nick, event, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        head, _ = next_of(c, ("presence",), max(0.01, deadline - time.monotonic()))
        if head["nick"] == nick and head["event"] == event:
            return head


# ---- across servers ----------------------------------------------------------


@pytest.mark.no_tls
@on_cluster_too
def test_cross_server_delivery_members_and_presence(shared):
    a, b = shared(2)
    alice, joined = member(a, "lobby", "alice")
    assert joined["members"] == ["alice"]
    bob, joined = member(b, "lobby", "bob")
    assert sorted(joined["members"]) == ["alice", "bob"]
    assert presence_of(alice, "bob", "join")["room"] == "lobby"
    say(bob, "lobby", "hi from b")
    head, body = next_of(alice, ("msg",))
    assert (head["room"], head["from"], body) == ("lobby", "bob", b"hi from b")
    assert isinstance(head["ts"], float) and abs(head["ts"] - time.time()) < 60
    head, body = next_of(bob, ("msg",))  # the sender gets it too, once
    assert (head["from"], body) == ("bob", b"hi from b")
    say(alice, "lobby", "hello from a")
    assert msgs_until(bob, 1) == [("alice", "hello from a")]
    assert msgs_until(alice, 1) == [("alice", "hello from a")]
    bob.send({"type": "leave", "room": "lobby"})
    assert presence_of(alice, "bob", "leave")["event"] == "leave"
    assert drain(bob) == []


@pytest.mark.no_tls
@on_cluster_too
def test_reader_waits_on_the_bell_not_on_every_room(shared, redis):
    """A server in many rooms waits on one key, the bell (sockit:bell: an
    entry after each script that appended to a room's log), not on the logs
    of all its rooms:
    then rooms nobody speaks in cost a busy room nothing (a read of 1000
    logs per message made Redis the bottleneck). Each read's keys show in
    CLIENT LIST as the argv-mem of the blocked XREAD."""
    (a,) = shared(1)
    members = [member(a, "q%d" % i, "n%d" % i)[0] for i in range(40)]
    say(members[7], "q7", "hi")
    assert msgs_until(members[7], 1) == [("n7", "hi")]

    def blocked_reads():
        out = []
        for line in redis.cmd("CLIENT", "LIST").decode().splitlines():
            f = dict(kv.split("=", 1) for kv in line.split(" ") if "=" in kv)
            if f["cmd"] == "xread" and "b" in f["flags"]:
                out.append(int(f["argv-mem"]))
        return out
    assert wait_for(lambda: len(blocked_reads()) == 1, timeout=5)
    assert blocked_reads()[0] < 100  # 40 logs would be ~900 bytes
    assert redis.cmd("XLEN", "sockit:bell") == 41  # 40 joins and a say
    say(members[39], "q39", "still read")
    assert msgs_until(members[39], 1) == [("n39", "still read")]


@pytest.mark.no_tls
@on_cluster_too
def test_a_full_read_is_followed_by_another_at_once(shared, redis):
    """The reader reads each room named by the bell with an XREAD of its own
    (one key: one Cluster slot), up to 512 entries; a room that gave 512 is
    read again before the bell, not at the next read of every room (5 s).
    600 entries appended behind sockit's back, then one bell entry."""
    (a,) = shared(1)
    alice, _ = member(a, "full", "alice")
    say(alice, "full", "first")
    assert msgs_until(alice, 1) == [("alice", "first")]
    redis_cmds(redis.port, *[("XADD", "sockit:{full}:log", "*", "t", "m", "n", "bob", "b",
                              "m%d" % i) for i in range(600)],
               ("XADD", "sockit:bell", "*", "k", "sockit:{full}:log"))
    assert msgs_until(alice, 600, timeout=4) == [("bob", "m%d" % i) for i in range(600)]
    assert drain(alice, ("msg",), quiet=0.2) == []


@pytest.mark.no_tls
def test_a_room_with_a_long_backlog_does_not_starve_the_others(shared, redis):
    """A room that gives full reads again and again (a backlog of 100000
    entries here, appended behind sockit's back) is read beside the bell,
    not instead of it: another room's message is handed out while the
    backlog is still being read, not after all of it. One connection in
    both rooms sees the order in which the reader handed them out."""
    (a,) = shared(1)
    c, _ = member(a, "busy", "alice")
    c.send({"type": "join", "room": "quiet", "nick": "alice"})
    next_of(c, ("joined",))
    fill = ("redis.call('XADD', KEYS[1], '*', 't', 'm', 'n', 'bob', 'b', 'start')\n"
            "for i = 1, 100000 do redis.call('XADD', KEYS[1], '*', 't', 'x', 'n', 'z') end\n"
            "redis.call('XADD', KEYS[1], '*', 't', 'm', 'n', 'bob', 'b', 'end')\n")
    redis_cmds(redis.port, ("EVAL", fill, 1, "sockit:{busy}:log"),
               ("XADD", "sockit:bell", "*", "k", "sockit:{busy}:log"), timeout=10)
    assert msgs_until(c, 1) == [("bob", "start")]  # the backlog is being read
    say(c, "quiet", "hi")
    assert msgs_until(c, 2) == [("alice", "hi"), ("bob", "end")]


@pytest.mark.no_tls
@on_cluster_too
def test_nick_taken_across_servers(shared):
    a, b = shared(2)
    alice, _ = member(a, "room1", "alice")
    c = b.connect()
    c.hello()
    c.send({"type": "join", "room": "room1", "nick": "alice", "id": 7})
    head, _ = c.recv_frame()
    assert (head["type"], head["code"], head["id"]) == ("error", "nick_taken", 7)
    # a confusable nick (Cyrillic a) is the same nick across servers too
    c.send({"type": "join", "room": "room1", "nick": "\u0430lice"})
    head, _ = c.recv_frame()
    assert (head["type"], head["code"]) == ("error", "nick_taken")
    # the same nick in another room is fine, and after alice leaves it is free
    c.send({"type": "join", "room": "room2", "nick": "alice"})
    assert c.expect("joined")[0]["members"] == ["alice"]
    alice.close()
    def free():
        c.send({"type": "join", "room": "room1", "nick": "alice"})
        head, _ = c.recv_frame()
        return head["type"] == "joined"
    assert wait_for(free, timeout=5, step=0.1)


@pytest.mark.no_tls
@on_cluster_too
def test_history_across_servers(shared):
    a, b = shared(2)
    alice, _ = member(a, "hist", "alice")
    bob, _ = member(b, "hist", "bob")
    for i in range(3):  # each said after the one before is in the room's order
        say(alice, "hist", "a%d" % i)
        assert msgs_until(alice, 1 if i == 0 else 2)[-1] == ("alice", "a%d" % i)
        say(bob, "hist", "b%d" % i)
        assert msgs_until(bob, 2)[-1] == ("bob", "b%d" % i)
    # a newcomer on either server gets the newest messages, whoever said
    # them, oldest first, after joined; presences are not history
    carol, joined = member(a, "hist", "carol", history=4)
    assert sorted(joined["members"]) == ["alice", "bob", "carol"]
    got = [(h["from"], b.decode()) for h, b in drain(carol, ("msg",))]
    assert got == [("alice", "a1"), ("bob", "b1"), ("alice", "a2"), ("bob", "b2")]
    dave, _ = member(b, "hist", "dave", history=100)
    got = [(h["from"], b.decode()) for h, b in drain(dave, ("msg",))]
    assert got == [(w, "%s%d" % (w[0], i)) for i in range(3) for w in ("alice", "bob")]


@pytest.mark.no_tls
def test_history_is_bounded_by_chat_history_as_on_one_server(shared):
    """--chat-history N keeps N messages a room, shared or not: a join
    asking for more gets the newest N (the stream keeps more entries)."""
    a, b = shared(2, "--chat-history", "2")
    alice, _ = member(a, "cap", "alice")
    for i in range(4):
        say(alice, "cap", "m%d" % i)
    assert msgs_until(alice, 4)[-1] == ("alice", "m3")
    bob, _ = member(b, "cap", "bob", history=50)
    assert [b.decode() for _, b in drain(bob, ("msg",))] == ["m2", "m3"]


@pytest.mark.no_tls
@on_cluster_too
def test_one_order_under_concurrent_sayers_three_servers(shared):
    servers = shared(3)
    n = 150
    members = []
    for i in range(6):  # two members on each server
        members.append(member(servers[i % 3], "big", "m%d" % i)[0])
    # every member has seen every later join before the says start
    for i, m in enumerate(members):
        for j in range(i + 1, 6):
            presence_of(m, "m%d" % j, "join")
    received = [[] for _ in members]

    def reader(i):
        c = members[i]
        while len(received[i]) < 3 * n:
            head, body = c.recv_frame(30)
            if head["type"] == "msg":
                received[i].append((head["from"], body))

    def writer(i):  # m0, m1, m2: one sayer on each server, pipelined
        data = b"".join(sp.frame({"type": "say", "room": "big"}, b"%d-%d" % (i, k))
                        for k in range(n))
        members[i].send_raw(data)

    readers = [threading.Thread(target=reader, args=(i,)) for i in range(6)]
    writers = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
    for t in readers + writers:
        t.start()
    for t in readers + writers:
        t.join(90)
    assert [len(r) for r in received] == [3 * n] * 6
    for r in received[1:]:
        assert r == received[0]
    for i in range(3):  # each sender's own messages keep their order
        mine = [b for f, b in received[0] if f == "m%d" % i]
        assert mine == [b"%d-%d" % (i, k) for k in range(n)]
    for m in members:  # and nothing comes twice
        assert drain(m, ("msg",), quiet=0.2) == []


def udp_join(addr, room, nick, sock=None, history=None):
    """Join over UDP (echoing a cookie if the server asks for one) ->
    (socket, joined head)."""
    head = {"type": "join", "room": room, "nick": nick}
    if history is not None:
        head["history"] = history
    u = udp_dgram(addr, head, sock=sock)
    reply, _ = udp_frame(u, timeout=5)
    if reply["type"] == "cookie":
        head["cookie"] = reply["cookie"]
        udp_dgram(addr, head, sock=u)
        reply, _ = udp_frame(u, timeout=5)
    return u, reply


@pytest.mark.no_tls
def test_udp_member_on_one_server_tcp_member_on_another(shared):
    a, b = shared(2, "--udp", "127.0.0.1:0")
    udp_addr = udp_addrs(a)[0]
    t, _ = member(b, "mix", "tcpuser")
    u, joined = udp_join(udp_addr, "mix", "udpuser")
    assert joined["type"] == "joined"
    assert sorted(joined["members"]) == ["tcpuser", "udpuser"]
    assert presence_of(t, "udpuser", "join")["room"] == "mix"
    say(t, "mix", "from tcp on b")
    head, body = udp_frame(u, timeout=5)
    assert (head["type"], head["from"], body) == ("msg", "tcpuser", b"from tcp on b")
    udp_dgram(udp_addr, {"type": "say", "room": "mix"}, b"from udp on a", sock=u)
    head, body = udp_frame(u, timeout=5)
    assert (head["type"], head["from"], body) == ("msg", "udpuser", b"from udp on a")
    assert msgs_until(t, 2) == [("tcpuser", "from tcp on b"), ("udpuser", "from udp on a")]
    # the nick is taken across servers for UDP joiners as well
    u2, reply = udp_join(udp_addrs(b)[0], "mix", "udpuser")
    assert (reply["type"], reply["code"]) == ("error", "nick_taken")
    udp_dgram(udp_addr, {"type": "leave", "room": "mix"}, sock=u)
    assert presence_of(t, "udpuser", "leave")["event"] == "leave"


@pytest.mark.no_tls
def test_sigkilled_server_leaves_its_rooms_within_30s(shared):
    a, b = shared(2)
    alice, _ = member(a, "k", "alice")
    amy, _ = member(a, "k", "amy")  # kept: a closed socket would leave at once
    bob, _ = member(b, "k", "bob")
    t0 = time.monotonic()
    os.kill(a.proc.pid, signal.SIGKILL)
    a.proc.wait(5)
    left = set()
    while left != {"alice", "amy"}:
        try:
            head, _ = next_of(bob, ("presence",), max(0.01, 30 - (time.monotonic() - t0)))
        except sp.Timeout:
            raise AssertionError("%r %r" % (left, b.stderr_text()))
        assert head["event"] == "leave"
        left.add(head["nick"])
    assert time.monotonic() - t0 < 30
    # and their nicks are free again
    c, joined = member(b, "k", "alice")
    assert sorted(joined["members"]) == ["alice", "bob"]


@pytest.mark.no_tls
@on_cluster_too
def test_server_taken_for_dead_comes_back_announced(shared, redis):
    """A server cut off from Redis past its heartbeat deadline is taken for
    dead and its members are announced as left; when it is heard from
    again it puts them back announced as joined, so every member's view of
    the room matches the room again (without waiting 15 s: the test moves
    the server's deadline into the past)."""
    a, b = shared(2)
    alice, _ = member(a, "z", "alice")
    bob, _ = member(b, "z", "bob")
    presence_of(alice, "bob", "join")
    values = redis.cmd("HVALS", "sockit:{z}:members")
    sid_a = [v for v in values if v.endswith(b" alice")][0].split(b":")[0]
    assert redis.cmd("ZADD", "sockit:{z}:servers", "XX", "CH", 1, sid_a) == 1
    carol, _ = member(b, "z", "carol")  # her join reaps the "dead" server
    seen = []
    while ("alice", "join") not in seen:  # a's next heartbeat (5 s) brings her back
        head, _ = next_of(bob, ("presence",), 10)
        seen.append((head["nick"], head["event"]))
    assert seen == [("alice", "leave"), ("carol", "join"), ("alice", "join")]
    names = sorted(v.split(b" ", 1)[1] for v in redis.cmd("HVALS", "sockit:{z}:members"))
    assert names == [b"alice", b"bob", b"carol"]
    say(alice, "z", "still here")
    assert msgs_until(bob, 1) == [("alice", "still here")]
    c = b.connect()  # and her nick is hers again
    c.hello()
    c.send({"type": "join", "room": "z", "nick": "alice"})
    assert c.recv_frame(5)[0]["code"] == "nick_taken"


@pytest.mark.no_tls
def test_sigterm_server_announces_its_members_left_at_once(shared, redis):
    """A server stopped with SIGTERM takes its members out of the room
    before its Redis links close: the others see them leave at once, not
    after the 15 s a dead server's heartbeat takes."""
    a, b = shared(2)
    alice, _ = member(a, "t", "alice")
    amy, _ = member(a, "t", "amy")
    bob, _ = member(b, "t", "bob")
    presence_of(alice, "bob", "join")
    t0 = time.monotonic()
    a.proc.send_signal(signal.SIGTERM)
    left = set()
    while left != {"alice", "amy"}:
        head, _ = next_of(bob, ("presence",), 5)
        assert head["event"] == "leave"
        left.add(head["nick"])
    assert time.monotonic() - t0 < 5
    assert a.proc.wait(10) == 0
    assert [v.split(b" ", 1)[1] for v in redis.cmd("HVALS", "sockit:{t}:members")] == [b"bob"]


def as_seen(head, body):
    """A msg as (from, text); any other frame as (type, its head)."""
    if head["type"] == "msg":
        return (head["from"], body.decode())
    return (head["type"], json.dumps(head, sort_keys=True))


def log_count(srv, event):
    return srv.stderr_text().count(event)


@pytest.mark.no_tls
def test_redis_restart_mid_conversation_no_loss_no_duplicate(shared, redis):
    a, b = shared(2)
    alice, _ = member(a, "r", "alice")
    bob, _ = member(b, "r", "bob")
    presence_of(alice, "bob", "join")
    sent = []
    for i in range(10):
        c, who = (alice, "alice") if i % 2 == 0 else (bob, "bob")
        say(c, "r", "before %d" % i)
        sent.append((who, "before %d" % i))
    got = {c: msgs_until(c, 10) for c in (alice, bob)}
    for c in (alice, bob):
        settled(c)
    redis.stop(signal.SIGKILL)
    for srv in (a, b):
        assert wait_for(lambda: log_count(srv, "redis_down") >= 3, timeout=10), srv.stderr_text()
    redis.start()
    for srv in (a, b):
        assert wait_for(lambda: log_count(srv, "redis_up") >= 6, timeout=15), srv.stderr_text()
    for i in range(10):
        c, who = (alice, "alice") if i % 2 == 0 else (bob, "bob")
        say(c, "r", "after %d" % i)
        sent.append((who, "after %d" % i))
    # msgs, errors and presences, so that an error or a member announced
    # again (nobody left: Redis only lost its copy) would show
    kinds = ("msg", "error", "presence")
    for c in (alice, bob):
        deadline = time.monotonic() + 15
        n = 0
        while n < 10 and time.monotonic() < deadline:
            try:
                h, body = next_of(c, kinds, max(0.01, deadline - time.monotonic()))
            except sp.Timeout:
                break
            n += 1
            got[c].append(as_seen(h, body))
        got[c] += [as_seen(h, body) for h, body in drain(c, kinds, quiet=0.5)]
    # both saw every message once, in one order, each sender's in its order
    assert got[alice] == got[bob], (got, a.stderr_text(), b.stderr_text())
    assert sorted(got[alice]) == sorted(sent)
    for who in ("alice", "bob"):
        assert [m for m in got[alice] if m[0] == who] == [m for m in sent if m[0] == who]


@pytest.mark.no_tls
def test_redis_down_say_is_unavailable_then_works_again(shared, redis):
    (a,) = shared(1)
    alice, _ = member(a, "d", "alice")
    say(alice, "d", "one")
    assert msgs_until(alice, 1) == [("alice", "one")]
    settled(alice)
    redis.stop(signal.SIGKILL)
    assert wait_for(lambda: log_count(a, "redis_down") >= 3, timeout=10), a.stderr_text()
    alice.send({"type": "say", "room": "d", "id": 5}, b"lost?")
    head, _ = alice.recv_frame(5)
    assert (head["type"], head["code"], head["id"]) == ("error", "unavailable", 5)
    assert "Redis" in head["message"]
    alice.send({"type": "ping", "id": 6})  # the connection stays usable
    head, _ = alice.recv_frame(5)
    assert (head["type"], head["id"]) == ("pong", 6)
    c = a.connect()
    c.hello()
    c.send({"type": "join", "room": "d", "nick": "bob"})
    head, _ = c.recv_frame(5)
    assert (head["type"], head["code"]) == ("error", "unavailable")
    redis.start()
    assert wait_for(lambda: log_count(a, "redis_up") >= 6, timeout=15), a.stderr_text()
    say(alice, "d", "two")
    assert msgs_until(alice, 1) == [("alice", "two")]
    # Redis lost everything: the server told it who is in the room again
    assert wait_for(lambda: redis.cmd("HLEN", "sockit:{d}:members") == 1, timeout=10)
    c.send({"type": "join", "room": "d", "nick": "alice"})
    head, _ = c.recv_frame(5)
    assert (head["type"], head["code"]) == ("error", "nick_taken")


@pytest.mark.no_tls
def test_slow_consumer_on_one_server_does_not_slow_the_room(shared):
    a, b = shared(2)
    slow, _ = member(b, "s", "slow", rcvbuf=4096)
    alice, _ = member(a, "s", "alice")
    far, _ = member(a, "s", "far")
    near, _ = member(b, "s", "near")
    big = os.urandom(32 * 1024).hex()  # 64 KiB of text
    got = {far: [], near: []}

    def read_all(c):
        n = 0
        while n < 300:
            head, body = c.recv_frame(30)
            got[c].append(head)
            n += head["type"] == "msg"

    readers = [threading.Thread(target=read_all, args=(c,)) for c in (far, near)]
    for t in readers:
        t.start()
    t0 = time.monotonic()
    for _ in range(15):  # ~19 MiB: well past 8 MiB for the member that never reads
        for _ in range(20):
            say(alice, "s", big)
        for _ in range(20):
            next_of(alice, {"msg"}, timeout=30)
    for t in readers:
        t.join(60)
    assert time.monotonic() - t0 < 30
    for c in (far, near):
        assert len([h for h in got[c] if h["type"] == "msg"]) == 300
        leaves = [h for h in got[c] if h["type"] == "presence" and h["event"] == "leave"]
        assert [h["nick"] for h in leaves] == ["slow"]
    frames = slow.frames_until_close(30)
    assert frames[-1][0]["type"] == "error" and frames[-1][0]["code"] == "slow_consumer"


def test_link_state_in_the_json_log(start_server, redis):
    srv = start_server("--no-auth", "--threads", "1", "--chat-redis", redis.url, "--log", "-",
                       "--log-format", "json")
    def events(name):
        out = []
        for line in srv.stderr_lines:
            if line.startswith("{"):
                rec = json.loads(line)
                if rec["event"] == name:
                    out.append(rec)
        return out
    assert wait_for(lambda: len(events("redis_up")) >= 2, timeout=10)
    assert sorted(r["link"] for r in events("redis_up")) == ["loop0", "reader"]
    assert all(r["redis"] == redis.url for r in events("redis_up"))
    redis.stop(signal.SIGKILL)
    assert wait_for(lambda: len(events("redis_down")) >= 2, timeout=10)
    assert all(r["reason"] for r in events("redis_down"))
    redis.start()
    assert wait_for(lambda: len(events("redis_up")) >= 4, timeout=15)


def test_reconnects_back_off(start_server):
    """A Redis that takes connections and drops them at once: each link
    tries again after 0.1 s, 0.2 s, 0.4 s ... (up to 2 s), not in a loop,
    and says it is down once, not once per try."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    lsock.settimeout(0.1)
    accepted = []
    stop = threading.Event()

    def drop_all():
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
            except socket.timeout:
                continue
            accepted.append(time.monotonic())
            conn.close()

    t = threading.Thread(target=drop_all)
    t.start()
    try:
        srv = start_server("--no-auth", "--threads", "1", "--chat-redis",
                           "redis://127.0.0.1:%d" % lsock.getsockname()[1], "--log", "-")
        # two links (loop0, reader), each at 0, 0.1, 0.3, 0.7 s: the 8th
        # try comes 0.7 s after the first (at a steady 0.1 s it would be
        # 0.3 s, with no backoff at once)
        assert wait_for(lambda: len(accepted) >= 8, timeout=10)
        first, eighth = accepted[0], accepted[7]
    finally:
        stop.set()
        t.join()
        lsock.close()
    assert eighth - first >= 0.6, accepted
    assert log_count(srv, "redis_down") == 2, srv.stderr_text()
    assert log_count(srv, "redis_up") == 0


@pytest.mark.no_tls
def test_password_file_and_a_wrong_password(start_server, tmp_path):
    r = Redis.__new__(Redis)
    r.dir = str(tmp_path / "redis")
    os.makedirs(r.dir)
    r.port = free_port()
    r.proc = subprocess.Popen(
        [REDIS_SERVER, "--port", str(r.port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", r.dir, "--requirepass", "s3cret word"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert wait_for(lambda: _answers(r.port), timeout=10)
        good, bad = tmp_path / "good", tmp_path / "bad"
        good.write_text("s3cret word\n")
        bad.write_text("wrong\n")
        srv = start_server("--no-auth", "--threads", "1", "--chat-redis", r.url + "/3",
                           "--chat-redis-password-file", str(good), "--log", "-")
        redis_up(srv, 2)
        alice, _ = member(srv, "p", "alice")
        say(alice, "p", "x")
        assert msgs_until(alice, 1) == [("alice", "x")]
        # the room is in DB 3, as the URL says, and nowhere else
        auth = ("AUTH", "s3cret word")
        assert redis_cmds(r.port, auth, ("SELECT", 3), ("XLEN", "sockit:{p}:log"))[-1] == 2
        assert redis_cmds(r.port, auth, ("DBSIZE",))[-1] == 0
        srv2 = start_server("--no-auth", "--threads", "1", "--chat-redis", r.url,
                            "--chat-redis-password-file", str(bad), "--log", "-")
        assert wait_for(lambda: "redis_down" in srv2.stderr_text(), timeout=10)
        assert "WRONGPASS" in srv2.stderr_text() or "invalid" in srv2.stderr_text()
        c = srv2.connect()
        c.hello()
        c.send({"type": "join", "room": "p", "nick": "bob"})
        head, _ = c.recv_frame(5)
        assert (head["type"], head["code"]) == ("error", "unavailable")
    finally:
        r.proc.terminate()
        r.proc.wait(10)


def _answers(port):
    try:
        redis_cmd(port, "PING", timeout=0.5)
    except RuntimeError:
        return True  # NOAUTH: it is up
    except OSError:
        return False
    return True


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "redis://", "redis://h:0",
                                 "redis://h:x", "redis://u:pw@127.0.0.1:6379", "unix:",
                                 "redis://127.0.0.1:6379/x"])
def test_bad_redis_url_is_refused_at_start(run_cli, url):
    r = run_cli("serve", "-l", "127.0.0.1:0", "--no-auth", "--chat-redis", url)
    assert r.returncode != 0
    assert "--chat-redis: want redis://HOST:PORT[/DB] or unix:PATH" in r.stderr


@pytest.mark.no_tls
def test_unix_socket_redis(start_server, tmp_path, short_dir):
    sock = os.path.join(short_dir, "r.sock")
    proc = subprocess.Popen(
        [REDIS_SERVER, "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        assert wait_for(lambda: os.path.exists(sock), timeout=10)
        a = start_server("--no-auth", "--threads", "1", "--chat-redis", "unix:" + sock,
                         "--log", "-")
        b = start_server("--no-auth", "--threads", "1", "--chat-redis", "unix:" + sock,
                         "--log", "-")
        redis_up(a, 2)
        redis_up(b, 2)
        alice, _ = member(a, "u", "alice")
        bob, joined = member(b, "u", "bob")
        assert sorted(joined["members"]) == ["alice", "bob"]
        say(bob, "u", "via unix")
        assert msgs_until(alice, 1) == [("bob", "via unix")]
    finally:
        proc.terminate()
        proc.wait(10)


def test_pipelined_join_and_says_then_ping_keep_their_order(shared, redis):
    (a,) = shared(1)
    c = a.connect()
    c.hello()
    # one write: the join, three says (answered by Redis later), a ping
    c.send_raw(sp.frame({"type": "join", "room": "p", "nick": "ann", "id": 1}) +
               b"".join(sp.frame({"type": "say", "room": "p", "id": 2 + i}, b"s%d" % i)
                        for i in range(3)) +
               sp.frame({"type": "ping", "id": 9}))
    frames = [c.recv_frame(5) for _ in range(5)]
    assert frames[0][0]["type"] == "joined" and frames[0][0]["id"] == 1
    kinds = [(h["type"], h.get("id"), b) for h, b in frames[1:]]
    msgs = [k for k in kinds if k[0] == "msg"]
    assert [b for _, _, b in msgs] == [b"s0", b"s1", b"s2"]
    assert [k[:2] for k in kinds if k[0] == "pong"] == [("pong", 9)]  # msgs are pushes
    # while Redis is down, pipelined says fail in order, each with its own id
    redis.stop(signal.SIGKILL)
    assert wait_for(lambda: log_count(a, "redis_down") >= 3, timeout=10), a.stderr_text()
    c.send_raw(b"".join(sp.frame({"type": "say", "room": "p", "id": 20 + i}, b"x")
                        for i in range(3)) + sp.frame({"type": "ping", "id": 30}))
    got = [c.recv_frame(5)[0] for _ in range(4)]
    assert [(h["type"], h.get("code"), h["id"]) for h in got] == [
        ("error", "unavailable", 20), ("error", "unavailable", 21),
        ("error", "unavailable", 22), ("pong", None, 30)]
