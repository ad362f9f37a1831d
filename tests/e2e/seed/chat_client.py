"""The tutorial's test 1 chat client ("cool"), non-interactive.

Wire behaviour kept: each line is sent as bytes('cool:%s' % chat) and the
answer read with one sk.recv(1024); when the answer is '柚柚柚切克闹:bye'
the client sends 'cool:bye' and leaves. The lines come from the command
line instead of input().

usage: chat_client.py HOST:PORT LINE...
Prints every answer on its own line.
"""
import socket
import sys


def main(argv):
    host, port = argv[1].rsplit(":", 1)
    sk = socket.socket()
    sk.connect((host, int(port)))
    sk.settimeout(10)
    for chat in argv[2:]:
        sk.send(bytes("cool:%s" % (chat), encoding="utf-8"))
        ret = sk.recv(1024).decode("utf-8")
        print(ret, flush=True)
        if ret == "柚柚柚切克闹:bye":
            sk.send(bytes("cool:bye", encoding="utf-8"))
            break
    sk.close()


if __name__ == "__main__":
    main(sys.argv)
