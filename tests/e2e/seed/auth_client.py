"""The tutorial's HMAC client (验证客户端链接合法性), non-interactive.

Wire behaviour kept: the random number is read with sk.recv(bufsize), each
try sends hmac.new(key, random_digit, digestmod='md5').digest() (the
tutorial omits digestmod, which Python 3.8+ requires; md5 was its default)
and reads the verdict with sk.recv(bufsize); `q` sends b'q' and leaves.
The keys come from the command line instead of input().

usage: auth_client.py HOST:PORT KEY... [q]
Prints the number, then one verdict per try; after `q` prints "closed"
when the server has closed the connection.
"""
import hmac
import socket
import sys


def server_key(sk, bufsize, keys):
    random_digit = sk.recv(bufsize)
    print(random_digit.decode("ascii"))
    for secret_key in keys:
        if secret_key == "q":
            sk.send(b"q")
            sk.settimeout(5)
            if sk.recv(bufsize) == b"":
                print("closed")
            sk.close()
            break
        encryption_obj = hmac.new(secret_key.encode("utf-8"), random_digit, digestmod="md5")
        client_key = encryption_obj.digest()
        sk.send(client_key)
        ret = sk.recv(bufsize).decode("utf-8")
        print(ret)
        if ret == "验证成功":
            sk.close()
            break


def main(argv):
    host, port = argv[1].rsplit(":", 1)
    bufsize = 1024
    sk = socket.socket()
    sk.connect((host, int(port)))
    server_key(sk, bufsize, argv[2:])


if __name__ == "__main__":
    main(sys.argv)
