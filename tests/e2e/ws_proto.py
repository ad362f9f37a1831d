"""A small RFC 6455 client for the tests of the HTTP front's /ws: a socket
look-alike whose sendall() sends one masked binary message and whose recv()
returns the payload of the server's binary messages, so that
sockit_proto.Client runs the native protocol over it unchanged."""

import base64
import hashlib
import os
import socket
import ssl
import struct
import subprocess
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def http_addr(srv, wait_for):
    """A started server's --http address, from its `listening on ADDR (http)` line."""
    def find():
        for line in srv.stderr_lines:
            if line.startswith("sockit: listening on ") and line.endswith((" (http)", " (https)")):
                return line.split()[3]
        return None
    assert wait_for(find), srv.stderr_text()
    return find()


def self_signed_cert(directory):
    """A self-signed EC certificate for 127.0.0.1 -> (cert path, key path)."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    os.chmod(key, 0o600)
    return cert, key


def dial(host, port, timeout, tls_ca=None, rcvbuf=None):
    """A connected socket (TLS with tls_ca); rcvbuf is set before connecting,
    so that the window the peer sees is small from the start."""
    if rcvbuf is None:
        s = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    else:
        fam, _, _, _, sa = socket.getaddrinfo(host.strip("[]"), int(port),
                                              type=socket.SOCK_STREAM)[0]
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        s.connect(sa)
    if tls_ca is None:
        return s
    ctx = ssl.create_default_context(cafile=tls_ca)
    return ctx.wrap_socket(s, server_hostname=host.strip("[]"))


def http_request(addr, raw, timeout=5.0, tls_ca=None):
    """Send raw bytes to an HTTP address (HTTPS with tls_ca, the server's
    certificate), read until the server closes (or timeout) -> bytes."""
    host, port = addr.rsplit(":", 1)
    s = dial(host, port, timeout, tls_ca)
    try:
        s.sendall(raw)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def encode_frame(opcode, payload, mask=True, fin=True, rsv=0, length=None):
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload)) if len(payload) < 4096 else \
        _xor_fast(payload, key)
    return head + key + masked


def _xor_fast(data, key):
    k = int.from_bytes((key * ((len(data) + 3) // 4))[:len(data)], "big")
    return (int.from_bytes(data, "big") ^ k).to_bytes(len(data), "big")


class WSSocket:
    """The client side of one /ws connection."""

    def __init__(self, addr, path="/ws", timeout=5.0, extra_headers=b"", tls_ca=None,
                 rcvbuf=None):
        host, port = addr.rsplit(":", 1)
        self.sock = dial(host, port, timeout, tls_ca, rcvbuf)
        self.family = self.sock.family
        key = base64.b64encode(os.urandom(16))
        self.sock.sendall(
            b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + addr.encode() +
            b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
            b"\r\nSec-WebSocket-Version: 13\r\n" + extra_headers + b"\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake: %r" % head)
            head += chunk
        head, self.raw = head.split(b"\r\n\r\n", 1)
        self.raw = bytearray(self.raw)
        self.status_line = head.split(b"\r\n")[0]
        if b" 101 " not in self.status_line:
            raise ConnectionError("no upgrade: %r" % head)
        want = base64.b64encode(hashlib.sha1(key + GUID).digest())
        assert b"Sec-WebSocket-Accept: " + want in head, head
        self.messages = []   # payload sizes of the binary messages received
        self.close_code = None
        self.pending = bytearray()

    # socket look-alike ---------------------------------------------------------
    def setsockopt(self, *a):
        self.sock.setsockopt(*a)

    def settimeout(self, t):
        self.sock.settimeout(t)

    def getsockname(self):
        return self.sock.getsockname()

    def sendall(self, data):
        self.sock.sendall(encode_frame(2, bytes(data)))

    def send_frame(self, raw):
        self.sock.sendall(raw)

    def shutdown(self, how):
        self.sock.shutdown(how)

    def close(self):
        self.sock.close()

    def _raw_exact(self, n):
        while len(self.raw) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionResetError("closed mid-frame")
            self.raw += chunk
        out = bytes(self.raw[:n])
        del self.raw[:n]
        return out

    def recv_message(self):
        """-> (opcode, payload) of the next server frame; server frames are
        never masked and never fragmented."""
        b0, b1 = self._raw_exact(2)
        assert b0 & 0x80, "server fragmented a message"
        assert not b1 & 0x80, "server masked a frame"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._raw_exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._raw_exact(8))[0]
        return b0 & 0x0F, self._raw_exact(n)

    def recv(self, n):
        if self.pending:
            out = bytes(self.pending[:n])
            del self.pending[:n]
            return out
        if self.close_code is not None:
            return b""
        try:
            op, payload = self.recv_message()
        except ConnectionResetError:
            return b""
        if op == 8:
            self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            return b""
        assert op == 2, "server sent opcode %d" % op
        self.messages.append(len(payload))
        self.pending += payload
        return self.recv(n)
