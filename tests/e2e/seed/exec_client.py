"""The tutorial's struct-based command client (方案进阶), non-interactive.

Wire behaviour kept: the command is sent with sk.send(key.encode('utf-8')),
the length is read with struct.unpack('i', sk.recv(4)) and the output with
one sk.recv(res_len); `q` is sent and the client leaves. The tutorial
decodes with 'gbk' (a Chinese Windows console); here the bytes are printed
as JSON so that a test can check them exactly.

usage: exec_client.py HOST:PORT COMMAND... [q]
Prints one JSON line per command: {"cmd", "len", "out"}; after `q` prints
{"closed": true} when the server has closed the connection.
"""
import json
import socket
import struct
import sys


def main(argv):
    host, port = argv[1].rsplit(":", 1)
    sk = socket.socket()
    sk.connect((host, int(port)))
    for key in argv[2:]:
        if key == "q":
            sk.send(key.encode("utf-8"))
            sk.settimeout(5)
            print(json.dumps({"closed": sk.recv(1024) == b""}))
            break
        else:
            sk.send(key.encode("utf-8"))
        res_len = struct.unpack("i", sk.recv(4))[0]
        ret = sk.recv(res_len)
        print(json.dumps({"cmd": key, "len": res_len, "out": ret.decode("latin-1")}))
    sk.close()


if __name__ == "__main__":
    main(sys.argv)
