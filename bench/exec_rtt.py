#!/usr/bin/python3
"""1,000 sequential `exec -- true` round trips on one connection, beside the
same 1,000 programs started locally (subprocess) and through `ncat --exec`
(one connection per program, as ncat offers no other way).

usage: exec_rtt.py SOCKIT_BIN [N]      (prints one line per measurement)
Standard library only; the protocol client is tests/e2e/sockit_proto.py."""

import os
import re
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import sockit_proto as sp  # noqa: E402


def start(argv, pattern):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    for line in p.stderr:
        m = re.search(pattern, line.decode())
        if m:
            return p, m.group(1)
    raise RuntimeError("did not start: %r" % argv)


def sockit_rtt(binary, n, tmp):
    key = os.path.join(tmp, "key")
    with open(key, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    os.chmod(key, 0o600)
    srv, addr = start([binary, "serve", "-l", "127.0.0.1:0", "--key-file", key, "--allow-exec",
                       "--root", tmp], r"listening on (\S+)")
    try:
        c = sp.Client.connect(addr)
        c.handshake(sp.load_secret(key))
        t0 = time.perf_counter()
        for _ in range(n):
            c.send({"type": "exec", "argv": ["true"]})
            head, _ = c.recv_frame()
            assert head == {"type": "exit", "code": 0}, head
        dt = time.perf_counter() - t0
        c.close()
    finally:
        srv.terminate()
        srv.wait()
    return dt


def local_rtt(n):
    t0 = time.perf_counter()
    for _ in range(n):
        subprocess.run(["true"], check=True)
    return time.perf_counter() - t0


def ncat_rtt(n):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = subprocess.Popen(["ncat", "-l", "-k", "127.0.0.1", str(port), "--exec", "/bin/true"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        t0 = time.perf_counter()
        for _ in range(n):
            with socket.create_connection(("127.0.0.1", port)) as s:
                while s.recv(4096):  # until `true` exits and ncat closes
                    pass
        return time.perf_counter() - t0
    finally:
        srv.terminate()
        srv.wait()


def main():
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    with tempfile.TemporaryDirectory() as tmp:
        for name, dt in (("sockit exec, one connection", sockit_rtt(binary, n, tmp)),
                         ("local subprocess.run", local_rtt(n)),
                         ("ncat --exec, a connection each", ncat_rtt(n))):
            print("%-32s %5d runs  %6.3f s  %6.3f ms/run" % (name, n, dt, dt * 1000 / n))


if __name__ == "__main__":
    main()
