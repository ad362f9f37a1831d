"""The tutorial's large-file upload client (利用报头和struct模块发送大文件).

Wire behaviour kept: a head dict with filepath, filename and filesize,
json.dumps(head).encode('utf-8'), struct.pack('i', head_len) and the head
sent with sk.send, then the file read and sent 4096 bytes at a time with
sk.send, then sk.close(). The tutorial hard-codes a Windows path; here the
file comes from the command line, and --as NAME sends another filename (for
the test that a hostile name cannot leave the server's root).

usage: put_client.py HOST:PORT FILE [--as NAME]
"""
import json
import os
import socket
import struct
import sys


def main(argv):
    host, port = argv[1].rsplit(":", 1)
    path = argv[2]
    read_bytes = 4096
    head = {
        "filepath": os.path.dirname(os.path.abspath(path)),
        "filename": argv[4] if argv[3:4] == ["--as"] else os.path.basename(path),
        "filesize": None,
    }
    sk = socket.socket()
    sk.connect((host, int(port)))
    filesize = os.path.getsize(path)
    head["filesize"] = filesize
    bytes_head = json.dumps(head).encode("utf-8")
    head_len = len(bytes_head)
    pack_head_len = struct.pack("i", head_len)
    sk.send(pack_head_len)
    sk.send(bytes_head)
    with open(path, "rb") as f:
        while filesize:
            if filesize >= read_bytes:
                content = f.read(read_bytes)
                sk.send(content)
                filesize -= read_bytes
            else:
                content = f.read(read_bytes)
                sk.send(content)
                break
    sk.close()


if __name__ == "__main__":
    main(sys.argv)
