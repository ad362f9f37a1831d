"""The connection log against hostile peers (issue 15 item 11).

Before: C1 CSI (U+009B) and RIGHT-TO-LEFT OVERRIDE (U+202E) in a field went
to the log raw, so `cat conn.log` in a terminal ran a peer's escape
sequences or reversed the rest of a line; every connection before
authentication wrote its lines, so a flood of connections filled the disk;
and a log moved away by logrotate was written to for ever."""
import json
import os
import signal
import socket

import pytest

import sockit_proto as sp
from conftest import wait_for

# Raw sockit/1 frames from Python: plain servers (conftest.py).
pytestmark = pytest.mark.no_tls

HOSTILE = "a\u009b31mB\u202eC\u2066D\u200bE\u0085F\x1b[2JG\x7fH"
RAW = [s.encode() for s in ("\u009b", "\u202e", "\u2066", "\u200b", "\u0085")] + [b"\x1b", b"\x7f"]


def exec_log(start_server, key_file, secret, tmp_path, *fmt):
    log = str(tmp_path / "conn.log")
    srv = start_server("--key-file", key_file, "--allow-exec", "--root", str(tmp_path), "--log",
                       log, *fmt)
    with srv.connect() as c:
        c.handshake(secret)
        c.send({"type": "exec", "argv": ["true", HOSTILE]})
        while c.recv_frame()[0]["type"] != "exit":
            pass
    lines = wait_for(lambda: [l for l in open(log, "rb") if b"exec" in l], 3)
    assert len(lines) == 1, lines
    return lines[0]


def test_text_log_escapes_controls_format_and_bidi(start_server, key_file, secret, tmp_path):
    line = exec_log(start_server, key_file, secret, tmp_path)
    for raw in RAW:
        assert raw not in line, (raw, line)
    assert (b'argv="true a\\u009b31mB\\u202eC\\u2066D\\u200bE\\u0085F\\u001b[2JG\\u007fH"'
            in line), line


def test_json_log_escapes_and_round_trips(start_server, key_file, secret, tmp_path):
    line = exec_log(start_server, key_file, secret, tmp_path, "--log-format", "json")
    for raw in RAW:
        assert raw not in line, (raw, line)
    assert json.loads(line)["argv"] == "true " + HOSTILE


def test_preauth_lines_limited_per_source_with_a_summary(start_server, key_file, secret,
                                                         tmp_path):
    log = str(tmp_path / "conn.log")
    srv = start_server("--key-file", key_file, "--log", log)
    host, port = sp.parse_addr(srv.addr)[1]
    for _ in range(200):  # connect, close without a word: accept + close lines
        socket.create_connection((host, port)).close()
    with srv.connect() as c:  # a key holder is still served and logged once authenticated
        c.handshake(secret)
        assert c.echo(b"x") == b"x"
    summary = wait_for(lambda: [l for l in open(log) if "log_suppressed" in l], 15, step=0.2)
    lines = open(log).read().splitlines()
    assert len([l for l in lines if " accept" in l]) <= 20, len(lines)
    assert len(lines) < 60, len(lines)  # 401 lines before
    assert any(" auth_ok" in l for l in lines)
    assert len(summary) == 1 and summary[0].split()[1] == "127.0.0.1", summary
    assert int(summary[0].split("lines=")[1].split()[0]) >= 340, summary


def test_sighup_reopens_the_log_file(start_server, key_file, secret, tmp_path):
    log = str(tmp_path / "conn.log")
    srv = start_server("--key-file", key_file, "--log", log)
    with srv.connect() as c:
        c.handshake(secret)
    assert wait_for(lambda: "auth_ok" in open(log).read(), 3)
    os.rename(log, log + ".1")  # what logrotate does
    srv.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: os.path.exists(log), 3)

    def logged_in_new_file():
        with srv.connect() as c:
            c.handshake(secret)
        return os.path.exists(log) and "auth_ok" in open(log).read()

    assert wait_for(logged_in_new_file, 5, step=0.1)
    assert srv.alive()
    assert open(log + ".1").read().count("auth_ok") == 1
