#!/usr/bin/python3
"""tcp_pipe.py HOST PORT - stdin to a TCP peer, its answer to stdout; the
write side is shut down at stdin's EOF and we exit at the peer's EOF. A
plain client for timing `ncat --exec` beside `sockit exec` (bench/)."""
import os
import socket
import sys
import threading

CHUNK = 1 << 18


def pump_in(s):
    while True:
        b = os.read(0, CHUNK)
        if not b:
            break
        s.sendall(b)
    s.shutdown(socket.SHUT_WR)


def main():
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
    t = threading.Thread(target=pump_in, args=(s,), daemon=True)
    t.start()
    out = sys.stdout.buffer
    while True:
        b = s.recv(CHUNK)
        if not b:
            break
        out.write(b)
    out.flush()


if __name__ == "__main__":
    main()
