"""Failed-auth penalties (SPEC 4.3 v2, issue 15 item 8).

Before: five junk macs from one address locked out every key holder there
(all local users on loopback, everyone behind a NAT) for 60 s, renewable for
ever by a keyless attacker, and Unix-socket peers were never limited. Now
the first penalty is 5 s and grows only with further wrong macs,
--rate-limit-exempt trusts chosen sources, and a Unix peer is its uid. The
policy's arithmetic (doubling, the 10 minute cap, the decay) is checked with
an injected clock in tests/unit/test_auth.c."""
import os
import time

import pytest

from conftest import wait_for

# Raw sockit/1 frames from Python: plain servers (conftest.py).
pytestmark = pytest.mark.no_tls


def fail_five(srv, addr=None):
    wrong = os.urandom(32).hex().encode()
    for i in range(5):
        with srv.connect(addr) as c:
            head = c.auth(wrong)
            assert (head["type"], head.get("code")) == ("error", "auth_failed"), (i, head)
            assert c.is_closed(3)


def try_key(srv, secret, addr=None):
    """'ok' or the error code the right key gets now."""
    with srv.connect(addr) as c:
        first, _ = c.recv_frame()
        if first["type"] != "hello":
            return first.get("code")
        c.hello_head = first
        head = c.auth(secret)
        return "ok" if head["type"] == "auth_ok" else head.get("code")


def test_first_penalty_is_five_seconds(start_server, key_file, secret):
    srv = start_server("--key-file", key_file)
    fail_five(srv)
    t0 = time.monotonic()
    assert try_key(srv, secret) == "rate_limited"
    assert wait_for(lambda: try_key(srv, secret) == "ok", 8, step=0.25)
    assert 3.5 < time.monotonic() - t0 < 7.5


def test_rate_limit_exempt_source_is_never_locked_out(start_server, key_file, secret):
    srv = start_server("--key-file", key_file, "--rate-limit-exempt", "127.0.0.0/8")
    fail_five(srv)
    fail_five(srv)
    assert try_key(srv, secret) == "ok"


def test_rate_limit_exempt_other_network_does_not_cover_us(start_server, key_file, secret):
    srv = start_server("--key-file", key_file, "--rate-limit-exempt", "10.0.0.0/8",
                       "--rate-limit-exempt", "::1/128")
    fail_five(srv)
    assert try_key(srv, secret) == "rate_limited"


def test_unix_peers_are_limited_by_uid(start_server, key_file, secret, short_dir):
    path = os.path.join(short_dir, "s.sock")
    srv = start_server("--key-file", key_file, listen=("unix:" + path, "127.0.0.1:0"))
    unix = srv.addr_of("unix")
    fail_five(srv, unix)
    assert try_key(srv, secret, unix) == "rate_limited"
    # the same uid over TCP is another source: 127.0.0.1 is not locked out
    assert try_key(srv, secret, srv.addr_of("ipv4")) == "ok"
