"""The seed wire (SPEC 6): the tutorial's own Python programs, ported to
tests/e2e/seed/ with their wire behaviour unchanged, run against the real
server. Also the tutorial's sticky-packet demonstrations against the native
wire (SPEC 4.1)."""

import hashlib
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time

import pytest

import sockit_proto as sp
from conftest import Server, fd_count, sanitizer_report, wait_for, write_key

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = os.path.join(HERE, "seed")
TZ = "XST-8"
LISTEN = re.compile(r"^sockit: listening on (\S+)")  # a fixed zone both sides share, no tzdata needed


@pytest.fixture
def seed(sockit_bin, env, tmp_path):
    """seed(*services, extra=[...]) -> Server with one seed listener per
    service, in order; its key and root are on the Server object."""
    started = []

    def start(*services, extra=(), key=True):
        root = str(tmp_path / "root")
        argv = ["--root", root]
        secret = None
        if key:
            kf = str(tmp_path / "key")
            secret = write_key(kf)
            argv += ["--key-file", kf]
        argv += list(extra)
        for svc in services:
            argv += ["--wire", "seed", "--service", svc, "-l", "127.0.0.1:0"]
        srv = Server(argv, env.make(TZ=TZ), 0)
        started.append(srv)
        srv.secret, srv.root = secret, root
        want = len(services) + extra.count("-l")
        assert wait_for(lambda: len(listening(srv)) >= want or not srv.alive(), 10), srv.stderr_text()
        srv.addrs = listening(srv)
        assert len(srv.addrs) == want, srv.stderr_text()
        return srv

    yield start
    for srv in started:
        srv.stop()
        assert not sanitizer_report(srv.stderr_text()), srv.stderr_text()[-4000:]


def listening(srv):
    """Addresses from `sockit: listening on ADDR [(seed wire)]` lines."""
    return [m.group(1) for m in map(LISTEN.match, list(srv.stderr_lines)) if m]


def run_script(name, *args, timeout=30):
    r = subprocess.run([sys.executable, os.path.join(SEED, name)] + [str(a) for a in args],
                       capture_output=True, timeout=timeout, env=dict(os.environ, TZ=TZ))
    assert r.returncode == 0, r.stderr.decode("utf-8", "replace")
    return r.stdout.decode("utf-8").splitlines()


def local_strftime(ts):
    old = os.environ.get("TZ")
    os.environ["TZ"] = TZ
    time.tzset()
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


def connect(addr):
    host, port = addr.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def start_fails(sockit_bin, env, tmp_path, *args):
    kf = str(tmp_path / "key")
    write_key(kf)
    r = subprocess.run([sockit_bin, "serve", "--key-file", kf, "--root", str(tmp_path / "r"),
                        "--services", "echo"] + list(args), env=env.make(), capture_output=True, text=True, timeout=10)
    assert not sanitizer_report(r.stderr), r.stderr
    assert r.returncode != 0, r.stderr
    return r.stderr


# ---- time -------------------------------------------------------------------


def test_time_client_matches_strftime(seed):
    srv = seed("time")
    now = int(time.time())
    stamps = [0, 1700000000, now, 86399]
    lines = run_script("time_client.py", srv.addr, "--every", "0.05", *stamps)
    assert lines == ["%d\t%s" % (ts, local_strftime(ts)) for ts in stamps]


@pytest.mark.no_tls
def test_time_tolerates_whitespace_and_answers_garbage(seed):
    srv = seed("time")
    with connect(srv.addr) as s:
        s.sendall(b" 1700000000\r\n")
        assert s.recv(1024).decode() == local_strftime(1700000000)
        for junk in (b"soon", b"12:00", b"99999999999999999999999", b"\xff\xfe"):
            s.sendall(junk)
            reply = s.recv(1024)
            assert reply.startswith(b"error:") and reply.endswith(b"\n"), reply
            assert reply.count(b"\n") == 1
        s.sendall(b"0")  # still served after errors
        assert s.recv(1024).decode() == local_strftime(0)


# ---- exec -------------------------------------------------------------------


# As root, seed exec needs --exec-user (SPEC 6 v2): name ourselves.
ME = ["--exec-user", __import__("pwd").getpwuid(os.geteuid()).pw_name]


def test_exec_client_runs_commands_and_q_closes(seed):
    srv = seed("exec", extra=["--allow-exec"] + ME)
    lines = [json.loads(x) for x in run_script(
        "exec_client.py", srv.addr, "echo hi", "echo out; echo err >&2", "true", "pwd", "q")]
    assert lines[0] == {"cmd": "echo hi", "len": 3, "out": "hi\n"}
    assert lines[1] == {"cmd": "echo out; echo err >&2", "len": 8, "out": "out\nerr\n"}
    assert lines[2] == {"cmd": "true", "len": 0, "out": ""}  # struct.pack('i', 0), no body
    assert lines[3]["out"] == os.path.realpath(srv.root) + "\n"  # cwd is the file root
    assert lines[4] == {"closed": True}


@pytest.mark.no_tls
def test_exec_output_is_raw_bytes_and_timeout_kills_the_group(seed):
    srv = seed("exec", extra=["--allow-exec", "--exec-timeout", "1"] + ME)
    with connect(srv.addr) as s:
        s.sendall(b"printf '\\377\\000\\001'")
        n = struct.unpack("i", s.recv(4))[0]
        assert n == 3 and sp_recv_exact(s, n) == b"\xff\x00\x01"
        t0 = time.monotonic()
        s.sendall(b"sleep 30 & sleep 30; echo late")
        n = struct.unpack("i", s.recv(4))[0]
        assert n == 0 and time.monotonic() - t0 < 10


def sp_recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        assert chunk, "closed early"
        buf += chunk
    return buf


@pytest.mark.skipif(os.geteuid() != 0, reason="--exec-user needs a root server")
@pytest.mark.no_tls
def test_exec_runs_commands_as_exec_user(seed):
    import pwd
    import shutil
    import tempfile
    nobody = pwd.getpwnam("nobody")
    root = tempfile.mkdtemp(prefix="sk-seed-exec-", dir="/tmp")  # nobody must enter it
    os.chmod(root, 0o755)
    try:
        srv = seed("exec", extra=["--allow-exec", "--root", root, "--exec-user", "nobody"])
        assert not any("warning: --allow-exec" in line for line in srv.stderr_lines)
        with connect(srv.addr) as s:
            s.sendall(b"id -u; id -g")
            n = struct.unpack("i", sp_recv_exact(s, 4))[0]
            assert sp_recv_exact(s, n).decode().split() == [str(nobody.pw_uid),
                                                           str(nobody.pw_gid)]
    finally:
        shutil.rmtree(root, ignore_errors=True)


# issue 15 item 7: seed exec as root ran every command as root for anyone
# who could connect, with only a warning.
@pytest.mark.skipif(os.geteuid() != 0, reason="needs a root server")
def test_exec_as_root_refuses_to_start_without_exec_user(sockit_bin, env, tmp_path):
    err = start_fails(sockit_bin, env, tmp_path, "--allow-exec", "--wire", "seed", "--service",
                      "exec", "-l", "127.0.0.1:0")
    assert "--exec-user" in err and "root" in err, err


def test_exec_refused_without_allow_exec(sockit_bin, env, tmp_path):
    err = start_fails(sockit_bin, env, tmp_path, "--wire", "seed", "--service", "exec",
                      "-l", "127.0.0.1:0")
    assert "--allow-exec" in err


# ---- put --------------------------------------------------------------------


def test_put_client_20mib_lands_intact(seed, tmp_path):
    srv = seed("put")
    src = tmp_path / "big.bin"
    data = os.urandom(20 << 20)
    src.write_bytes(data)
    run_script("put_client.py", srv.addr, src)
    target = os.path.join(srv.root, "big.bin")
    assert wait_for(lambda: os.path.exists(target), 10)
    with open(target, "rb") as f:
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest()
    assert os.listdir(srv.root) == ["big.bin"]  # no part file left


def test_put_hostile_name_lands_inside_root(seed, tmp_path):
    srv = seed("put")
    src = tmp_path / "x.txt"
    src.write_bytes(b"evil bytes\n")
    run_script("put_client.py", srv.addr, src, "--as", "../../evil")
    run_script("put_client.py", srv.addr, src, "--as", "C:\\Users\\me\\win.txt")
    assert wait_for(lambda: sorted(os.listdir(srv.root)) == ["evil", "win.txt"], 10)
    with open(os.path.join(srv.root, "evil"), "rb") as f:
        assert f.read() == b"evil bytes\n"
    assert not os.path.exists(os.path.join(os.path.dirname(srv.root), "evil"))


def send_put(addr, head, body=b"", close=True):
    s = connect(addr)
    raw = json.dumps(head).encode("utf-8")
    s.sendall(struct.pack("i", len(raw)) + raw + body)
    if close:
        s.close()
    return s


@pytest.mark.parametrize("name", [".hidden", "..", "a/", "/", "dir/."])
@pytest.mark.no_tls
def test_put_refuses_names_without_a_plain_base(seed, name):
    srv = seed("put")
    s = send_put(srv.addr, {"filepath": "", "filename": name, "filesize": 3}, b"abc", close=False)
    s.settimeout(5)
    assert s.recv(10) == b""  # closed, nothing answered
    s.close()
    assert os.listdir(srv.root) == []


@pytest.mark.no_tls
def test_put_cut_short_leaves_nothing(seed):
    srv = seed("put")
    cut = send_put(srv.addr, {"filepath": "", "filename": "half", "filesize": 1000}, b"x" * 10,
                   close=False)
    cut.shutdown(socket.SHUT_WR)  # cut short: the server sees the end after 10 bytes
    assert cut.recv(10) == b""  # and has closed its side: it is done with the upload
    cut.close()
    bad = struct.pack("i", 1 << 30)  # a head length over the limit: closed before allocating
    with connect(srv.addr) as s:
        s.sendall(bad)
        assert s.recv(10) == b""
    assert wait_for(lambda: os.listdir(srv.root) == [], 10)


# issue 15 item 7: a seed put replaced any file of that name under the root,
# for anyone who could reach the listener.
def test_put_never_replaces_an_existing_file(seed):
    srv = seed("put")
    with open(os.path.join(srv.root, "a.txt"), "wb") as f:
        f.write(b"old")
    want = ["a.txt"]
    for i, name in enumerate(["a.txt", "a.txt", "a.txt", "noext", "noext"]):
        send_put(srv.addr, {"filepath": "", "filename": name, "filesize": 2}, b"n%d" % i)
        want.append(name if i == 3 else
                    ("a (%d).txt" % (i + 1) if name == "a.txt" else "noext (1)"))
        assert wait_for(lambda: sorted(os.listdir(srv.root)) == sorted(want), 10), \
            (os.listdir(srv.root), want)
    contents = {n: open(os.path.join(srv.root, n), "rb").read() for n in want}
    assert contents == {"a.txt": b"old", "a (1).txt": b"n0", "a (2).txt": b"n1",
                        "a (3).txt": b"n2", "noext": b"n3", "noext (1)": b"n4"}


# issue 14 item 2: the seed put had its own upload engine, which neither
# claimed the name against other uploads nor fsynced the folder. It now runs
# the files service's upload job: a seed put and a native put of one name
# at the same time, one wins and the other is refused, never a mixed file.
@pytest.mark.no_tls
def test_put_claims_the_name_against_native_puts(seed):
    srv = seed("put", extra=["--no-auth", "--no-tls", "-l", "127.0.0.1:0"], key=False)
    native, seed_addr = srv.addrs  # the native -l comes first on the command line
    root = srv.root

    def part(name):
        return os.path.join(root, ".%s.sockit-part" % name)

    # the seed put holds "a.bin": a native put of it is refused, busy
    s = send_put(seed_addr, {"filepath": "", "filename": "a.bin", "filesize": 6}, b"see",
                 close=False)
    # its part file is its own (.a.bin.sockit-seed-XXXXXX): there once the name is claimed
    assert wait_for(lambda: any(n.startswith(".a.bin.sockit-seed-") for n in os.listdir(root)))
    with sp.Client.connect(native) as c:
        c.hello()
        c.send({"type": "put", "name": "a.bin", "total": 3, "offset": 0}, b"nat")
        c.send({"type": "put_end"})
        c.expect_error("busy")
    s.sendall(b"d!!")
    s.close()
    assert wait_for(lambda: os.listdir(root) == ["a.bin"]), os.listdir(root)
    assert open(os.path.join(root, "a.bin"), "rb").read() == b"seed!!"

    # a native put holds "b.bin": the seed put of it is closed, nothing saved
    with sp.Client.connect(native) as c:
        c.hello()
        c.send_raw(sp.frame({"type": "put", "name": "b.bin", "total": 6, "offset": 0,
                             "size": 6}, b"", set_size=False) + b"nat")
        assert wait_for(lambda: os.path.exists(part("b.bin")))
        s = send_put(seed_addr, {"filepath": "", "filename": "b.bin", "filesize": 3}, b"xyz",
                     close=False)
        s.settimeout(5)
        assert s.recv(10) == b""
        s.close()
        assert sorted(os.listdir(root)) == [".b.bin.sockit-part", "a.bin"]
        c.send_raw(b"ive")
        c.send({"type": "put_end"})
        c.expect("put_ok")
    assert open(os.path.join(root, "b.bin"), "rb").read() == b"native"
    assert sorted(os.listdir(root)) == ["a.bin", "b.bin"]


# ---- auth -------------------------------------------------------------------


def test_auth_client_wrong_key_then_right_key(seed):
    srv = seed("auth")
    lines = run_script("auth_client.py", srv.addr, "wrong", srv.secret.decode())
    assert len(lines[0]) == 20 and lines[0].isdigit()  # a wide challenge, not 0-99
    assert lines[1:] == ["验证失败", "验证成功"]


def test_auth_challenges_differ_and_q_closes(seed):
    srv = seed("auth")
    first = run_script("auth_client.py", srv.addr, "q")
    second = run_script("auth_client.py", srv.addr, "q")
    assert first[1:] == ["closed"] and second[1:] == ["closed"]
    assert first[0] != second[0]


@pytest.mark.no_tls
def test_auth_five_failures_close_and_rate_limit(seed):
    srv = seed("auth")
    lines = run_script("auth_client.py", srv.addr, *["wrong%d" % i for i in range(5)])
    assert lines[1:] == ["验证失败"] * 5
    with connect(srv.addr) as s:  # the address is banned now: no challenge at all
        assert s.recv(1024) == b""


def test_auth_needs_a_key(sockit_bin, env, tmp_path):
    r = subprocess.run([sockit_bin, "serve", "--no-auth", "--root", str(tmp_path / "r"),
                        "--services", "echo",
                        "--wire", "seed", "--service", "auth", "-l", "127.0.0.1:0"],
                       env=env.make(), capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "key" in r.stderr


# ---- chat -------------------------------------------------------------------


def test_chat_two_tutorial_clients(seed):
    srv = seed("chat")
    peer = subprocess.Popen([sys.executable, os.path.join(SEED, "chat_peer.py"), srv.addr,
                             "你好", "well"], stdout=subprocess.PIPE)
    assert peer.stdout.readline().strip() == b"ready"
    out = run_script("chat_client.py", srv.addr, "hi", "how are you", "ok")
    peer_out, _ = peer.communicate(timeout=20)
    assert out == ["柚柚柚切克闹:你好", "柚柚柚切克闹:well", "柚柚柚切克闹:bye"]
    assert peer_out.decode("utf-8").splitlines() == [
        "cool:hi", "cool:how are you", "cool:ok", "cool:bye"]


@pytest.mark.no_tls
def test_chat_reaches_every_other_member_only(seed):
    srv = seed("chat")
    fds = fd_count(srv.proc.pid)
    a, b, c = connect(srv.addr), connect(srv.addr), connect(srv.addr)
    # members once the server has accepted them (on one loop, which takes a
    # connection into the room as it accepts it)
    assert wait_for(lambda: fd_count(srv.proc.pid) >= fds + 3, 10)
    a.sendall("大家好".encode("utf-8"))
    assert b.recv(1024).decode("utf-8") == "大家好"
    assert c.recv(1024).decode("utf-8") == "大家好"
    a.settimeout(0.3)
    with pytest.raises(socket.timeout):
        a.recv(1024)  # not back to the sender
    for s in (a, b, c):
        s.close()


def recv_until(s, n, timeout=5):
    s.settimeout(timeout)
    buf = b""
    while len(buf) < n:
        chunk = s.recv(4096)
        assert chunk, buf
        buf += chunk
    return buf


# issue 15 item 7: a member could clear the others' screens, retitle their
# windows or write their clipboard (OSC 52) through the broker.
def test_chat_replaces_control_characters(seed):
    srv = seed("chat")
    a, b = connect(srv.addr), connect(srv.addr)
    # a was accepted (and joined) before b, whose bytes are read after its
    # own accept: a hears b, so both are members now
    b.sendall(b"\n")
    assert recv_until(a, 1) == b"\n"
    a.sendall(b"\x1b]52;c;ZXZpbA==\x07\x1b[2J\r\n\xc2\x9b31m\x7f\xe4\xbd\xa0ok\tend\n")
    want = ("\ufffd]52;c;ZXZpbA==\ufffd\ufffd[2J\ufffd\n\ufffd31m\ufffd你ok\tend\n").encode()
    assert recv_until(b, len(want)) == want
    a.sendall(b"x\xc2")  # a C1 control split across two reads is caught too
    assert recv_until(b, 1) == b"x"
    a.sendall(b"\x9by")
    assert recv_until(b, 4) == "\ufffdy".encode()
    a.close()
    b.close()


def test_seed_unix_socket_is_mode_0600(seed, short_dir):
    path = os.path.join(short_dir, "chat.sock")
    seed("chat", extra=["--wire", "seed", "--service", "chat", "-l", "unix:" + path])
    assert os.stat(path).st_mode & 0o777 == 0o600


# ---- start-up rules ---------------------------------------------------------


def test_seed_refuses_non_loopback_without_public_flag(sockit_bin, env, tmp_path):
    err = start_fails(sockit_bin, env, tmp_path, "--wire", "seed", "--service", "time",
                      "-l", "0.0.0.0:0")
    assert "--wire-seed-public" in err


def test_seed_public_flag_and_one_warning(seed):
    srv = seed("time", "chat", extra=["--wire-seed-public"])
    assert srv.alive()
    warnings = [x for x in srv.stderr_lines if "warning" in x and "seed" in x]
    assert len(warnings) == 1 and "insecure" in warnings[0] and "unframed" in warnings[0]


@pytest.mark.no_tls
def test_seed_beside_native_and_graceful_stop(seed):
    # the native one comes first; plain: raw frames from Python below
    srv = seed("time", "chat", extra=["-l", "127.0.0.1:0", "--no-tls"])
    conns = [connect(a) for a in srv.addrs[1:]]
    conns[0].sendall(b"0")
    assert conns[0].recv(1024).decode() == local_strftime(0)
    with sp.Client.connect(srv.addrs[0]) as c:
        c.handshake(srv.secret)
        assert c.echo(b"x") == b"x"
    t0 = time.monotonic()
    assert srv.terminate(signal.SIGTERM, 10.0) == 0
    assert time.monotonic() - t0 < 5
    for s in conns:
        s.close()


# ---- the tutorial's sticky packets, on the native wire ----------------------


@pytest.mark.no_tls
def test_native_wire_two_quick_sends_in_one_read(start_server, key_file, secret):
    """黏包 case 1: b'hello' and b'aike' sent back to back arrive as one read;
    framed, they stay two messages."""
    srv = start_server("--key-file", key_file)
    with srv.connect() as c:
        c.handshake(secret)
        c.send_raw(sp.frame({"type": "echo", "id": 1}, b"hello") +
                   sp.frame({"type": "echo", "id": 2}, b"aike"))
        h1, b1 = c.recv_frame()
        h2, b2 = c.recv_frame()
        assert (h1["id"], b1, h2["id"], b2) == (1, b"hello", 2, b"aike")


@pytest.mark.no_tls
def test_native_wire_message_split_across_reads(start_server, key_file, secret):
    """黏包 case 2: a message that arrives in small pieces is still one."""
    srv = start_server("--key-file", key_file)
    with srv.connect() as c:
        c.handshake(secret)
        data = sp.frame({"type": "echo", "id": 3}, b"hello") + sp.frame({"type": "ping"})
        c.send_bytewise(data, delay=0.0005)
        h, body = c.recv_frame()
        assert (h["id"], body) == (3, b"hello")
        assert c.recv_frame()[0]["type"] == "pong"


# ---- limits and transports --------------------------------------------------


@pytest.mark.no_tls
def test_seed_idle_timeout_and_max_file(seed, tmp_path):
    srv = seed("time", "put", extra=["--idle-timeout", "1", "--max-file", "10"])
    with connect(srv.addrs[0]) as s:
        s.settimeout(5)
        t0 = time.monotonic()
        assert s.recv(10) == b""  # closed for idleness
        assert time.monotonic() - t0 < 4
    s = send_put(srv.addrs[1], {"filepath": "", "filename": "big", "filesize": 11}, b"x" * 11,
                 close=False)
    s.settimeout(5)
    assert s.recv(10) == b""
    s.close()
    assert os.listdir(srv.root) == []


@pytest.mark.no_tls
def test_seed_over_unix_socket(sockit_bin, env, tmp_path, short_dir):
    path = os.path.join(short_dir, "seed.sock")
    kf = str(tmp_path / "key")
    write_key(kf)
    srv = Server(["--key-file", kf, "--root", str(tmp_path / "r"), "--wire", "seed", "--service",
                  "time", "-l", "unix:" + path], env.make(TZ=TZ), 0)
    try:
        assert wait_for(lambda: listening(srv) or not srv.alive(), 10)
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(path)
            s.sendall(b"86400")
            assert s.recv(1024).decode() == local_strftime(86400)
    finally:
        srv.stop()
    assert not sanitizer_report(srv.stderr_text()), srv.stderr_text()
