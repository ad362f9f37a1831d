"""sockit bench against real servers: every mode speaks what the server
speaks (TLS keyed by the secret, a checked certificate, or plain), checks
every byte, and a server it cannot use is told in the words of every other
client command. Runs are short: these check behaviour, not speed."""
import json
import os

import pytest

from conftest import write_key
from test_tls import cert_server  # noqa: F401 (a fixture)

SHORT = ("-d", "0.3", "--timeout", "10")


def bench(run_cli, *args, timeout=30):
    r = run_cli("bench", "-q", "--json", *args, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_echo_over_tls_by_default_verifies_every_byte(server, run_cli, key_file):
    out = bench(run_cli, "--key-file", key_file, server.addr, "-c", "8", "-p", "4",
                "-s", "3000", *SHORT)
    assert out["security"] == "TLSv1.3 (psk), TLS_AES_128_GCM_SHA256"
    assert out["ok"] is True and out["requests"] > 0
    assert out["mb_s"] > 0 and out["conns"] == 8


def test_echo_plain_against_a_no_tls_server(start_server, run_cli, key_file):
    srv = start_server("--key-file", key_file, tls=False)
    out = bench(run_cli, "--key-file", key_file, srv.addr, "-c", "4", "-p", "2", *SHORT)
    assert out["security"] == "plain"
    assert out["requests"] > 0


def test_large_bodies_over_tls_cross_record_boundaries(server, run_cli, key_file):
    # 100 KB bodies span several 16 KiB records each way
    out = bench(run_cli, "--key-file", key_file, server.addr, "-c", "2", "-p", "2",
                "-s", "100000", *SHORT)
    assert out["requests"] > 0 and out["size"] == 100000


def test_conns_mode_over_tls_every_connection_answers(server, run_cli, key_file):
    out = bench(run_cli, "--key-file", key_file, server.addr, "--mode", "conns", "-c", "60",
                "--hold", "0.2", "--server-pid", str(server.proc.pid))
    assert (out["established"], out["answered_ping"]) == (60, 60)
    assert out["security"].startswith("TLSv1.3 (psk)")
    assert out["server_rss_growth_kb"] >= 0


def test_chat_over_tls_delivers(server, run_cli, key_file):
    out = bench(run_cli, "--key-file", key_file, server.addr, "--mode", "chat", "-c", "4",
                "-p", "4", *SHORT)
    assert out["messages"] > 0 and out["deliveries"] >= out["messages"]


def test_put_and_get_over_tls(server, run_cli, key_file):
    for mode in ("put", "get"):
        out = bench(run_cli, "--key-file", key_file, server.addr, "--mode", mode,
                    "--size", "3000000")
        assert (out["bytes"], out["security"][:7]) == (3000000, "TLSv1.3")
        assert out["hash"].split(":")[0] in ("xxh128", "sha256", "xxh3", "blake2b")


def test_certificate_mode_runs_the_hmac_inside_tls(cert_server, run_cli, key_file):  # noqa: F811
    out = bench(run_cli, "--key-file", key_file, "--tls-pin", cert_server.pin, cert_server.addr,
                "-c", "3", "-p", "2", *SHORT)
    assert out["security"].startswith("TLSv1.3 (certificate), TLS_")
    assert out["requests"] > 0


@pytest.mark.parametrize("case", ["no_tls_at_tls", "tls_at_plain", "wrong_key"])
def test_a_server_it_cannot_use_is_one_clear_line(case, start_server, run_cli, key_file,
                                                  tmp_path):
    if case == "tls_at_plain":
        srv = start_server("--key-file", key_file, tls=False)
        args, want = [srv.addr], "%s speaks plain sockit/1, not TLS: add --no-tls" % srv.addr
    else:
        srv = start_server("--key-file", key_file)
        if case == "no_tls_at_tls":
            args, want = ["--no-tls", srv.addr], "%s speaks TLS: drop --no-tls" % srv.addr
        else:
            other = str(tmp_path / "other")
            write_key(other)
            args, want = ["--key-file", other, srv.addr], "%s does not accept our key" % srv.addr
    if case != "wrong_key":
        args = ["--key-file", key_file] + args
    r = run_cli("bench", "-q", *args, "-d", "0.3", as_is=True, timeout=30)
    assert r.returncode == 255, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sockit bench: " + want), r.stderr
    assert r.stdout == ""
