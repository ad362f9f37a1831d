"""Encrypted pipes (SPEC 3.1 and 8): `sockit listen --tls` / `connect --tls`,
TLS 1.3 keyed by the key file, between each other and against openssl's
s_server / s_client with the PSK from `keygen --show-tls-psk`."""

import hashlib
import os
import subprocess
import threading

from conftest import free_port, write_key
from test_pipes import MIB, feed, spawn  # noqa: F401 (spawn is a fixture)

import sockit_proto as sp


def test_100_MB_byte_exact_both_ways(spawn, key_file, tmp_path):
    size = 100 * MIB
    a = os.urandom(size)
    b = os.urandom(MIB)
    lis = spawn("listen", "--tls", "--key-file", key_file, "127.0.0.1:0")
    addr = lis.listening()
    # --keep-sending: the listener's 1 MiB ends long before the 100 MB, and
    # without it connect stops once its stdin is silent for 0.5 s after the
    # peer's end (SPEC 3.1), which the feeding thread can be on a loaded
    # machine (a short lis.out, seen once under load average 30)
    con = spawn("connect", "--tls", "--keep-sending", "--key-file", key_file, addr)
    threads = [feed(con, a), feed(lis, b)]
    lis.wait_for(lambda: len(lis.out) >= size or lis.proc.poll() is not None, timeout=120)
    assert lis.finish(timeout=60) == 0, lis.err.decode()
    assert con.finish(timeout=60) == 0, con.err.decode()
    for t in threads:
        t.join(timeout=10)
    assert hashlib.sha256(bytes(lis.out)).digest() == hashlib.sha256(a).digest()
    assert bytes(con.out) == b


def test_wrong_key_fails_both_sides(spawn, key_file, tmp_path):
    other = str(tmp_path / "other")
    write_key(other)
    lis = spawn("listen", "--tls", "--key-file", key_file, "127.0.0.1:0")
    addr = lis.listening()
    con = spawn("connect", "--tls", "--key-file", other, addr)
    con.close_stdin()
    assert con.finish() == 255
    assert con.err.decode().startswith("sockit connect: TLS with %s failed" % addr)
    assert "same key file" in con.err.decode()
    assert lis.finish() == 255 and bytes(lis.out) == b""


def test_tls_connect_to_openssl_s_server(spawn, key_file, secret, tmp_path):
    data = os.urandom(4 * MIB)
    ident, psk = sp.tls_psk(secret)
    port = free_port()
    out = open(tmp_path / "got", "wb")
    srv = subprocess.Popen(["openssl", "s_server", "-quiet", "-tls1_3", "-nocert", "-psk", psk,
                            "-psk_identity", ident, "-accept", "127.0.0.1:%d" % port,
                            "-naccept", "1"], stdin=subprocess.PIPE, stdout=out,
                           stderr=subprocess.DEVNULL)
    try:
        con = None
        for _ in range(100):  # s_server prints nothing when it listens
            con = spawn("connect", "--tls", "--key-file", key_file, "127.0.0.1:%d" % port)
            feed(con, data)
            rc = con.finish(timeout=30)
            if rc == 0:
                break
            assert "cannot connect" in con.err.decode(), con.err.decode()
            threading.Event().wait(0.05)
        assert rc == 0, con.err.decode()
        srv.stdin.close()
        srv.wait(timeout=10)
    finally:
        if srv.poll() is None:
            srv.kill()
        out.close()
    assert (tmp_path / "got").read_bytes() == data


def test_openssl_s_client_to_tls_listen(spawn, key_file, secret):
    data = os.urandom(4 * MIB)
    ident, psk = sp.tls_psk(secret)
    lis = spawn("listen", "--tls", "--key-file", key_file, "127.0.0.1:0")
    host, port = lis.listening().rsplit(":", 1)
    # s_client sends its stdin and closes at its end (no -quiet: that implies
    # -ign_eof; -nocommands: a line starting with Q or R is data); listen's
    # stdin stays open and silent, so it ends after writing out what the
    # peer sent (SPEC 3.1)
    r = subprocess.run(["openssl", "s_client", "-nocommands", "-tls1_3", "-psk", psk,
                        "-psk_identity", ident, "-connect", "%s:%s" % (host, port)],
                       input=data, capture_output=True, timeout=60)
    assert lis.finish(timeout=30) == 0, lis.err.decode()
    assert bytes(lis.out) == data
