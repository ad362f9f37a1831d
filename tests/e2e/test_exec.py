"""End-to-end tests of remote command execution (issue 3; SPEC 4.6 and 3)
against the real binary: the exec service through the independent protocol
client (sockit_proto.py) and the `sockit exec` command."""

import os
import signal
import socket
import subprocess
import threading
import time

import pytest

import sockit_proto as sp
from conftest import SOCKIT_BIN, fd_count, rss_kib, signal_pending, wait_for

MiB = 1024 * 1024


# ---------------------------------------------------------------------------
# helpers


def asan_env():
    """Keep an ASan server's freed memory from counting as live (RSS test)."""
    opts = os.environ.get("ASAN_OPTIONS", "")
    return {"ASAN_OPTIONS": (opts + ":" if opts else "") + "quarantine_size_mb=1"}


@pytest.fixture
def root(tmp_path):
    d = tmp_path / "root"
    d.mkdir()
    return str(d)


@pytest.fixture
def exec_server(start_server, key_file, root):
    return start_server("--key-file", key_file, "--allow-exec", "--root", root,
                        env_extra=asan_env())


def authed(srv, secret, sock=None):
    c = sp.Client(sock) if sock is not None else srv.connect()
    c.handshake(secret)
    return c


def collect(c, timeout=10):
    """Frames of one exec until its exit: (stdout, stderr, exit head, frames)."""
    out, err, frames = bytearray(), bytearray(), []
    while True:
        head, body = c.recv_frame(timeout)
        frames.append((head, body))
        if head["type"] == "stdout":
            out += body
        elif head["type"] == "stderr":
            err += body
        else:
            return bytes(out), bytes(err), head, frames


def run(c, wait=10, **req):
    c.send(dict({"type": "exec"}, **req))
    return collect(c, wait)


def proc_state(pid):
    """'R', 'S', 'Z', ... or None when the process is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def dead(pid):
    return proc_state(pid) in (None, "Z", "X")


def children(ppid):
    """(pid, state) of every process whose parent is ppid."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == ppid:
            out.append((int(name), fields[0]))
    return out


# ---------------------------------------------------------------------------
# refused


@pytest.mark.no_tls
def test_forbidden_without_allow_exec(server, secret):
    with authed(server, secret) as c:
        assert "exec" not in c.hello_head["services"]
        c.send({"type": "exec", "argv": ["echo", "hi"], "id": 1})
        h = c.expect_error("forbidden")
        assert h["id"] == 1 and "--allow-exec" in h["message"], h
        assert c.ping()["type"] == "pong"  # still usable


@pytest.mark.no_tls
def test_forbidden_on_no_auth_server(start_server, root):
    srv = start_server("--no-auth", "--allow-exec", "--root", root)
    assert any("no-auth" in line for line in srv.stderr_lines), srv.stderr_text()
    with srv.connect() as c:
        c.hello()
        c.send({"type": "exec", "argv": ["echo", "hi"]})
        h = c.expect_error("forbidden")
        assert "authentication" in h["message"], h
        c.send({"type": "exec", "shell": "echo hi"})
        c.expect_error("forbidden")


@pytest.mark.no_tls
def test_stdin_and_signal_without_exec_are_bad_requests(exec_server, secret):
    with authed(exec_server, secret) as c:
        assert "exec" in c.hello_head["services"]
        c.send({"type": "stdin", "id": 1}, b"abc")
        assert c.expect_error("bad_request")["id"] == 1
        c.send({"type": "signal", "signal": "INT", "id": 2})
        assert c.expect_error("bad_request")["id"] == 2
        assert c.ping()["type"] == "pong"


@pytest.mark.parametrize("req", [
    {}, {"argv": []}, {"argv": "ls"}, {"argv": [1]}, {"shell": ""},
    {"argv": ["true"], "shell": "true"}, {"argv": ["true"], "timeout": -1},
    {"argv": ["true"], "env": {"A=B": "x"}}, {"argv": ["true"], "env": {"A": 1}},
    {"argv": ["true"], "stdin": "yes"},
])
@pytest.mark.no_tls
def test_bad_exec_requests(exec_server, secret, req):
    with authed(exec_server, secret) as c:
        c.send(dict({"type": "exec", "id": "r"}, **req))
        assert c.expect_error("bad_request")["id"] == "r"
        assert c.ping()["type"] == "pong"


# ---------------------------------------------------------------------------
# running programs


@pytest.mark.no_tls
def test_echo_hello(exec_server, secret):
    with authed(exec_server, secret) as c:
        out, err, ex, frames = run(c, argv=["echo", "hello"], id=9)
        assert (out, err) == (b"hello\n", b"")
        assert ex == {"type": "exit", "code": 0, "id": 9}
        assert all(h.get("id") == 9 for h, _ in frames)


@pytest.mark.no_tls
def test_streams_separate_and_exit_code_3(exec_server, secret):
    with authed(exec_server, secret) as c:
        out, err, ex, frames = run(
            c, argv=["sh", "-c", "echo one; echo two >&2; echo three; exit 3"])
        assert out == b"one\nthree\n" and err == b"two\n"
        assert ex == {"type": "exit", "code": 3}
        for h, body in frames[:-1]:
            assert h["type"] in ("stdout", "stderr") and h["size"] == len(body) > 0


@pytest.mark.no_tls
def test_missing_program_is_127(exec_server, secret):
    with authed(exec_server, secret) as c:
        out, err, ex, _ = run(c, argv=["/no/such/program-xyz", "a"])
        assert ex == {"type": "exit", "code": 127}
        assert out == b"" and b"program-xyz" in err and b"no such file" in err.lower()
        out, err, ex, _ = run(c, argv=["no-such-program-xyz"])  # PATH lookup
        assert ex["code"] == 127 and b"no-such-program-xyz" in err
        assert run(c, argv=["true"])[2] == {"type": "exit", "code": 0}


@pytest.mark.no_tls
def test_shell_form_with_pipe(exec_server, secret):
    with authed(exec_server, secret) as c:
        out, _, ex, _ = run(c, shell="printf 'b\\na\\nc\\n' | sort | tr a-z A-Z")
        assert (out, ex["code"]) == (b"A\nB\nC\n", 0)


@pytest.mark.no_tls
def test_raw_bytes_never_reencoded(exec_server, secret):
    with authed(exec_server, secret) as c:
        out, _, ex, _ = run(c, shell="printf '\\377\\000\\200abc'")
        assert (out, ex["code"]) == (b"\xff\x00\x80abc", 0)


@pytest.mark.no_tls
def test_cwd_env_and_no_leaked_fds(start_server, key_file, secret, root):
    srv = start_server("--key-file", key_file, "--allow-exec", "--root", root,
                       env_extra={"SOCKIT_SECRET_THING": "x", "KEEP_ME": "yes"})
    with authed(srv, secret) as c:
        out, _, ex, _ = run(c, argv=["pwd"])
        assert out.decode().strip() == os.path.realpath(root) and ex["code"] == 0
        out, _, _, _ = run(c, argv=["env"], env={"EXTRA": "1 2", "KEEP_ME": "over"})
        env = dict(line.split("=", 1) for line in out.decode().splitlines() if "=" in line)
        assert env["EXTRA"] == "1 2" and env["KEEP_ME"] == "over"
        assert not [k for k in env if k.startswith("SOCKIT_")], env
        # the child holds 0, 1, 2 and nothing of the server's
        out, _, _, _ = run(c, argv=["ls", "-l", "/proc/self/fd"])
        fds = [line.split()[-3::2] for line in out.decode().splitlines() if " -> " in line]
        extra = [(f, t) for f, t in fds if int(f) > 2]
        assert all(t.endswith("/fd") for f, t in extra), fds  # only ls's own dir


@pytest.mark.no_tls
def test_exec_log_line(start_server, key_file, secret, root, tmp_path):
    log = str(tmp_path / "conn.log")
    srv = start_server("--key-file", key_file, "--allow-exec", "--root", root, "--log", log)
    with authed(srv, secret) as c:
        run(c, argv=["sh", "-c", "echo abc; exit 4"])
        run(c, shell="echo x | cat")
    lines = wait_for(lambda: [l for l in open(log) if " exec " in l], 3)
    assert len(lines) == 2, lines
    assert 'argv="sh -c echo abc; exit 4"' in lines[0] and "code=4" in lines[0]
    assert "bytes_out=4" in lines[0] and "duration=" in lines[0]
    assert 'shell="echo x | cat"' in lines[1] and "code=0" in lines[1]


# ---------------------------------------------------------------------------
# stdin and backpressure


@pytest.mark.no_tls
def test_one_MiB_through_cat(exec_server, secret):
    data = os.urandom(MiB)
    with authed(exec_server, secret) as c:
        c.send({"type": "exec", "argv": ["cat"], "stdin": True})

        def feed():
            for i in range(0, len(data), 65536):
                c.send({"type": "stdin"}, data[i:i + 65536])
            c.send({"type": "stdin", "size": 0, "eof": True})

        t = threading.Thread(target=feed)
        t.start()
        out, err, ex, _ = collect(c, 20)
        t.join()
        assert out == data and err == b"" and ex == {"type": "exit", "code": 0}
        # the connection goes on; a second run with one big frame and eof on it
        c.send({"type": "exec", "shell": "wc -c", "stdin": True})
        c.send({"type": "stdin", "eof": True}, data[:300000])
        out, _, ex, _ = collect(c)
        assert (out.strip(), ex["code"]) == (b"300000", 0)


@pytest.mark.no_tls
def test_stdin_after_program_ended_is_dropped(exec_server, secret):
    with authed(exec_server, secret) as c:
        c.send({"type": "exec", "argv": ["true"], "stdin": True})
        assert collect(c)[2]["code"] == 0
        c.send({"type": "stdin"}, b"late")
        c.send({"type": "stdin", "size": 0, "eof": True})
        assert c.request({"type": "ping", "id": 1})[0] == {"type": "pong", "id": 1}


@pytest.mark.no_tls
def test_ten_MiB_slow_reader_complete_in_order_memory_bounded(exec_server, secret):
    pid = exec_server.proc.pid
    data = bytes(range(256)) * (10 * MiB // 256)
    gen = "import sys; sys.stdout.buffer.write(bytes(range(256)) * %d)" % (10 * MiB // 256)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)  # no kernel-side slack
    s.settimeout(10)
    s.connect(sp.parse_addr(exec_server.addr)[1])
    with authed(exec_server, secret, s) as c:
        run(c, argv=["true"])  # warm up
        base = rss_kib(pid)
        c.send({"type": "exec", "argv": ["python3", "-c", gen]})
        out, peak = bytearray(), base
        while True:
            head, body = c.recv_frame(20)
            if head["type"] != "stdout":
                break
            out += body
            if len(out) % (256 * 1024) < len(body):
                time.sleep(0.05)  # a slow reader: ~5 MB/s (the test: not a synchronisation)
                peak = max(peak, rss_kib(pid))
        assert head == {"type": "exit", "code": 0}, head
        assert bytes(out) == data
        assert peak - base < 4 * 1024, "server RSS grew by %d KiB" % (peak - base)


# ---------------------------------------------------------------------------
# time limits, signals, disconnects


@pytest.mark.no_tls
def test_timeout_kills_sleep(exec_server, secret):
    with authed(exec_server, secret) as c:
        t0 = time.monotonic()
        out, _, ex, _ = run(c, argv=["sleep", "30"], timeout=1)
        assert ex == {"type": "exit", "signal": 15, "timed_out": True}
        assert time.monotonic() - t0 < 4


@pytest.mark.no_tls
def test_timeout_kills_the_whole_group(exec_server, secret):
    with authed(exec_server, secret) as c:
        t0 = time.monotonic()
        out, _, ex, _ = run(c, shell="sleep 30 & echo $!; sleep 30", timeout=1)
        assert ex.get("timed_out") is True and ex["signal"] == 15, ex
        assert time.monotonic() - t0 < 4
        grandchild = int(out.split()[0])
        assert wait_for(lambda: dead(grandchild), 3), proc_state(grandchild)


@pytest.mark.no_tls
def test_a_child_that_left_the_group_is_not_waited_for(exec_server, secret):
    # a daemon-like child escapes the group (setsid) and keeps the pipes open:
    # the leader exited and its group is empty, so the request ends after one
    # grace second, long before its time limit
    with authed(exec_server, secret) as c:
        t0 = time.monotonic()
        out, _, ex, _ = run(c, shell="setsid sleep 30 & echo $!; exit 0", timeout=20)
        try:
            assert ex == {"type": "exit", "code": 0}, ex
            assert time.monotonic() - t0 < 4
            assert c.ping()["type"] == "pong"
        finally:
            os.kill(int(out.split()[0]), signal.SIGKILL)


# issue 15 item 9: `sleep 600 &` in five execs under --max-execs 2
# --exec-timeout 5 all exited 0 at once and the sleeps outlived every limit.
# Now the leader's exit ends its group (TERM, KILL 2 s later) and the exec
# holds its --max-execs slot until then.
BACKGROUND = "sleep 600 </dev/null >/dev/null 2>&1 & echo $!"
DEAF_BACKGROUND = "trap '' TERM; " + BACKGROUND  # the child inherits TERM ignored


@pytest.mark.no_tls
def test_background_children_end_with_the_program(start_server, key_file, secret, root):
    srv = start_server("--key-file", key_file, "--allow-exec", "--root", root,
                       "--max-execs", "2", "--exec-timeout", "5")
    pids, results = [], []

    def one(c):
        out, _, ex, _ = run(c, shell=BACKGROUND)
        results.append(ex)
        if ex.get("type") == "exit":
            pids.append(int(out))
        return ex.get("type") == "exit"

    with authed(srv, secret) as c:
        for _ in range(5):
            # the slot is held until the group is gone: at once where init
            # reaps promptly, at most the 2 s TERM grace where it does not
            assert wait_for(lambda: one(c), 4), results
            assert results[-1] == {"type": "exit", "code": 0}, results
            assert wait_for(lambda: dead(pids[-1]), 3), proc_state(pids[-1])
    assert len(pids) == 5 and all(dead(p) for p in pids)


@pytest.mark.no_tls
def test_background_child_deaf_to_term_holds_its_slot_until_killed(start_server, key_file,
                                                                   secret, root):
    srv = start_server("--key-file", key_file, "--allow-exec", "--root", root,
                       "--max-execs", "2", "--exec-timeout", "5")
    pids = []
    with authed(srv, secret) as a, authed(srv, secret) as b, authed(srv, secret) as third:
        t0 = time.monotonic()
        for c in (a, b):
            out, _, ex, _ = run(c, shell=DEAF_BACKGROUND)
            assert ex == {"type": "exit", "code": 0}, ex
            pids.append(int(out))
        assert not any(dead(p) for p in pids)
        third.send({"type": "exec", "argv": ["true"], "id": 1})
        assert third.expect_error("busy")["id"] == 1
        for p in pids:  # KILL 2 s after the leader's exit
            assert wait_for(lambda: dead(p), 4), proc_state(p)
        assert time.monotonic() - t0 >= 1.5
        assert wait_for(lambda: run(third, argv=["true"])[2].get("code") == 0, 3)


@pytest.mark.no_tls
def test_server_exec_timeout_is_the_ceiling(start_server, key_file, secret, root):
    srv = start_server("--key-file", key_file, "--allow-exec", "--root", root,
                       "--exec-timeout", "1")
    with authed(srv, secret) as c:
        t0 = time.monotonic()
        ex = run(c, argv=["sleep", "30"], timeout=100)[2]
        assert ex["timed_out"] is True and time.monotonic() - t0 < 4


@pytest.mark.no_tls
def test_signal_term(exec_server, secret):
    with authed(exec_server, secret) as c:
        c.send({"type": "exec", "shell": "echo started; exec sleep 30"})
        head, body = c.recv_frame()
        assert (head["type"], body) == ("stdout", b"started\n")
        c.send({"type": "signal", "signal": "TERM"})
        _, _, ex, _ = collect(c)
        assert ex == {"type": "exit", "signal": 15}
        c.send({"type": "exec", "argv": ["sleep", "30"], "id": 3})
        c.send({"type": "signal", "signal": "HUP", "id": 4})
        assert c.expect_error("bad_request")["id"] == 4
        c.send({"type": "signal", "signal": "KILL"})
        assert collect(c)[2] == {"type": "exit", "signal": 9, "id": 3}


@pytest.mark.no_tls
def test_client_disconnect_kills_the_program(exec_server, secret):
    c = authed(exec_server, secret)
    c.send({"type": "exec", "shell": "sleep 30 & echo $! $$; wait"})
    head, body = c.recv_frame()
    pids = [int(p) for p in body.split()]
    c.close()
    for pid in pids:
        assert wait_for(lambda: dead(pid), 3), (pid, proc_state(pid))
    with authed(exec_server, secret) as c2:
        assert run(c2, argv=["true"])[2]["code"] == 0


@pytest.mark.no_tls
def test_max_execs_busy(start_server, key_file, secret, root):
    srv = start_server("--key-file", key_file, "--allow-exec", "--root", root,
                       "--max-execs", "1")
    with authed(srv, secret) as a, authed(srv, secret) as b:
        a.send({"type": "exec", "shell": "echo up; exec sleep 30"})
        assert a.recv_frame()[1] == b"up\n"
        b.send({"type": "exec", "argv": ["true"], "id": 1})
        assert b.expect_error("busy")["id"] == 1
        a.send({"type": "signal", "signal": "KILL"})
        assert collect(a)[2]["signal"] == 9
        assert wait_for(lambda: run(b, argv=["true"])[2].get("code") == 0, 3)


@pytest.mark.no_tls
def test_500_runs_leave_no_zombie_and_no_fd(exec_server, secret):
    pid = exec_server.proc.pid
    with authed(exec_server, secret) as c:
        run(c, argv=["true"])  # first spawn: libuv's own lazily made descriptors
    seen = []

    def settled():  # the warm-up connection's socket is closed, nothing else moves
        seen.append(fd_count(pid))
        return len(seen) > 2 and seen[-1] == seen[-2] == seen[-3] and not children(pid)

    assert wait_for(settled, 10, 0.2)
    fds0 = seen[-1]
    with authed(exec_server, secret) as c:
        for i in range(500):
            kind = i % 5
            if kind == 0:
                ex = run(c, argv=["true"])[2]
                assert ex["code"] == 0
            elif kind == 1:
                assert run(c, argv=["no-such-program-xyz"])[2]["code"] == 127
            elif kind == 2:
                c.send({"type": "exec", "argv": ["cat"], "stdin": True})
                c.send({"type": "stdin"}, b"x" * 100)
                c.send({"type": "stdin", "size": 0, "eof": True})
                assert collect(c)[0] == b"x" * 100
            elif kind == 3:
                assert run(c, shell="echo a; echo b >&2; exit 2")[2]["code"] == 2
            else:
                c.send({"type": "exec", "argv": ["sleep", "5"]})
                c.send({"type": "signal", "signal": "KILL"})
                assert collect(c)[2]["signal"] == 9
    assert wait_for(lambda: fd_count(pid) == fds0, 10), (fd_count(pid), fds0)
    assert wait_for(lambda: not children(pid), 10), children(pid)


# ---------------------------------------------------------------------------
# the command


def cli(run_cli, srv, key_file, *args, **kw):
    return run_cli("exec", srv.addr, "--key-file", key_file, *args, **kw)


def test_cli_exit_codes(exec_server, key_file, run_cli, server):
    r = cli(run_cli, exec_server, key_file, "--", "sh", "-c", "echo out; echo err >&2; exit 42")
    assert (r.returncode, r.stdout, r.stderr) == (42, "out\n", "err\n")
    r = cli(run_cli, exec_server, key_file, "--shell", "kill -TERM $$")
    assert r.returncode == 128 + 15
    r = cli(run_cli, exec_server, key_file, "--", "ls", "-d", ".")
    assert (r.returncode, r.stdout) == (0, ".\n")
    r = cli(run_cli, exec_server, key_file, "--", "no-such-program-xyz")
    assert r.returncode == 127 and "no-such-program-xyz" in r.stderr
    r = cli(run_cli, exec_server, key_file, "--timeout", "1", "--", "sleep", "30")
    assert r.returncode == 128 + 15 and "time" in r.stderr
    # refused: one clear line, exit 255 (sockit's failure: 1 is the program's)
    r = run_cli("exec", server.addr, "--key-file", key_file, "--", "true")
    assert r.returncode == 255 and "--allow-exec" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = run_cli("exec", "127.0.0.1:1", "--key-file", key_file, "--", "true")
    assert r.returncode == 255
    r = run_cli("exec", exec_server.addr, "--key-file", key_file)
    assert r.returncode == 2


def test_cli_stdin(exec_server, key_file, run_cli):
    text = "".join("line %d\n" % i for i in range(20000))
    r = cli(run_cli, exec_server, key_file, "--stdin", "--", "sort", "-r", input=text)
    assert r.returncode == 0 and r.stdout == "".join(sorted(text.splitlines(True), reverse=True))
    r = cli(run_cli, exec_server, key_file, "--stdin", "--shell", "wc -l", input=text)
    assert r.stdout.strip() == "20000"


def test_cli_tar_pipe(exec_server, key_file, root, tmp_path, env):
    # the example: tar c dir | sockit exec --stdin -- tar x
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    blob = os.urandom(3 * MiB)
    (src / "sub" / "f.bin").write_bytes(blob)
    tar = subprocess.Popen(["tar", "c", "-C", str(tmp_path), "tree"], stdout=subprocess.PIPE)
    r = subprocess.run([SOCKIT_BIN, "exec", exec_server.addr, "--key-file", key_file, "--stdin",
                        "--", "tar", "x"], stdin=tar.stdout, capture_output=True, timeout=20,
                       env=env.make())
    tar.stdout.close()
    assert tar.wait() == 0 and r.returncode == 0, r.stderr
    with open(os.path.join(root, "tree", "sub", "f.bin"), "rb") as f:
        assert f.read() == blob


def _sigint_client(exec_server, key_file, env, shell, signals):
    p = subprocess.Popen(
        [SOCKIT_BIN, "exec", exec_server.addr, "--key-file", key_file, "--shell", shell],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env.make())
    assert p.stdout.readline() == b"ready\n"
    for _ in range(signals):
        p.send_signal(signal.SIGINT)
        # the client has taken this one (two at once could count as one)
        assert wait_for(lambda: not signal_pending(p.pid, signal.SIGINT), 5)
    out, err = p.communicate(timeout=10)
    return p.returncode, out


def test_cli_ctrl_c_sends_int(exec_server, key_file, env):
    rc, out = _sigint_client(exec_server, key_file, env,
                             "trap 'echo got INT; exit 7' INT; echo ready; "
                             "while :; do sleep 0.05; done", 1)
    assert (rc, out) == (7, b"got INT\n")


def test_cli_second_ctrl_c_sends_kill(exec_server, key_file, env):
    rc, out = _sigint_client(exec_server, key_file, env,
                             "trap '' INT; echo ready; while :; do sleep 0.05; done", 2)
    assert rc == 128 + 9


@pytest.mark.skipif(os.geteuid() != 0, reason="--exec-user needs a root server")
@pytest.mark.no_tls
def test_exec_user_runs_programs_as_that_user(start_server, key_file, secret):
    import pwd
    import shutil
    import tempfile
    nobody = pwd.getpwnam("nobody")
    root = tempfile.mkdtemp(prefix="sk-exec-", dir="/tmp")
    os.chmod(root, 0o755)
    try:
        warned = start_server("--key-file", key_file, "--allow-exec", "--root", root)
        assert any("--exec-user" in line for line in warned.stderr_lines), warned.stderr_text()
        srv = start_server("--key-file", key_file, "--allow-exec", "--root", root,
                           "--exec-user", "nobody")
        assert not any("warning" in line for line in srv.stderr_lines), srv.stderr_text()
        with authed(srv, secret) as c:
            out, _, ex, _ = run(c, shell="id -u; id -g; echo $USER")
            assert ex["code"] == 0
            assert out.decode().split() == [str(nobody.pw_uid), str(nobody.pw_gid), "nobody"]
    finally:
        shutil.rmtree(root, ignore_errors=True)
