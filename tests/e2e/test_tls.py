"""TLS 1.3 on native connections (SPEC 8, issue 17): keyed by the shared
secret by default, plain with --no-tls, and clear errors when the two sides
disagree. Raw TLS here is `openssl s_client` (sp.Client.tls_psk): Python's
ssl module has no TLS 1.3 external PSK."""

import hashlib
import os
import re
import socket
import ssl
import subprocess
import time

import pytest

import sockit_proto as sp
from conftest import wait_for, write_key

SUITES = ("TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256")


def log_lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def test_default_server_speaks_tls_psk(start_server, key_file, secret, run_cli, tmp_path):
    log = str(tmp_path / "conn.log")
    srv = start_server("--key-file", key_file, "--log", log)
    r = run_cli("echo", "--key-file", key_file, srv.addr, "over", "tls")
    assert (r.returncode, r.stdout, r.stderr) == (0, "over tls\n", "")
    ok = [ln for ln in log_lines(log) if " auth_ok " in ln]
    assert len(ok) == 1
    m = re.search(r"auth=tls-psk tls=(\S+) cipher=(\S+)", ok[0])
    assert m and m.group(1) == "TLSv1.3" and m.group(2) in SUITES, ok[0]


def test_openssl_s_client_exchanges_frames(start_server, key_file, secret):
    """Another TLS stack, keyed by the PSK derived from the spec's formulas:
    the hello says tls-psk, carries no nonce, and requests need no auth."""
    srv = start_server("--key-file", key_file)
    with sp.Client.tls_psk(srv.addr, secret) as c:
        hello = c.hello()
        assert hello["auth"] == "tls-psk" and "nonce" not in hello
        assert c.echo(b"x" * 100000) == b"x" * 100000
        c.send({"type": "ping", "id": 7})
        head, _ = c.recv_frame()
        assert head == {"type": "pong", "id": 7}


def test_hello_waits_for_the_handshake(start_server, key_file):
    """A TLS server never speaks first: nothing but a ClientHello gets in."""
    srv = start_server("--key-file", key_file)
    host, port = sp.parse_addr(srv.addr)[1][:2]
    with socket.create_connection((host, port), timeout=5) as s:
        s.settimeout(0.5)
        with pytest.raises(socket.timeout):
            s.recv(1)


def test_wrong_key_fails_auth_and_is_rate_limited(start_server, key_file, run_cli, tmp_path):
    log = str(tmp_path / "conn.log")
    srv = start_server("--key-file", key_file, "--log", log)
    other = str(tmp_path / "other")
    write_key(other)
    for _ in range(5):
        r = run_cli("echo", "--key-file", other, srv.addr, "hi")
        assert r.returncode == 255 and r.stdout == ""
        assert r.stderr == ("sockit echo: %s does not accept our key: use the server's key file "
                            "(--key-file F)\n" % srv.addr)
    fails = [ln for ln in log_lines(log) if " auth_fail " in ln]
    assert len(fails) == 5 and all("unknown tls-psk identity" in ln for ln in fails)
    # the sixth try is refused before any TLS, even with the right key
    r = run_cli("echo", "--key-file", key_file, srv.addr, "hi")
    assert r.returncode == 255 and "too many failed authentications" in r.stderr


def test_openssl_unknown_identity_counts_as_failed_auth(start_server, key_file, tmp_path):
    log = str(tmp_path / "conn.log")
    srv = start_server("--key-file", key_file, "--log", log)
    with sp.Client.tls_psk(srv.addr, b"another secret of enough bytes") as c:
        assert c.is_closed(timeout=5)
    assert wait_for(lambda: any(" auth_fail " in ln for ln in log_lines(log)))
    assert srv.alive()


def test_tls_client_on_plain_server_names_the_flag(start_server, key_file, run_cli):
    srv = start_server("--key-file", key_file, tls=False)
    t0 = time.monotonic()
    r = run_cli("echo", "--key-file", key_file, srv.addr, "hi", as_is=True)
    assert r.returncode == 255 and r.stdout == ""
    assert r.stderr == ("sockit echo: %s speaks plain sockit/1, not TLS: add --no-tls (or restart "
                        "the server without --no-tls)\n" % srv.addr)
    assert time.monotonic() - t0 < 5


@pytest.mark.no_tls
def test_cli_plain_with_no_tls(start_server, key_file, run_cli):
    srv = start_server("--key-file", key_file)
    assert "--no-tls" in srv.args
    r = run_cli("echo", "--key-file", key_file, srv.addr, "plain")  # run_cli adds --no-tls
    assert (r.returncode, r.stdout) == (0, "plain\n")


def test_plain_client_on_tls_server_names_the_flag(start_server, key_file, run_cli, sockit_bin,
                                                   env, tmp_path):
    """The plain client waits for a hello that never comes; a peer silent for
    2 s gets a TLS alert record and a close, which the client recognizes
    well within its 10 s connect budget (and the server's auth deadline)."""
    log = str(tmp_path / "conn.log")
    srv = start_server("--key-file", key_file, "--log", log)
    t0 = time.monotonic()
    r = run_cli("echo", "--no-tls", "--key-file", key_file, srv.addr, "hi", timeout=20)
    took = time.monotonic() - t0
    assert r.returncode == 255 and r.stdout == ""
    assert r.stderr == "sockit echo: %s speaks TLS: drop --no-tls\n" % srv.addr
    assert 1.5 < took < 5
    assert any(' tls_fail reason="no ClientHello (a plain client?)"' in ln for ln in log_lines(log))


def test_stalled_handshake_closed_by_auth_deadline(start_server, key_file):
    """Half a ClientHello, then silence: closed at the 10 s auth deadline,
    while other clients are served."""
    srv = start_server("--key-file", key_file)
    host, port = sp.parse_addr(srv.addr)[1][:2]
    with socket.create_connection((host, port), timeout=20) as s:
        s.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))  # a record header and a byte
        t0 = time.monotonic()
        with sp.Client.tls_psk(srv.addr, sp.load_secret(key_file)) as c:
            c.hello()
            assert c.echo(b"meanwhile") == b"meanwhile"
        s.settimeout(15)
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        assert 9 < time.monotonic() - t0 < 13
        assert not data.startswith(b"\x00")  # no plain frame leaks out


def test_unix_socket_plain_unless_tls(start_server, key_file, secret, run_cli, short_dir):
    path = os.path.join(short_dir, "s.sock")
    srv = start_server("--key-file", key_file, listen=["unix:" + path, "127.0.0.1:0"])
    with sp.Client.unix(path) as c:  # plain by default: file permissions guard it
        assert c.hello()["auth"] == "hmac-sha256"
    r = run_cli("echo", "--key-file", key_file, "unix:" + path, "local")
    assert (r.returncode, r.stdout) == (0, "local\n")
    srv.stop()
    os.unlink(path) if os.path.exists(path) else None
    srv = start_server("--key-file", key_file, "--tls", listen=["unix:" + path])
    r = run_cli("echo", "--key-file", key_file, "--tls", "unix:" + path, "secret")
    assert (r.returncode, r.stdout) == (0, "secret\n")


def test_no_tls_warns_on_non_loopback_only(start_server, key_file):
    srv = start_server("--key-file", key_file, "--no-tls", listen=["0.0.0.0:0", "127.0.0.1:0"])
    warn = [ln for ln in srv.stderr_lines if "not encrypted" in ln]
    assert warn == ["sockit: warning: 0.0.0.0:0 is not encrypted (--no-tls): the traffic is "
                    "readable by anyone on the path"]
    quiet = start_server("--key-file", key_file, "--no-tls")
    assert not [ln for ln in quiet.stderr_lines if "not encrypted" in ln]
    tls = start_server("--key-file", key_file, listen=["0.0.0.0:0"])
    assert not [ln for ln in tls.stderr_lines if "not encrypted" in ln]


def test_no_auth_server_is_plain(start_server, run_cli):
    srv = start_server("--no-auth")
    with srv.connect() as c:
        assert c.hello()["auth"] == "none"
    r = run_cli("echo", "--no-auth", srv.addr, "open")
    assert (r.returncode, r.stdout) == (0, "open\n")


def test_every_command_over_tls(start_server, key_file, run_cli, tmp_path):
    root = tmp_path / "root"
    srv = start_server("--key-file", key_file, "--root", str(root), "--allow-exec")
    data = os.urandom(3 * 1024 * 1024 + 17)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    k = ["--key-file", key_file]
    r = run_cli("put", *k, srv.addr, str(src), "--as", "f.bin", timeout=30)
    assert r.returncode == 0, r.stderr
    assert (root / "f.bin").read_bytes() == data
    out = tmp_path / "back.bin"
    r = run_cli("get", *k, srv.addr, "f.bin", "-o", str(out), timeout=30)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == data
    r = run_cli("ls", *k, srv.addr)
    assert r.returncode == 0 and "f.bin" in r.stdout
    r = run_cli("exec", *k, srv.addr, "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")
    r = run_cli("exec", *k, "--stdin", srv.addr, "--", "wc", "-c", input="x" * 200000)
    assert (r.returncode, r.stdout.strip()) == (0, "200000")
    r = run_cli("time", *k, srv.addr, "--ts", "0", "--tz", "UTC")
    assert r.returncode == 0 and r.stdout.startswith("1970-01-01")
    r = run_cli("chat", *k, srv.addr, "--room", "t", "--nick", "n", input="hello\n")
    assert r.returncode == 0, r.stderr


def test_sigterm_with_tls_connections_open(start_server, key_file, secret):
    srv = start_server("--key-file", key_file)
    with sp.Client.tls_psk(srv.addr, secret) as c:
        c.hello()
        assert c.echo(b"a") == b"a"
        assert srv.terminate() == 0


# ---- keygen --show-tls-psk: other TLS stacks ---------------------------------


def test_keygen_show_tls_psk_matches_the_spec(run_cli, key_file, secret):
    r = run_cli("keygen", "--show-tls-psk", "--key-file", key_file)
    assert r.returncode == 0, r.stderr
    ident, psk = sp.tls_psk(secret)
    assert r.stdout == "identity %s\npsk %s\n" % (ident, psk)


def test_openssl_s_client_with_keygen_values(start_server, key_file, run_cli):
    """The interop recipe of the docs, to the letter: values from keygen,
    `openssl s_client -tls1_3 -psk_identity ID -psk HEX`, sockit/1 frames."""
    srv = start_server("--key-file", key_file)
    out = run_cli("keygen", "--show-tls-psk", "--key-file", key_file).stdout.split()
    ident, psk = out[1], out[3]
    with sp.Client.tls_psk(srv.addr, None, psk=(ident, psk)) as c:
        assert c.hello()["auth"] == "tls-psk"
        assert c.echo("héllo".encode()) == "héllo".encode()


# ---- certificate mode ----------------------------------------------------------


def spki_pin(cert_der):
    """sha256:HEX of a certificate's SubjectPublicKeyInfo, by openssl(1)."""
    pub = subprocess.run(["openssl", "x509", "-inform", "der", "-pubkey", "-noout"],
                         input=cert_der, capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub,
                         capture_output=True, check=True).stdout
    return "sha256:" + hashlib.sha256(der).hexdigest()


@pytest.fixture
def cert_server(start_server, key_file, run_cli, tmp_path):
    d = str(tmp_path / "cert")
    r = run_cli("keygen", "--cert", "-o", d)
    assert r.returncode == 0, r.stderr
    pin = r.stdout.strip()
    assert re.match(r"^sha256:[0-9a-f]{64}$", pin)
    assert oct(os.stat(os.path.join(d, "key.pem")).st_mode & 0o777) == "0o600"
    srv = start_server("--key-file", key_file, "--tls-cert", os.path.join(d, "cert.pem"),
                       "--tls-key", os.path.join(d, "key.pem"))
    assert "sockit: TLS certificate pin %s (clients: --tls-pin %s)" % (pin, pin) in \
        srv.stderr_lines
    srv.pin, srv.cert = pin, os.path.join(d, "cert.pem")
    return srv


def test_python_ssl_with_pin_runs_hmac_and_echo(cert_server, secret):
    """A standard TLS client: Python's ssl, the pin checked by hand, then the
    HMAC exchange of SPEC 4.3 inside TLS and an echo."""
    host, port = sp.parse_addr(cert_server.addr)[1][:2]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the pin below is the check
    raw = socket.create_connection((host, port), timeout=5)
    s = ctx.wrap_socket(raw)
    assert s.version() == "TLSv1.3"
    assert spki_pin(s.getpeercert(binary_form=True)) == cert_server.pin
    with sp.Client(s) as c:
        assert c.hello()["auth"] == "hmac-sha256"
        c.handshake(secret)
        assert c.echo(b"through python ssl") == b"through python ssl"


def test_cli_checks_the_certificate(cert_server, key_file, run_cli, tmp_path):
    k = ["--key-file", key_file]
    r = run_cli("echo", *k, "--tls-pin", cert_server.pin, cert_server.addr, "pinned")
    assert (r.returncode, r.stdout) == (0, "pinned\n"), r.stderr
    r = run_cli("echo", *k, "--tls-ca", cert_server.cert, cert_server.addr, "by", "ca")
    assert (r.returncode, r.stdout) == (0, "by ca\n"), r.stderr
    wrong = "sha256:" + "0" * 64
    msg = ("sockit echo: %s: the server's TLS certificate did not check out: give its pin "
           "(--tls-pin sha256:HEX, printed by sockit serve) or its CA (--tls-ca F)\n"
           % cert_server.addr)
    for extra in (["--tls-pin", wrong], []):  # a wrong pin; no pin: the system store
        r = run_cli("echo", *k, *extra, cert_server.addr, "x")
        assert (r.returncode, r.stdout, r.stderr) == (255, "", msg)
    other = str(tmp_path / "other")
    write_key(other)
    r = run_cli("echo", "--key-file", other, "--tls-pin", cert_server.pin, cert_server.addr, "x")
    assert r.returncode == 255 and "does not accept our key" in r.stderr


def test_certificate_flight_larger_than_the_handshake_buffer(start_server, key_file, secret,
                                                             tmp_path):
    """A server flight of several records (a certificate of about 12 KiB,
    400 names) reaches a standard client whole, and the connection then
    works: the guard for any change to the handshake's buffers."""
    d = tmp_path / "big"
    d.mkdir()
    names = ",".join("DNS:host-%03d.sockit-test.example" % i for i in range(400))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=big",
                    "-addext", "subjectAltName=" + names, "-keyout", str(d / "key.pem"),
                    "-out", str(d / "cert.pem")], capture_output=True, check=True)
    os.chmod(d / "key.pem", 0o600)
    srv = start_server("--key-file", key_file, "--tls-cert", str(d / "cert.pem"),
                       "--tls-key", str(d / "key.pem"))
    host, port = sp.parse_addr(srv.addr)[1][:2]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(socket.create_connection((host, port), timeout=5))
    der = s.getpeercert(binary_form=True)
    with open(d / "cert.pem") as f:
        assert der == ssl.PEM_cert_to_DER_cert(f.read())
    assert len(der) > 3 * 4096
    with sp.Client(s) as c:
        assert c.hello()["auth"] == "hmac-sha256"
        c.handshake(secret)
        assert c.echo(b"after a flight in parts") == b"after a flight in parts"
