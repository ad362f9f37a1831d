"""Every program in examples/ (issue 10), run against `sockit serve` or
against the example server itself, with concrete output checked.

The binaries come from $SOCKIT_EXAMPLES_DIR, else the `examples` folder
beside $SOCKIT_BIN, else build/examples of this tree (`make examples` builds
them; `make test` does so first). A missing binary fails its test."""

import os
import queue
import re
import signal
import subprocess
import threading
import time

import pytest

import sockit_proto as sp
from conftest import SOCKIT_BIN, sanitizer_report, wait_for, write_key

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCES = sorted(f[:-2] for f in os.listdir(os.path.join(ROOT, "examples")) if f.endswith(".c"))
LISTEN_RE = re.compile(r"^sockit: listening on (\S+)\s*$")
TIME_RE = re.compile(r"^(\d+) -> (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)$")


def examples_dir():
    """$SOCKIT_EXAMPLES_DIR; else beside the binary under test when they were
    built there (CMake makes the folder either way); else build/examples."""
    if os.environ.get("SOCKIT_EXAMPLES_DIR"):
        return os.environ["SOCKIT_EXAMPLES_DIR"]
    beside = os.path.join(os.path.dirname(os.path.abspath(SOCKIT_BIN)), "examples")
    if any(os.access(os.path.join(beside, n), os.X_OK) for n in SOURCES):
        return beside
    return os.path.join(ROOT, "build", "examples")


EXAMPLES = examples_dir()


@pytest.fixture(scope="module", autouse=True)
def built():
    if not os.path.isdir(EXAMPLES):
        pytest.skip("no examples built in %s (make examples)" % EXAMPLES)


def example(name):
    path = os.path.join(EXAMPLES, name)
    assert os.access(path, os.X_OK), "%s not built (make examples)" % path
    return path


def test_every_example_is_built():
    missing = [n for n in SOURCES if not os.access(os.path.join(EXAMPLES, n), os.X_OK)]
    assert missing == [], "examples/*.c without a binary in %s" % EXAMPLES


class ExampleServer:
    """An example server program started on 127.0.0.1:0; its address is read
    from the framework's `sockit: listening on ADDR` line on stderr."""

    def __init__(self, argv, env):
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self.out, self.err, self._q = [], [], queue.Queue()
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()
        self.addr = self._wait_listening(argv)

    def _pump(self, stream, sink):
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            sink.append(line)
            self._q.put(line)
        self._q.put(None)

    def _wait_listening(self, argv):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                line = self._q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            m = LISTEN_RE.match(line or "")
            if m:
                return m.group(1)
        self.stop()
        raise RuntimeError("%r never listened:\n%s" % (argv, "\n".join(self.err)))

    def wait_stdout(self, line, timeout=5.0):
        return wait_for(lambda: line in self.out, timeout)

    def wait_stdout_prefix(self, prefix, timeout=5.0):
        return wait_for(lambda: any(line.startswith(prefix) for line in self.out), timeout)

    def stop(self):
        """SIGTERM (a graceful stop, exit 0) and the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(timeout=5)


@pytest.fixture
def start_example(env):
    started = []

    def start(name, *args):
        srv = ExampleServer([example(name), "127.0.0.1:0"] + list(args), env.make())
        started.append(srv)
        return srv

    yield start
    for srv in started:
        rc = srv.stop()
        text = "\n".join(srv.err)
        assert not sanitizer_report(text), text
        assert rc == 0, "example server exited %s:\n%s" % (rc, text)


@pytest.fixture
def run_example(env):
    """run_example(name, *args, key=None, input=None) -> CompletedProcess."""

    def run(name, *args, key=None, input=None, timeout=20):
        r = subprocess.run([example(name)] + [str(a) for a in args],
                           env=env.make(SOCKIT_KEY_FILE=key), input=input,
                           capture_output=True, text=True, timeout=timeout)
        assert not sanitizer_report(r.stderr), r.stderr
        return r

    return run


# ---- echo: server and client ------------------------------------------------


def test_echo_client_against_echo_server(start_example, run_example):
    srv = start_example("echo_server")
    r = run_example("echo_client", srv.addr)
    assert (r.returncode, r.stdout) == (0, "很高兴认识你\n"), r.stderr
    r = run_example("echo_client", srv.addr, "hello aike")
    assert (r.returncode, r.stdout) == (0, "hello aike\n"), r.stderr


def test_echo_server_with_a_key(start_example, run_example, key_file, tmp_path):
    srv = start_example("echo_server", key_file)
    # a library server with a key speaks TLS keyed by it (SPEC 8)
    with sp.Client.tls_psk(srv.addr, sp.load_secret(key_file)) as c:
        assert c.hello()["auth"] == "tls-psk"
        assert c.hello_head["services"] == ["echo"]
    r = run_example("echo_client", srv.addr, "with key", key=key_file)
    assert (r.returncode, r.stdout) == (0, "with key\n"), r.stderr
    other = str(tmp_path / "other")
    write_key(other)
    r = run_example("echo_client", srv.addr, key=other)
    assert r.returncode == 1 and r.stdout == ""
    assert "authentication failed" in r.stderr


def test_echo_client_against_sockit_serve(server, run_example, key_file):
    r = run_example("echo_client", server.addr, "über 𝄞", key=key_file)
    assert (r.returncode, r.stdout) == (0, "über 𝄞\n"), r.stderr


def test_echo_client_connection_refused(run_example):
    from conftest import free_port
    r = run_example("echo_client", "127.0.0.1:%d" % free_port())
    assert r.returncode == 1
    assert "refused" in r.stderr.lower()


# ---- the time client ----------------------------------------------------------


def test_time_client_every_second(server, run_example, key_file):
    t0 = time.time()
    r = run_example("time_client", server.addr, 1, 3, key=key_file)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 3, r.stdout
    stamps = []
    for line in lines:
        m = TIME_RE.match(line)
        assert m, line
        ts = int(m.group(1))
        assert m.group(2) == time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
        stamps.append(ts)
    assert stamps == sorted(stamps) and stamps[-1] - stamps[0] >= 1
    assert time.time() - t0 >= 2.0  # it really waited between requests


# ---- the HMAC-authenticated client ---------------------------------------------


def test_auth_client(server, run_example, key_file, tmp_path):
    r = run_example("auth_client", server.addr, key_file)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("验证成功 (authenticated): sockit ")
    assert r.stdout.rstrip().endswith("auth tls-psk")  # TLS keyed by the secret (SPEC 8)
    wrong = str(tmp_path / "wrong")
    write_key(wrong)
    r = run_example("auth_client", server.addr, wrong)
    assert r.returncode == 1
    assert r.stdout.startswith("验证失败 (authentication failed):")


def test_auth_client_usage(run_example):
    r = run_example("auth_client")
    assert r.returncode == 2 and "usage: auth_client ADDR KEY_FILE" in r.stderr


# ---- the raw codec ----------------------------------------------------------------


@pytest.mark.no_tls
def test_raw_codec_glued_frames(start_server, run_example):
    srv = start_server("--no-auth")
    r = run_example("raw_codec", srv.addr)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert re.fullmatch(r"hello from sockit \S+, auth none", lines[0]), lines
    assert lines[1:] == ["echo 5 bytes: hello", "echo 4 bytes: aike"]


# ---- a service of your own: the key-value store -------------------------------


def kv(c, head, body=b""):
    c.send(head, body)
    return c.recv_frame()


@pytest.mark.no_tls
def test_kv_server(start_example):
    srv = start_example("kv_server")
    with sp.Client.connect(srv.addr) as c:
        hello = c.hello()
        assert hello["auth"] == "none" and hello["services"] == ["kv"]
        assert kv(c, {"type": "kv_set", "key": "name"}, "柚柚".encode()) == ({"type": "set_ok"}, b"")
        assert kv(c, {"type": "kv_get", "key": "name", "id": 7}) == (
            {"type": "value", "size": 6, "id": 7}, "柚柚".encode())
        assert kv(c, {"type": "kv_get", "key": "nope"})[0]["code"] == "not_found"
        assert kv(c, {"type": "kv_get"})[0]["code"] == "bad_request"
        assert kv(c, {"type": "kv_set", "key": "big"}, b"x" * 1025)[0]["code"] == "too_large"
        assert kv(c, {"type": "kv_set", "key": "empty"}) == ({"type": "set_ok"}, b"")
        assert kv(c, {"type": "kv_get", "key": "empty"})[0]["type"] == "value"
        assert kv(c, {"type": "echo"}, b"x")[0]["code"] == "unknown_type"  # no built-ins
    with sp.Client.connect(srv.addr) as c:  # the store outlives connections
        c.hello()
        assert kv(c, {"type": "kv_get", "key": "name"})[1] == "柚柚".encode()
        port = c.local_port
    assert srv.wait_stdout("disconnected: 127.0.0.1:%d" % port)
    assert any(line.startswith("connected: 127.0.0.1:") for line in srv.out)


# ---- a server on the application's own libuv loop ---------------------------------


@pytest.mark.no_tls
def test_loop_server_runs_on_the_applications_loop(start_example):
    # sk_server_run_on: the handler answers with the count of the
    # application's own 100 ms timer, so the count moving between two
    # answers shows both run on the one loop; the application's SIGTERM
    # watcher stops the server, whose done callback ends the program
    srv = start_example("loop_server")
    with sp.Client.connect(srv.addr) as c:
        hello = c.hello()
        assert hello["auth"] == "none" and hello["services"] == ["uptime"]
        head, body = kv(c, {"type": "uptime", "id": 1})
        assert (set(head), head["type"], head["id"], body) == ({"type", "ticks", "id"}, "uptime", 1, b"")
        first = head["ticks"]
        assert isinstance(first, int) and first >= 0
        assert wait_for(lambda: kv(c, {"type": "uptime"})[0]["ticks"] > first, timeout=5)
        assert kv(c, {"type": "echo"}, b"x")[0]["code"] == "unknown_type"
    assert srv.stop() == 0
    assert srv.wait_stdout_prefix("server stopped after ")


# ---- the remote command runner -------------------------------------------------


def test_exec_client(start_server, run_example, key_file):
    srv = start_server("--key-file", key_file, "--allow-exec")
    r = run_example("exec_client", srv.addr, key=key_file,
                    input="echo hi 你好\n\necho err >&2; exit 3\nkill -TERM $$\nq\necho never\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hi 你好\n[exit 0]\n[exit 3]\n[exit 143]\n"
    assert "err\n" in r.stderr and "never" not in r.stdout


def test_exec_client_refused_without_allow_exec(server, run_example, key_file):
    r = run_example("exec_client", server.addr, key=key_file, input="echo hi\n")
    assert r.returncode == 1 and r.stdout == ""
    assert "exec_client: " in r.stderr


# ---- the large-file upload ---------------------------------------------------------


def test_put_file(server, run_example, key_file, env, tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    src = tmp_path / "2016_01_05_22_21_IMG_1333.JPG"
    src.write_bytes(data)
    r = run_example("put_file", server.addr, str(src), key=key_file)
    assert r.returncode == 0, r.stderr
    import hashlib
    digest = hashlib.sha256(data).hexdigest()
    assert r.stdout == "uploaded %s: %d bytes (0 resumed), sha256:%s\n" % (src.name, len(data),
                                                                           digest)
    stored = os.path.join(env.data, "sockit", "files", src.name)
    with open(stored, "rb") as f:
        assert f.read() == data
    r = run_example("put_file", server.addr, str(src), "../escape", key=key_file)
    assert r.returncode == 1 and r.stdout == "" and r.stderr.startswith("put_file: ")


# ---- the chat pair, over TCP and UDP ---------------------------------------------


class Interactive:
    """A running example with a stdin pipe and its stdout read line by line."""

    def __init__(self, argv, env):
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for raw in self.proc.stdout:
            self.lines.put(raw.decode("utf-8", "replace").rstrip("\n"))

    def expect(self, want, timeout=5.0):
        """Read lines until want; returns the lines skipped before it."""
        skipped, deadline = [], time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("no %r within %.0fs; got %r" % (want, timeout, skipped))
            if line == want:
                return skipped
            skipped.append(line)

    def say(self, text):
        self.proc.stdin.write((text + "\n").encode())
        self.proc.stdin.flush()

    def finish(self, timeout=10):
        """Close stdin and wait: exit status and stderr."""
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
        rc = self.proc.wait(timeout=timeout)
        return rc, self.proc.stderr.read().decode("utf-8", "replace")


def chat_pair(start, env, name, addr):
    a = Interactive([example(name), addr, "cool"], env.make())
    a.expect("joined lobby as cool")
    b = Interactive([example(name), addr, "柚柚柚切克闹"], env.make())
    b.expect("joined lobby as 柚柚柚切克闹")
    return a, b


def check_chat(a, b, left_word):
    a.expect("* 柚柚柚切克闹 %s" % ("joined" if left_word == "left" else "join"))
    a.say("你好")
    b.expect("cool: 你好")
    a.expect("cool: 你好")  # the sender gets its own message, in the room's order
    b.say("bye")
    assert b.finish() == (0, "")
    a.expect("柚柚柚切克闹: bye")
    a.expect("* 柚柚柚切克闹 %s" % ("left" if left_word == "left" else "leave"))
    assert a.finish() == (0, "")


def test_chat_pair_tcp(start_example, env):
    srv = start_example("chat_server")
    a, b = chat_pair(start_example, env, "chat_client", srv.addr)
    check_chat(a, b, "left")


def test_chat_client_nick_taken(start_example, env):
    srv = start_example("chat_server")
    a = Interactive([example("chat_client"), srv.addr, "cool"], env.make())
    a.expect("joined lobby as cool")
    b = Interactive([example("chat_client"), srv.addr, "cool"], env.make())
    rc, err = b.finish()
    assert rc == 1 and err.startswith("chat_client: ")
    assert a.finish()[0] == 0


def udp_port():
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.no_tls
def test_chat_pair_udp(start_example, env):
    port = udp_port()
    start_example("chat_server", "127.0.0.1:%d" % port)
    a, b = chat_pair(start_example, env, "udp_chat", "127.0.0.1:%d" % port)
    check_chat(a, b, "leave")


@pytest.mark.no_tls
def test_udp_echo(start_example, start_server, run_example):
    port = udp_port()
    start_example("chat_server", "127.0.0.1:%d" % port)
    r = run_example("udp_echo", "127.0.0.1:%d" % port)
    assert (r.returncode, r.stdout) == (0, "hello from 127.0.0.1:%d\n" % port), r.stderr
    r = run_example("udp_echo", "127.0.0.1:%d" % port, "黏包")
    assert r.stdout == "黏包 from 127.0.0.1:%d\n" % port
    r = run_example("udp_echo", "127.0.0.1:%d" % udp_port())  # nobody there
    assert r.returncode == 1 and r.stdout == ""
