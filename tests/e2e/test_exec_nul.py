"""exec refuses strings with a NUL byte (SPEC 4.6, 4.2): heads may carry
\\u0000 inside strings (names need it, SPEC 4.7), but a program's argv, a shell
line and an environment entry are C strings, which would silently end at the
NUL and run something other than what was asked."""
import pytest

import sockit_proto as sp

# Raw sockit/1 frames from Python: plain servers (conftest.py).
pytestmark = pytest.mark.no_tls


@pytest.fixture
def exec_server(start_server, key_file, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    return start_server("--key-file", key_file, "--allow-exec", "--root", str(root))


def authed(srv, secret):
    c = srv.connect()
    c.handshake(secret)
    return c


@pytest.mark.parametrize("req", [
    {"argv": ["echo", "safe\x00; rm -rf /"]},
    {"argv": ["/bin/true\x00/ignored"]},
    {"shell": "echo safe\x00; rm -rf /"},
    {"argv": ["true"], "env": {"GREETING": "hi\x00there"}},
], ids=["argv-arg", "argv-program", "shell", "env-value"])
def test_nul_in_exec_strings_is_bad_request(exec_server, secret, req):
    c = authed(exec_server, secret)
    c.send(dict({"type": "exec", "id": 7}, **req))
    head, _ = c.recv_frame(timeout=5)
    assert (head["type"], head.get("code"), head.get("id")) == ("error", "bad_request", 7), head
    assert c.ping()["type"] == "pong"  # the connection stays usable, nothing ran
    c.send({"type": "exec", "argv": ["printf", "%s", "ok"], "id": 8})
    out = b""
    while True:
        head, body = c.recv_frame(timeout=5)
        if head["type"] == "stdout":
            out += body
        elif head["type"] == "exit":
            break
    assert (out, head["code"]) == (b"ok", 0)
    c.close()


def test_nul_in_an_env_name_never_reaches_exec(exec_server, secret):
    # Object keys are C strings to the head parser: such a head is no frame.
    c = authed(exec_server, secret)
    c.send({"type": "exec", "argv": ["true"], "env": {"PATH\x00X": "/tmp"}, "id": 7})
    head, _ = c.recv_frame(timeout=5)
    assert (head["type"], head.get("code")) == ("error", "bad_frame"), head
    assert c.is_closed(2)
