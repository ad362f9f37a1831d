"""The command line as a newcomer meets it (issue 16): options and their
errors, help and version, timeouts that name their step, one exit-code rule,
key file messages, `exec` options ending at the program, -v steps, --json.
Each test failed before its fix."""

import json
import os
import socket
import threading
import time

import pytest

from conftest import write_key

CLIENT_COMMANDS = ("echo", "time", "exec", "put", "get", "ls", "rm", "chat")


# ---------------------------------------------------------------------------
# peers that do not behave like a sockit server


class SilentServer:
    """Accepts connections and never sends a byte (a non-sockit service that
    waits for the client to speak first, like HTTP)."""

    def __init__(self):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.addr = "127.0.0.1:%d" % self.lsock.getsockname()[1]
        self.conns = []
        self.stopping = False
        self.t = threading.Thread(target=self._accept, daemon=True)
        self.t.start()

    def _accept(self):
        while not self.stopping:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            self.conns.append(s)

    def close(self):
        self.stopping = True
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsock.close()
        for s in self.conns:
            s.close()


class FullBacklog:
    """A listener that never accepts, with its accept queue full: the kernel
    drops further SYNs, so a connect gets no answer at all (as a blackholed
    address does), on loopback and without depending on the network."""

    def __init__(self):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(0)
        self.addr = "127.0.0.1:%d" % self.lsock.getsockname()[1]
        self.fillers = []
        for _ in range(4):
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(self.lsock.getsockname())
            except BlockingIOError:
                pass
            self.fillers.append(c)

    def close(self):
        for c in self.fillers:
            c.close()
        self.lsock.close()


@pytest.fixture
def silent():
    s = SilentServer()
    yield s
    s.close()


@pytest.fixture
def blackhole():
    b = FullBacklog()
    yield b
    b.close()


def args_for(cmd):
    """Arguments that make each client command connect and do one thing."""
    return {"echo": ["hi"], "exec": ["true"], "get": ["x"], "rm": ["x"],
            "put": ["/etc/hostname"]}.get(cmd, [])


class ErrorServer:
    """A hostile server (no auth, plain): a proper hello, then an error frame
    whose code and message hold terminal sequences for every request."""

    CODE = "busy\x1b[2J"
    MESSAGE = "no\x1b]52;c;eA==\x07 \u202eevil\u009b31m\nsockit: all good"

    def __init__(self):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.addr = "127.0.0.1:%d" % self.lsock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import sockit_proto as sp
        while True:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sp.Client(s, timeout=10),),
                             daemon=True).start()

    def _serve(self, c):
        try:
            c.send({"type": "hello", "proto": "sockit/1", "server": "evil 1", "auth": "none",
                    "services": ["echo", "time", "exec", "files"]})
            while True:
                head, _ = c.recv_frame()
                err = {"type": "error", "code": self.CODE, "message": self.MESSAGE}
                if "id" in head:
                    err["id"] = head["id"]
                c.send(err)
        except Exception:  # the client went: this connection is done
            pass
        finally:
            c.close()

    def close(self):
        self.lsock.close()


# issue 15 item 5: an error line that echoes the server's words showed them
# raw (sockit bench did; the others through cli_request_failed do not).
@pytest.mark.parametrize("cmd", ["echo", "time", "exec", "get", "bench"])
def test_a_hostile_servers_error_text_is_shown_escaped(run_cli, tmp_path, cmd):
    srv = ErrorServer()
    try:
        extra = {"bench": ["-d", "0.3", "--timeout", "5"],
                 "get": ["x", "-o", str(tmp_path / "o")]}.get(cmd, args_for(cmd))
        r = run_cli(cmd, "--no-tls", "--no-auth", srv.addr, *extra, as_is=True, timeout=20)
        if cmd == "bench":  # its JSON escapes them too, and still parses to the words
            j = run_cli(cmd, "--no-tls", "--no-auth", "--json", srv.addr, *extra, as_is=True,
                        timeout=20)
            assert "\u202e" not in j.stdout and "\u009b" not in j.stdout, j.stdout
            assert ErrorServer.MESSAGE in json.loads(j.stdout)["error"], j.stdout
    finally:
        srv.close()
    assert r.returncode != 0, r
    for raw in ("\x1b", "\x07", "\u202e", "\u009b"):
        assert raw not in r.stderr + r.stdout, (raw, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1, lines  # the newline did not forge a second line
    assert ("no\\x1b]52;c;eA==\\x07 \\u202eevil\\u009b31m\\nsockit: all good"
            in lines[0]), lines


# ---------------------------------------------------------------------------
# 16.6 timeouts that name their step


@pytest.mark.parametrize("cmd", CLIENT_COMMANDS)
def test_no_hello_within_timeout(run_cli, silent, key_file, cmd):
    t0 = time.monotonic()
    r = run_cli(cmd, silent.addr, "-w", "0.5", "--key-file", key_file, *args_for(cmd),
                input="", timeout=20)
    took = time.monotonic() - t0
    assert r.returncode == 255, r
    assert r.stderr == ("sockit %s: connected, but the server sent no sockit hello within 0.5 s: "
                        "is it a sockit server (or a TLS one)?\n" % cmd), r.stderr
    assert took < 5, took


@pytest.mark.parametrize("cmd", tuple(c for c in CLIENT_COMMANDS if c != "exec"))
def test_no_answer_while_connecting(run_cli, blackhole, cmd):
    t0 = time.monotonic()
    r = run_cli(cmd, blackhole.addr, "--timeout", "0.5", *args_for(cmd), input="", timeout=20)
    took = time.monotonic() - t0
    assert r.returncode == 255, r
    assert r.stderr == "sockit %s: no answer from %s within 0.5 s while connecting\n" % (
        cmd, blackhole.addr)
    assert "closed by peer" not in r.stderr
    assert took < 5, took


def test_connect_timeout_spelling_for_exec(run_cli, blackhole):
    # exec's --timeout is the program's time limit: -w and --connect-timeout
    for flag in ("-w", "--connect-timeout"):
        r = run_cli("exec", blackhole.addr, flag, "0.3", "true", timeout=20)
        assert r.returncode == 255
        assert "no answer from %s within 0.3 s while connecting" % blackhole.addr in r.stderr


def test_default_timeout_is_ten_seconds(run_cli, silent):
    t0 = time.monotonic()
    r = run_cli("echo", silent.addr, "hi", timeout=30)
    took = time.monotonic() - t0
    assert r.returncode == 255 and "within 10 s" in r.stderr, r
    assert 9 < took < 15, took


@pytest.mark.parametrize("cmd,flags,tries,within", [
    ("echo", (), 3, "3"),                # three tries of a second by default
    ("echo", ("-w", "2"), 2, "2"),       # -w S: S seconds, a try a second
    ("time", ("-w", "0.4"), 1, "0.4"),   # under a second and a half: one try
])
def test_udp_waits_as_long_as_w_says(run_cli, cmd, flags, tries, within):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    addr = "127.0.0.1:%d" % silent.getsockname()[1]
    try:
        args = ("hi",) if cmd == "echo" else ()
        r = run_cli(cmd, "--udp", "--no-auth", *flags, addr, *args, timeout=30)
        assert r.returncode == 255, r
        assert r.stderr.startswith("sockit %s: no answer from %s over UDP within %s s (%d tries)"
                                   % (cmd, addr, within, tries)), r.stderr
        silent.setblocking(False)
        got = 0
        while True:
            try:
                silent.recv(2048)
            except BlockingIOError:
                break
            got += 1
        assert got == tries
    finally:
        silent.close()


def test_bad_timeout_value(run_cli):
    r = run_cli("echo", "-w", "soon", "hi")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "'soon'" in r.stderr and "--help" in r.stderr


# ---------------------------------------------------------------------------
# 16.7 one exit-code rule


def test_unresolvable_name_is_255_with_the_reason(run_cli):
    r = run_cli("echo", "nosuchhost.invalid:8080", "hi", timeout=30)
    assert r.returncode == 255, r
    assert r.stderr.startswith("sockit echo: cannot resolve nosuchhost.invalid: "), r.stderr
    assert r.stderr.count("\n") == 1 and "bad address" not in r.stderr
    for cmd in ("time", "ls", "exec"):
        r = run_cli(cmd, "nosuchhost.invalid:8080", *args_for(cmd), timeout=30)
        assert r.returncode == 255 and "cannot resolve nosuchhost.invalid" in r.stderr, r
    # over UDP too: the host and the resolver's reason, not "cannot use ... for UDP"
    for cmd in ("echo", "time", "chat"):
        r = run_cli(cmd, "-u", "nosuchhost.invalid:8080", *args_for(cmd), input="", timeout=30)
        assert r.returncode == 255, r
        assert r.stderr.startswith("sockit %s: cannot resolve nosuchhost.invalid: " % cmd), r
        assert r.stderr.count("\n") == 1 and "for UDP" not in r.stderr, r.stderr


def test_address_that_is_not_one_is_usage(run_cli):
    r = run_cli("echo", "localhost:http", "hi")
    assert r.returncode == 2 and "bad address 'localhost:http'" in r.stderr, r


def test_exec_refused_is_255(run_cli, server, key_file):
    r = run_cli("exec", server.addr, "--key-file", key_file, "--", "true")
    assert r.returncode == 255, r
    assert "--allow-exec" in r.stderr and r.stderr.count("\n") == 1, r.stderr


# ---------------------------------------------------------------------------
# 16.4 exec options end at the program


@pytest.fixture
def exec_server(start_server, key_file, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "b.txt").write_text("x")
    (root / ".hidden").write_text("y")
    return start_server("--key-file", key_file, "--allow-exec", "--root", str(root))


def test_exec_program_options_are_the_programs(run_cli, exec_server, key_file):
    r = run_cli("exec", exec_server.addr, "--key-file", key_file, "ls", "-a")
    assert (r.returncode, r.stderr) == (0, ""), r
    assert r.stdout.split() == [".", "..", ".hidden", "b.txt"]
    r = run_cli("exec", exec_server.addr, "--key-file", key_file, "echo", "-n", "--key-file", "x")
    assert (r.returncode, r.stdout) == (0, "-n --key-file x") or (r.returncode, r.stdout) == (
        0, "--key-file x"), r
    # options before the address, after it, and a -- are all still fine
    r = run_cli("exec", "--key-file", key_file, exec_server.addr, "-w", "5", "--", "echo", "-v")
    assert (r.returncode, r.stdout) == (0, "-v\n"), r
    r = run_cli("exec", exec_server.addr, "--key-file", key_file, "sh", "-c", "exit 3")
    assert r.returncode == 3


# ---------------------------------------------------------------------------
# 16.8 key file errors name the file and the one thing wrong


@pytest.fixture
def keyed_server(start_server, key_file):
    return start_server("--key-file", key_file)


def test_key_file_missing(run_cli, keyed_server, tmp_path):
    path = str(tmp_path / "nokey")
    r = run_cli("echo", keyed_server.addr, "--key-file", path, "hi")
    assert r.returncode == 255
    assert r.stderr.startswith("sockit echo: no key file at %s: copy the server's key file" % path)
    assert r.stderr.count("\n") == 1


def test_key_file_mode_0644(run_cli, keyed_server, tmp_path):
    path = str(tmp_path / "openkey")
    write_key(path, mode=0o644)
    r = run_cli("echo", keyed_server.addr, "--key-file", path, "hi")
    assert r.returncode == 255
    assert "key file %s has mode 0644" % path in r.stderr and "chmod 600 %s" % path in r.stderr


def test_key_file_too_short(run_cli, keyed_server, tmp_path):
    path = str(tmp_path / "shortkey")
    write_key(path, secret_hex="abcdef")
    r = run_cli("echo", keyed_server.addr, "--key-file", path, "hi")
    assert r.returncode == 255
    assert "key file %s holds 6 bytes; a key needs at least 16" % path in r.stderr, r.stderr


def test_default_key_missing_names_the_default_path(run_cli, keyed_server, env):
    r = run_cli("echo", keyed_server.addr, "hi")
    assert r.returncode == 255
    want = os.path.join(env.config, "sockit", "key")
    assert "no key file at %s: copy the server's key file" % want in r.stderr, r.stderr
    assert "keygen" in r.stderr  # says that keygen is not what it needs


# ---------------------------------------------------------------------------
# 16.9 option errors, help, version


@pytest.mark.parametrize("cmd", CLIENT_COMMANDS + ("serve", "keygen", "listen", "connect"))
def test_unknown_option_is_one_line(run_cli, cmd):
    r = run_cli(cmd, "--no-such-flag")
    assert r.returncode == 2
    assert r.stderr == "sockit %s: unknown option --no-such-flag (see: sockit %s --help)\n" % (
        cmd, cmd), r.stderr


def test_missing_value_is_one_line(run_cli):
    r = run_cli("time", "--tz")
    assert r.returncode == 2
    assert r.stderr == "sockit time: missing value for option --tz (see: sockit time --help)\n"
    r = run_cli("get", "-o")
    assert r.stderr == "sockit get: missing value for option -o (see: sockit get --help)\n"


def test_value_for_an_option_that_takes_none(run_cli):
    r = run_cli("echo", "--json=yes", "hi")
    assert r.returncode == 2
    assert r.stderr == "sockit echo: no value goes with option --json (see: sockit echo --help)\n"
    r = run_cli("connect", "--tls=1")
    assert r.stderr == ("sockit connect: no value goes with option --tls "
                        "(see: sockit connect --help)\n")


def test_unknown_short_option_in_a_cluster_after_a_long_one(run_cli):
    # getopt stays on the cluster "-zv" it has not finished: the word
    # before it is --json, which is not the option that was wrong
    r = run_cli("echo", "--json", "-zv", "hi")
    assert r.returncode == 2
    assert r.stderr == "sockit echo: unknown option -z (see: sockit echo --help)\n"


def test_ambiguous_option_names_what_it_could_be(run_cli):
    r = run_cli("echo", "--ver", "hi")
    assert r.returncode == 2
    assert r.stderr == ("sockit echo: ambiguous option --ver: --verbose, --version? "
                        "(see: sockit echo --help)\n")
    # serve's options all looked alike to getopt: --max took --max-conns
    r = run_cli("serve", "-l", "127.0.0.1:0", "--max", "5", "--no-auth")
    assert r.returncode == 2
    assert r.stderr == ("sockit serve: ambiguous option --max: --max-conns, --max-buffered, "
                        "--max-message, --max-execs, --max-file? (see: sockit serve --help)\n")
    r = run_cli("serve", "-l", "127.0.0.1:0", "--no-auth=yes")
    assert r.stderr == ("sockit serve: no value goes with option --no-auth "
                        "(see: sockit serve --help)\n")


def test_version_forms(run_cli):
    want = run_cli("--version").stdout
    assert want.startswith("sockit ") and want.count("\n") == 1
    for args in (("version",), ("-V",), ("echo", "--version"), ("serve", "--version"),
                 ("listen", "--version"), ("keygen", "--version")):
        r = run_cli(*args)
        assert (r.returncode, r.stdout, r.stderr) == (0, want, ""), args


def test_help_cmd(run_cli):
    for cmd in CLIENT_COMMANDS + ("serve", "listen"):
        assert run_cli("help", cmd).stdout == run_cli(cmd, "--help").stdout
    r = run_cli("help", "nope")
    assert r.returncode == 2 and "unknown command 'nope'" in r.stderr
    assert run_cli("help").stdout == run_cli("--help").stdout
    r = run_cli("help", "help")
    assert r.returncode == 0 and r.stdout == run_cli("--help").stdout


def test_quiet_only_where_there_is_a_progress_bar(run_cli):
    for cmd in ("put", "get", "bench"):
        assert "--quiet" in run_cli(cmd, "--help").stdout, cmd
    for cmd in ("echo", "time", "exec", "ls", "chat"):
        assert "--quiet" not in run_cli(cmd, "--help").stdout, cmd
        assert run_cli(cmd, "-q").returncode == 2, cmd


def test_no_internal_references_in_help(run_cli):
    for cmd in CLIENT_COMMANDS + ("serve", "keygen", "listen", "connect", "bench"):
        text = run_cli(cmd, "--help").stdout
        assert "SPEC" not in text and "issue " not in text.lower(), cmd


def test_common_options_in_every_client_help(run_cli):
    for cmd in CLIENT_COMMANDS:
        text = run_cli(cmd, "--help").stdout
        for flag in ("--json", "--verbose", "--key-file", "--no-auth", "--version"):
            assert flag in text, (cmd, flag)
        assert ("--timeout" in text) or cmd == "exec"
        assert "-w," in text, cmd


# ---------------------------------------------------------------------------
# 16.13 -v steps


def test_verbose_prints_the_steps(run_cli, keyed_server, key_file):
    r = run_cli("echo", keyed_server.addr, "-v", "--key-file", key_file, "hi")
    assert (r.returncode, r.stdout) == (0, "hi\n"), r
    lines = r.stderr.splitlines()
    assert lines[0] == "sockit echo: resolving %s" % keyed_server.addr
    assert lines[1] == "sockit echo: connecting to %s" % keyed_server.addr
    assert lines[2] == "sockit echo: connected to %s" % keyed_server.addr
    tls = ["sockit echo: TLS 1.3 handshake, keyed by the shared secret"]
    if lines[3] != tls[0]:  # a plain run of the suite
        tls = []
    assert lines[3:-2] == tls + ["sockit echo: authenticating with the key in %s" % key_file]
    assert lines[-2].startswith("sockit echo: ready (sockit ")
    assert lines[-1] == "sockit echo: sending the echo request (2 bytes)"
    r = run_cli("echo", keyed_server.addr, "--key-file", key_file, "hi")
    assert r.stderr == ""


@pytest.mark.parametrize("args,step", [
    (("time",), "asking the time"),
    (("ls",), "listing the root"),
    (("ls", "photos/"), "listing photos"),
    (("get", "nope.bin", "-o", "-"), "asking for nope.bin"),
    (("put", "/etc/hostname", "--as", "h.txt"), "uploading /etc/hostname as h.txt"),
    (("rm", "nope.bin"), "removing nope.bin"),
    (("chat", "--room", "r1", "--nick", "ann"), "joining r1 as ann"),
])
def test_verbose_names_the_request(run_cli, keyed_server, key_file, args, step):
    """-v goes on after the connection's steps with the request itself."""
    r = run_cli(args[0], keyed_server.addr, "-v", "--key-file", key_file, *args[1:], input="")
    lines = r.stderr.splitlines()
    ready = [i for i, ln in enumerate(lines) if ln.startswith("sockit %s: ready (" % args[0])]
    assert ready and lines[ready[0] + 1] == "sockit %s: %s" % (args[0], step), r.stderr


def test_bench_verbose_names_its_first_connections_steps(run_cli, keyed_server, key_file):
    r = run_cli("bench", keyed_server.addr, "-v", "--key-file", key_file, "--mode", "rtt",
                "--duration", "0.1", "-q", timeout=30)
    assert r.returncode == 0, r
    lines = r.stderr.splitlines()
    assert lines[:2] == ["sockit bench: resolving %s" % keyed_server.addr,
                         "sockit bench: connecting to %s" % keyed_server.addr], r.stderr
    assert any(ln.startswith("sockit bench: ready (sockit ") for ln in lines), r.stderr


def test_verbose_exec_names_the_program(run_cli, exec_server, key_file):
    r = run_cli("exec", exec_server.addr, "-v", "--key-file", key_file, "ls", "-a")
    assert r.returncode == 0
    assert r.stderr.splitlines()[-1] == "sockit exec: asking to run ls", r.stderr
    r = run_cli("exec", exec_server.addr, "-v", "--key-file", key_file, "--shell", "true")
    assert r.stderr.splitlines()[-1] == "sockit exec: asking to run /bin/sh -c true", r.stderr


# ---------------------------------------------------------------------------
# 16.10 time zones: checked by the client, IANA names on the server


@pytest.mark.parametrize("tz,hint", [("utc", "(did you mean UTC?)"), ("+8", "(offsets are written +08:00)"),
                                     ("+0530", "(offsets are written +05:30)"), ("Europe/../x", ""),
                                     ("25:00", "")])
def test_time_zone_checked_before_sending(run_cli, tz, hint):
    # nothing listens at 127.0.0.1:1: exit 2 (not 255) shows nothing was sent
    r = run_cli("time", "127.0.0.1:1", "--tz", tz)
    assert r.returncode == 2, r
    assert r.stderr.startswith(
        "sockit time: --tz '%s' is not a time zone: use local, UTC, +HH:MM, -HH:MM or a zone "
        "name such as Asia/Tokyo" % tz), r.stderr
    assert hint in r.stderr and r.stderr.count("\n") == 1


@pytest.fixture
def plain_server(start_server):
    return start_server("--no-auth", "--threads", "2")


@pytest.mark.parametrize("tz,ts,text", [
    ("Asia/Tokyo", 0, "1970-01-01 09:00:00 +0900"),
    ("America/New_York", 0, "1969-12-31 19:00:00 -0500"),
    ("Europe/Berlin", 1783000000, "2026-07-02 15:46:40 +0200"),   # summer time
    ("Europe/Berlin", 1798000000, "2026-12-23 05:26:40 +0100"),   # winter time
    ("America/Argentina/Buenos_Aires", 0, "1969-12-31 21:00:00 -0300"),
    ("Australia/Lord_Howe", 1783000000, "2026-07-03 00:16:40 +1030"),
])
def test_time_named_zones(run_cli, plain_server, tz, ts, text):
    r = run_cli("time", plain_server.addr, "--no-auth", "--ts", ts, "--tz", tz, "--format",
                "%Y-%m-%d %H:%M:%S %z")
    assert (r.returncode, r.stdout, r.stderr) == (0, text + "\n", ""), r


def test_time_unknown_zone_names_the_forms(run_cli, plain_server):
    r = run_cli("time", plain_server.addr, "--no-auth", "--tz", "Mars/Olympus_Mons")
    assert r.returncode == 1
    assert r.stderr == ("sockit time: server said bad_request: unknown tz: use local, UTC, +HH:MM, "
                        "-HH:MM or a zone name such as Asia/Tokyo\n"), r.stderr


def test_time_zones_concurrently_on_several_loops(plain_server):
    """Zones are resolved per call (no setenv/tzset): many connections on two
    loops asking different zones at once each get their own zone's time."""
    import sockit_proto as sp
    want = {"Asia/Tokyo": "09", "America/New_York": "19", "Europe/London": "01", "UTC": "00",
            "+05:30": "05", "Asia/Kolkata": "05"}
    errors = []

    def ask(tz, hour):
        try:
            c = sp.Client.connect(plain_server.addr)
            c.hello()
            for i in range(200):
                head, _ = c.request({"type": "time", "ts": 0, "tz": tz, "format": "%H"})
                if head.get("text") != hour:
                    errors.append((tz, head))
                    return
            c.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append((tz, e))

    threads = [threading.Thread(target=ask, args=kv) for kv in list(want.items()) * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []


# ---------------------------------------------------------------------------
# 16.13 --json on exec, time and echo


def test_echo_json(run_cli, plain_server):
    r = run_cli("echo", plain_server.addr, "--no-auth", "--json", "h\u00e9llo", "world")
    assert r.returncode == 0 and r.stderr == ""
    lines = r.stdout.splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
    assert obj["ok"] is True and obj["size"] == 12 and obj["text"] == "h\u00e9llo world"
    assert isinstance(obj["rtt_us"], int) and obj["rtt_us"] >= 0


def test_echo_json_binary_is_base64(sockit_bin, plain_server):
    import base64
    import subprocess
    r = subprocess.run([sockit_bin, "echo", plain_server.addr, "--no-auth", "--json"],
                       input=b"\xff\x00bin", capture_output=True, timeout=10)
    obj = json.loads(r.stdout)
    assert r.returncode == 0 and "text" not in obj
    assert base64.b64decode(obj["base64"]) == b"\xff\x00bin" and obj["size"] == 5


def test_time_json_every_answer_one_line(run_cli, plain_server):
    r = run_cli("time", plain_server.addr, "--no-auth", "--json", "--ts", "0", "--tz", "+08:00")
    assert r.returncode == 0
    obj = json.loads(r.stdout)
    assert (obj["ok"], obj["ts"], obj["tz"], obj["text"]) == (True, 0, "+08:00",
                                                            "1970-01-01 08:00:00")
    assert isinstance(obj["now"], float)
    r = run_cli("time", plain_server.addr, "--no-auth", "--json", "--every", "0.05",
                "--count", "3")
    objs = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert len(objs) == 3 and all(o["ok"] for o in objs)
    r = run_cli("time", plain_server.addr, "--no-auth", "--json", "--tz", "Mars/Base")
    assert r.returncode == 1
    obj = json.loads(r.stdout)
    assert (obj["ok"], obj["error"]) == (False, "bad_request") and "Asia/Tokyo" in obj["message"]


def test_exec_json_status_and_byte_counts(run_cli, exec_server, key_file):
    r = run_cli("exec", exec_server.addr, "--key-file", key_file, "--json", "sh", "-c",
                "printf 'out\\n'; printf 'error!' >&2; exit 3")
    assert r.returncode == 3 and r.stderr == ""
    obj = json.loads(r.stdout)
    assert obj == {"ok": True, "exit": 3, "status": 3, "stdout": "out\n", "stdout_bytes": 4,
                   "stderr": "error!", "stderr_bytes": 6}
    r = run_cli("exec", exec_server.addr, "--key-file", key_file, "--json", "--shell",
                "kill -TERM $$")
    obj = json.loads(r.stdout)
    assert r.returncode == 143 and (obj["signal"], obj["status"]) == (15, 143)
    r = run_cli("exec", exec_server.addr, "--key-file", key_file, "--json", "head", "-c", "3",
                "/dev/urandom")
    obj = json.loads(r.stdout)
    assert obj["stdout_bytes"] == 3 and ("stdout" in obj or len(obj["stdout_base64"]) == 4)


def test_exec_json_refused(run_cli, keyed_server, key_file):
    r = run_cli("exec", keyed_server.addr, "--key-file", key_file, "--json", "true")
    assert r.returncode == 255
    obj = json.loads(r.stdout)
    assert (obj["ok"], obj["error"], obj["status"]) == (False, "forbidden", 255)


# ---------------------------------------------------------------------------
# 16.15 serve says the open-file limit only when it matters; listener lines


def test_open_file_limit_only_when_it_cannot_hold_max_conns(start_server):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    srv = start_server("--no-auth", "--max-conns", "100")
    assert "open file limit" not in srv.stderr_text(), srv.stderr_text()
    if hard == resource.RLIM_INFINITY or hard >= 10000000:
        pytest.skip("no hard open file limit below 10,000,000 here")
    srv = start_server("--no-auth", "--max-conns", "10000000")
    lines = [ln for ln in srv.stderr_lines if "open file limit" in ln]
    assert lines == ["sockit: the open file limit (%d) is below --max-conns 10000000: "
                     "about %d connections at most (raise the hard limit, ulimit -Hn, or "
                     "lower --max-conns)" % (hard, hard - 64)], srv.stderr_text()


def test_each_listener_line_names_its_service(start_server):
    srv = start_server("--no-auth", "--udp", "127.0.0.1:0", "--daytime", "127.0.0.1:0",
                       "--rfc868", "127.0.0.1:0")
    import re
    import conftest
    assert conftest.wait_for(lambda: sum("listening on" in ln for ln in srv.stderr_lines) == 4)
    kinds = [re.sub(r"^sockit: listening on \S+", "", ln) for ln in srv.stderr_lines
             if "listening on" in ln]
    assert kinds == ["", " (udp)", " (daytime)", " (rfc868)"], srv.stderr_text()
    seed = start_server("--no-auth", "--wire", "seed", "--service", "time")
    assert any(re.match(r"^sockit: listening on \S+ \(seed wire: time\)$", ln)
               for ln in seed.stderr_lines), seed.stderr_text()


# ---------------------------------------------------------------------------
# 16.14 the config file: $XDG_CONFIG_HOME/sockit/config


def write_config(env, text):
    d = os.path.join(env.config, "sockit")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config"), "w") as f:
        f.write(text)
    return os.path.join(d, "config")


def test_config_address_key_file_and_timeout(run_cli, keyed_server, key_file, env, silent):
    write_config(env, "# defaults for this user\naddress = %s\nkey-file = %s\n" % (
        keyed_server.addr, key_file))
    r = run_cli("echo", "from", "config")
    assert (r.returncode, r.stdout, r.stderr) == (0, "from config\n", ""), r
    # the command line and the variables still win
    r = run_cli("echo", silent.addr, "-w", "0.3", "hi")
    assert "within 0.3 s" in r.stderr
    r = run_cli("echo", "hi", env_extra={"SOCKIT_ADDR": "127.0.0.1:1"})
    assert r.returncode == 255 and "127.0.0.1:1" in r.stderr
    write_config(env, "address = %s\ntimeout = 0.4\n" % silent.addr)
    t0 = time.monotonic()
    r = run_cli("time")
    assert r.returncode == 255 and "no sockit hello within 0.4 s" in r.stderr, r
    assert time.monotonic() - t0 < 5


def test_config_mistakes_name_file_and_line(run_cli, keyed_server, key_file, env):
    path = write_config(env, "address = %s\nkey-file = %s\ncolour = blue\ntimeout = soon\n" % (
        keyed_server.addr, key_file))
    r = run_cli("echo", "still", "works")
    assert (r.returncode, r.stdout) == (0, "still works\n")
    assert r.stderr.splitlines() == [
        "sockit: %s line 3: unknown key 'colour' (address, key-file, timeout)" % path,
        "sockit: %s line 4: timeout wants a positive number of seconds" % path]


# ---------------------------------------------------------------------------
# 16.14 shell completion, generated from the commands' --help


def bash_complete(sockit_bin, words, tmp_path):
    """What bash completes for the command line `words` (the last word is
    the one being typed), with the script `sockit completion bash` prints."""
    import shlex
    import subprocess
    script = tmp_path / "sockit.bash"
    script.write_text(subprocess.run([sockit_bin, "completion", "bash"], capture_output=True,
                                     text=True, check=True, timeout=30).stdout)
    prog = ("source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _sockit; printf '%%s\\n' "
            "\"${COMPREPLY[@]}\"" % (shlex.quote(str(script)),
                                     " ".join(shlex.quote(w) for w in words), len(words) - 1))
    r = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return sorted(w for w in r.stdout.splitlines() if w)


def test_bash_completion(sockit_bin, tmp_path):
    assert bash_complete(sockit_bin, ["sockit", "ec"], tmp_path) == ["echo"]
    assert "completion" in bash_complete(sockit_bin, ["sockit", ""], tmp_path)
    assert bash_complete(sockit_bin, ["sockit", "echo", "--ti"], tmp_path) == ["--timeout"]
    assert bash_complete(sockit_bin, ["sockit", "connect", "--keep-s"], tmp_path) == [
        "--keep-sending"]
    assert bash_complete(sockit_bin, ["sockit", "help", "ex"], tmp_path) == ["exec"]
    assert bash_complete(sockit_bin, ["sockit", "time", "--tz"], tmp_path) == ["--tz"]


def test_completion_lists_every_help_flag(run_cli, sockit_bin, tmp_path):
    import re
    flag_re = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
    commands = [m.group(1) for m in map(re.compile(r"^  ([a-z][a-z0-9-]*)\s{2,}\S").match,
                                           run_cli("--help").stdout.splitlines()) if m]
    assert "completion" in commands
    for cmd in commands:
        want = set(flag_re.findall(run_cli(cmd, "--help").stdout))
        got = set(bash_complete(sockit_bin, ["sockit", cmd, "--"], tmp_path))
        assert want <= got, (cmd, want - got)


def test_zsh_completion_script(run_cli):
    import shutil
    import subprocess
    r = run_cli("completion", "zsh")
    assert r.returncode == 0 and r.stdout.startswith("#compdef sockit\n")
    assert "--keep-sending" in r.stdout and "_files" in r.stdout
    if shutil.which("zsh"):
        z = subprocess.run(["zsh", "-n"], input=r.stdout, capture_output=True, text=True)
        assert z.returncode == 0, z.stderr
    assert run_cli("completion", "fish").returncode == 2


def test_serve_key_file_errors_name_the_file_and_the_fault(run_cli, tmp_path):
    missing = str(tmp_path / "nokey")
    r = run_cli("serve", "-l", "127.0.0.1:0", "--key-file", missing)
    assert r.returncode == 1
    assert r.stderr == ("sockit serve: key file %s is missing: make one with `sockit keygen -o %s`, "
                        "or leave out --key-file to use (and create) the default\n" % (
                            missing, missing)), r.stderr
    open_key = str(tmp_path / "open")
    write_key(open_key, mode=0o644)
    r = run_cli("serve", "-l", "127.0.0.1:0", "--key-file", open_key)
    assert r.returncode == 1
    assert r.stderr == ("sockit serve: key file %s has mode 0644, so others can read it: run "
                        "chmod 600 %s\n" % (open_key, open_key))
    short = str(tmp_path / "short")
    write_key(short, secret_hex="abcdef")
    r = run_cli("serve", "-l", "127.0.0.1:0", "--key-file", short)
    assert r.stderr == ("sockit serve: key file %s holds 6 bytes; a key needs at least 16 (make "
                        "one with: sockit keygen)\n" % short)


def test_verbose_names_the_tls_step(run_cli, start_server, key_file):
    srv = start_server("--key-file", key_file, tls=True)
    r = run_cli("echo", srv.addr, "-v", "--key-file", key_file, "hi")
    assert r.returncode == 0, r
    # in the order they happen: connected, the TLS handshake, the key it proves
    assert r.stderr.splitlines()[2:5] == [
        "sockit echo: connected to %s" % srv.addr,
        "sockit echo: TLS 1.3 handshake, keyed by the shared secret",
        "sockit echo: authenticating with the key in %s" % key_file], r.stderr
