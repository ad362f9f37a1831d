"""The tutorial's test 1 chat server ("柚柚柚切克闹"), as a second client of
the seed chat broker: it connects where the tutorial's program listened,
and otherwise behaves the same. Wire behaviour kept: sk.recv(1024) per
message; on 'cool:bye' it sends '柚柚柚切克闹:bye' and leaves; otherwise it
answers bytes('柚柚柚切克闹:%s' % info). The answers come from the command
line instead of input().

usage: chat_peer.py HOST:PORT ANSWER...
Prints "ready" once connected, then every message it received.
"""
import socket
import sys


def main(argv):
    host, port = argv[1].rsplit(":", 1)
    answers = list(argv[2:])
    conn = socket.socket()
    conn.connect((host, int(port)))
    conn.settimeout(10)
    print("ready", flush=True)
    while True:
        ret = conn.recv(1024).decode("utf-8")
        if not ret:  # the broker went away
            break
        print(ret, flush=True)
        if ret == "cool:bye":
            conn.send(bytes("柚柚柚切克闹:bye", encoding="utf-8"))
            break
        info = answers.pop(0) if answers else "bye"
        conn.send(bytes("柚柚柚切克闹:%s" % (info), encoding="utf-8"))
    conn.close()


if __name__ == "__main__":
    main(sys.argv)
