"""The tutorial's test 2 time client, made non-interactive.

Wire behaviour kept: each timestamp is sent as bytes(str(int)), and the
answer is read with one sk.recv(1024). The tutorial sleeps 10 s between
sends; here the pause and the timestamps come from the command line.

usage: time_client.py HOST:PORT [--every SECONDS] [TIMESTAMP...]
Prints one line per timestamp: "TIMESTAMP<TAB>ANSWER".
"""
import socket
import sys
import time


def main(argv):
    host, port = argv[1].rsplit(":", 1)
    args = argv[2:]
    every = 0.0
    if args[:1] == ["--every"]:
        every, args = float(args[1]), args[2:]
    stamps = args or [str(int(time.time()))]
    sk = socket.socket()
    sk.connect((host, int(port)))
    for i, stamp in enumerate(stamps):
        if i and every:
            time.sleep(every)
        timer = int(stamp) if stamp.lstrip("-").isdigit() else stamp
        sk.send(bytes(str(timer), encoding="utf-8"))
        ret = sk.recv(1024).decode("utf-8")
        print("%s\t%s" % (stamp, ret.rstrip("\n")))
    sk.close()


if __name__ == "__main__":
    main(sys.argv)
