"""TLS under bad input and faults (issue 17): garbage and 1-byte-split
ClientHellos, a record with one flipped byte in the middle of an upload
(the put publishes nothing and resumes), a peer that closes without
close_notify, and a relay that records every byte and finds no plaintext."""

import os
import socket
import threading

import pytest

import sockit_proto as sp
from conftest import wait_for
from test_tls import log_lines


class Relay:
    """A TCP proxy on 127.0.0.1 to target: copies bytes both ways and keeps
    them. flip_at / flip_down_at: the client->server / server->client byte
    at that offset is inverted once; bytewise: client->server bytes go one
    per send()."""

    def __init__(self, target, flip_at=None, bytewise=False, flip_down_at=None):
        self.target = sp.parse_addr(target)[1][:2]
        self.flip_at, self.bytewise = flip_at, bytewise
        self.flip_down_at = flip_down_at
        self.up, self.down = bytearray(), bytearray()
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.addr = "127.0.0.1:%d" % self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            s = socket.create_connection(self.target)
            for a, b, up in ((c, s, True), (s, c, False)):
                threading.Thread(target=self._pump, args=(a, b, up), daemon=True).start()

    def _pump(self, src, dst, up):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self.lock:
                    log = self.up if up else self.down
                    start = len(log)
                    log += data
                    at = self.flip_at if up else self.flip_down_at
                    if at is not None and start <= at < len(log):
                        data = bytearray(data)
                        data[at - start] ^= 0xFF
                        data = bytes(data)
                if up and self.bytewise:
                    for i in range(len(data)):
                        dst.sendall(data[i:i + 1])
                else:
                    dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            for x in (src, dst):
                try:
                    x.close()
                except OSError:
                    pass

    def close(self):
        self.lsock.close()


@pytest.fixture
def relay():
    made = []

    def make(target, **kw):
        r = Relay(target, **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def test_garbage_instead_of_a_client_hello(start_server, key_file, secret, tmp_path):
    log = str(tmp_path / "conn.log")
    srv = start_server("--key-file", key_file, "--log", log)
    host, port = sp.parse_addr(srv.addr)[1][:2]
    for garbage in (os.urandom(3000), b"\x16\x03\x01\xff\xff" + os.urandom(100),
                    b"GET / HTTP/1.0\r\n\r\n", sp.frame({"type": "ping"})):
        with socket.create_connection((host, port), timeout=5) as s:
            s.sendall(garbage)
            s.settimeout(5)
            got = b""
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
            except ConnectionResetError:
                pass
            assert not got.startswith(b"\x00")  # no sockit frame ever leaks
    with sp.Client.tls_psk(srv.addr, secret) as c:  # the server serves on
        c.hello()
        assert c.echo(b"still here") == b"still here"
    fails = [ln for ln in log_lines(log) if " tls_fail " in ln]
    assert len(fails) == 4 and not any(" auth_fail" in ln for ln in log_lines(log))


def test_client_hello_in_one_byte_writes(start_server, key_file, run_cli, relay):
    srv = start_server("--key-file", key_file)
    r = relay(srv.addr, bytewise=True)
    out = run_cli("echo", "--key-file", key_file, r.addr, "byte", "by", "byte", timeout=30)
    assert (out.returncode, out.stdout) == (0, "byte by byte\n"), out.stderr


def test_flipped_byte_mid_upload_publishes_nothing_and_resumes(start_server, key_file, run_cli,
                                                               relay, tmp_path):
    root = tmp_path / "root"
    log = str(tmp_path / "conn.log")
    srv = start_server("--key-file", key_file, "--root", str(root), "--log", log)
    data = os.urandom(8 << 20)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    r = relay(srv.addr, flip_at=3 << 20)  # a byte inside a record, mid-body
    out = run_cli("put", "--key-file", key_file, r.addr, str(src), timeout=60)
    assert out.returncode == 255 and out.stdout == ""
    assert len(out.stderr.splitlines()) == 1, out.stderr
    assert wait_for(lambda: any(" tls_error " in ln for ln in log_lines(log)))
    assert not (root / "big.bin").exists()  # nothing published
    out = run_cli("put", "--key-file", key_file, srv.addr, str(src), "--resume", timeout=60)
    assert out.returncode == 0, out.stderr
    assert (root / "big.bin").read_bytes() == data
    assert srv.alive()


def test_flipped_byte_mid_download_fails_clearly_and_resumes(start_server, key_file, run_cli,
                                                              relay, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    data = os.urandom(8 << 20)
    (root / "big.bin").write_bytes(data)
    srv = start_server("--key-file", key_file, "--root", str(root))
    r = relay(srv.addr, flip_down_at=3 << 20)
    out = tmp_path / "got.bin"
    x = run_cli("get", "--key-file", key_file, r.addr, "big.bin", "-o", str(out), timeout=60)
    assert x.returncode == 255 and len(x.stderr.splitlines()) == 1, x.stderr
    assert not out.exists()  # nothing published locally
    assert (tmp_path / ".got.bin.sockit-part").stat().st_size > 0  # kept for the resume
    x = run_cli("get", "--key-file", key_file, srv.addr, "big.bin", "-o", str(out), "--resume",
                timeout=60)
    assert x.returncode == 0, x.stderr
    assert out.read_bytes() == data


def test_peer_gone_without_close_notify(start_server, key_file, secret, tmp_path):
    log = str(tmp_path / "conn.log")
    srv = start_server("--key-file", key_file, "--log", log)
    c = sp.Client.tls_psk(srv.addr, secret)
    c.hello()
    assert c.echo(b"a") == b"a"
    c.proc.kill()  # openssl dies: TCP closes, no close_notify
    c.close()
    assert wait_for(lambda: any(" close " in ln for ln in log_lines(log)))
    with sp.Client.tls_psk(srv.addr, secret) as d:
        d.hello()
        assert d.echo(b"b") == b"b"


def test_relay_sees_no_plaintext(start_server, key_file, run_cli, relay, tmp_path):
    """Every byte both ways through a recording proxy: no string of a file,
    of exec output or of a chat message appears in it."""
    root = tmp_path / "root"
    srv = start_server("--key-file", key_file, "--root", str(root), "--allow-exec")
    r = relay(srv.addr)
    k = ["--key-file", key_file]
    file_marker = b"FILE-CONTENT-" + os.urandom(8).hex().encode()
    src = tmp_path / "secret.txt"
    src.write_bytes(file_marker * 1000)
    assert run_cli("put", *k, r.addr, str(src), timeout=30).returncode == 0
    out = tmp_path / "back.txt"
    assert run_cli("get", *k, r.addr, "secret.txt", "-o", str(out), timeout=30).returncode == 0
    assert out.read_bytes() == file_marker * 1000
    exec_marker = "EXEC-OUTPUT-" + os.urandom(8).hex()
    x = run_cli("exec", *k, r.addr, "--", "echo", exec_marker)
    assert (x.returncode, x.stdout) == (0, exec_marker + "\n")
    chat_marker = "CHAT-MESSAGE-" + os.urandom(8).hex()
    x = run_cli("chat", *k, r.addr, "--room", "r", "--nick", "n", input=chat_marker + "\n")
    assert x.returncode == 0, x.stderr
    assert x.stdout.count(chat_marker) == 1  # the room echoed it back to us
    recorded = bytes(r.up) + bytes(r.down)
    assert len(r.up) > 1000 * len(file_marker) and len(r.down) > 1000 * len(file_marker)
    for marker in (file_marker, exec_marker.encode(), chat_marker.encode(), b"secret.txt",
                   b'"type"'):
        assert marker not in recorded, marker
