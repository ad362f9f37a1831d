"""An independent Python client of the sockit native wire protocol (SPEC 4).

This module is the test oracle of the end-to-end suite: it is written from
SPEC.md alone and shares no code with the C implementation.

Frame layout (SPEC 4.1):

    u32 big-endian head_len (2..65536) | head: UTF-8 JSON object with a
    string "type" | body: head["size"] bytes (0 when there is no "size")

Handshake (SPEC 4.3):

    server -> {"type":"hello","auth":"hmac-sha256","nonce":SN,...}
    client -> {"type":"auth","nonce":CN,
               "mac":hex(HMAC-SHA256(secret, "sockit/1 client:" + SN + ":" + CN))}
    server -> {"type":"auth_ok",
               "mac":hex(HMAC-SHA256(secret, "sockit/1 server:" + CN + ":" + SN))}
"""

import hashlib
import hmac
import json
import os
import re
import socket
import struct
import subprocess
import time

PROTO = "sockit/1"
HEAD_MIN = 2
HEAD_MAX = 65536
DEFAULT_TIMEOUT = 5.0
HEX64 = re.compile(r"[0-9a-f]{64}")


class ProtoError(Exception):
    """The peer broke the wire protocol (as seen by this client)."""


class Timeout(ProtoError):
    """Nothing (or not enough) arrived before the deadline."""


class Closed(ProtoError):
    """The peer closed the connection (EOF or reset)."""

    def __init__(self, msg, partial=b""):
        super().__init__(msg)
        self.partial = partial


class ServerError(ProtoError):
    """The server answered with a frame we did not want (usually type error)."""

    def __init__(self, head, body=b""):
        super().__init__("server answered %r" % (head,))
        self.head = head
        self.body = body
        self.code = head.get("code") if isinstance(head, dict) else None


class AuthError(ProtoError):
    """The server's auth_ok mac did not verify (mutual authentication)."""


# ---------------------------------------------------------------------------
# pure helpers


def load_secret(path):
    """Key file content with trailing spaces, tabs, CR and LF removed."""
    with open(path, "rb") as f:
        return f.read().rstrip(b" \t\r\n")


def client_mac(secret, server_nonce, client_nonce):
    msg = ("%s client:%s:%s" % (PROTO, server_nonce, client_nonce)).encode("ascii")
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


def server_mac(secret, server_nonce, client_nonce):
    msg = ("%s server:%s:%s" % (PROTO, client_nonce, server_nonce)).encode("ascii")
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


def new_nonce():
    return os.urandom(32).hex()


def tls_psk(secret):
    """SPEC 8: (identity, psk hex) of the TLS 1.3 external PSK of a secret,
    written from the spec's formulas (HKDF-SHA256 extract and one expand)."""
    prk = hmac.new(b"sockit/2 tls", secret, hashlib.sha256).digest()
    psk = hmac.new(prk, b"psk\x01", hashlib.sha256).hexdigest()
    ident = "sockit/2:" + hashlib.sha256(b"sockit/2 key id:" + secret).hexdigest()[:16]
    return ident, psk


def encode_head(head):
    if isinstance(head, (bytes, bytearray)):
        return bytes(head)
    return json.dumps(head, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def raw_frame(head_bytes, body=b"", head_len=None):
    """A frame from literal head bytes; head_len may be forced (for bad frames)."""
    if head_len is None:
        head_len = len(head_bytes)
    return struct.pack(">I", head_len) + head_bytes + bytes(body)


def frame(head, body=b"", set_size=True):
    """Encode one frame. With set_size, head["size"] is set to len(body)
    whenever there is a body or the head already names a size."""
    if isinstance(head, dict):
        head = dict(head)
        if set_size and (body or "size" in head):
            head["size"] = len(body)
    hb = encode_head(head)
    if not HEAD_MIN <= len(hb) <= HEAD_MAX:
        raise ValueError("head of %d bytes cannot be framed" % len(hb))
    return raw_frame(hb, body)


def parse_addr(addr):
    """'HOST:PORT', '[V6]:PORT', ':PORT' or 'unix:/path' -> (family, sockaddr)."""
    if addr.startswith("unix:"):
        return socket.AF_UNIX, addr[5:]
    if addr.startswith("["):
        host, _, port = addr[1:].partition("]:")
        return socket.AF_INET6, (host, int(port))
    host, _, port = addr.rpartition(":")
    if not host:
        host = "127.0.0.1"
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    return fam, (host, int(port))


def check_head(head_bytes):
    """Decode and validate a head the way SPEC 4.1 says; return the dict."""
    try:
        head = json.loads(head_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtoError("head is not UTF-8 JSON: %r (%s)" % (head_bytes[:200], e))
    if not isinstance(head, dict):
        raise ProtoError("head is not a JSON object: %r" % (head_bytes[:200],))
    if not isinstance(head.get("type"), str):
        raise ProtoError("head has no string type: %r" % (head,))
    size = head.get("size", 0)
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= 2**53 - 1:
        raise ProtoError("bad size member: %r" % (head,))
    return head


# ---------------------------------------------------------------------------
# the client


class Client:
    def __init__(self, sock, timeout=DEFAULT_TIMEOUT):
        self.sock = sock
        self.timeout = timeout
        self.buf = bytearray()
        self.bytes_sent = 0
        self.bytes_received = 0
        self.hello_head = None
        self.eof = False
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- connecting ---------------------------------------------------------

    @classmethod
    def connect(cls, addr, timeout=DEFAULT_TIMEOUT):
        fam, sa = parse_addr(addr)
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(sa)
        except BaseException:
            s.close()
            raise
        return cls(s, timeout)

    @classmethod
    def tcp(cls, host, port, timeout=DEFAULT_TIMEOUT):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect((host, port))
        except BaseException:
            s.close()
            raise
        return cls(s, timeout)

    @classmethod
    def unix(cls, path, timeout=DEFAULT_TIMEOUT):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(path)
        except BaseException:
            s.close()
            raise
        return cls(s, timeout)

    @classmethod
    def tls_psk(cls, addr, secret, timeout=DEFAULT_TIMEOUT, extra=(), psk=None):
        """A client over TLS 1.3 keyed by secret (SPEC 8), or by psk, an
        (identity, hex key) pair given as is. Python's ssl module has no
        TLS 1.3 external PSK, so `openssl s_client` does the TLS; frames go
        through a socketpair to its stdin and stdout."""
        family, where = parse_addr(addr)
        if family == socket.AF_UNIX:
            raise ValueError("tls_psk needs a TCP address")
        host, port = where[0], where[1]
        ident, psk = psk if psk is not None else tls_psk(secret)
        ours, theirs = socket.socketpair()
        argv = ["openssl", "s_client", "-quiet", "-tls1_3", "-psk_identity", ident, "-psk", psk,
                "-connect", "%s:%d" % (host if ":" not in host else "[%s]" % host, port)]
        proc = subprocess.Popen(argv + list(extra), stdin=theirs.fileno(), stdout=theirs.fileno(),
                                stderr=subprocess.PIPE)
        theirs.close()
        ours.settimeout(timeout)
        c = cls(ours, timeout)
        c.proc = proc
        return c

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        proc = getattr(self, "proc", None)
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def local_port(self):
        if self.sock.family in (socket.AF_INET, socket.AF_INET6):
            return self.sock.getsockname()[1]
        return None

    # -- sending ------------------------------------------------------------

    def send_raw(self, data):
        """Write bytes exactly as given (in one sendall)."""
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)
        self.bytes_sent += len(data)

    def send_bytewise(self, data, delay=0.001):
        """Write bytes one at a time, each in its own send."""
        for i in range(len(data)):
            self.send_raw(data[i:i + 1])
            if delay:
                time.sleep(delay)  # pacing: one read per byte at the server

    def send(self, head, body=b"", set_size=True):
        data = frame(head, body, set_size)
        self.send_raw(data)
        return data

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    # -- receiving ----------------------------------------------------------

    def _fill(self, deadline):
        """Read at least one more byte into buf, or raise Timeout/Closed."""
        if self.eof:
            raise Closed("connection closed by peer", bytes(self.buf))
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Timeout("timed out with %d bytes buffered" % len(self.buf))
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            raise Timeout("timed out with %d bytes buffered" % len(self.buf))
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as e:
            self.eof = True
            raise Closed("connection reset: %s" % e, bytes(self.buf))
        if not chunk:
            self.eof = True
            raise Closed("connection closed by peer", bytes(self.buf))
        self.bytes_received += len(chunk)
        self.buf += chunk

    def recv_exact(self, n, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while len(self.buf) < n:
            self._fill(deadline)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def recv_frame(self, timeout=None):
        """Read one whole frame -> (head dict, body bytes). Raises Timeout,
        Closed (EOF/reset, also mid-frame) or ProtoError (bad frame)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while len(self.buf) < 4:
            self._fill(deadline)
        (hlen,) = struct.unpack(">I", self.buf[:4])
        if not HEAD_MIN <= hlen <= HEAD_MAX:
            raise ProtoError("server sent head_len %d" % hlen)
        while len(self.buf) < 4 + hlen:
            self._fill(deadline)
        head = check_head(bytes(self.buf[4:4 + hlen]))
        size = head.get("size", 0)
        while len(self.buf) < 4 + hlen + size:
            self._fill(deadline)
        body = bytes(self.buf[4 + hlen:4 + hlen + size])
        del self.buf[:4 + hlen + size]
        return head, body

    def recv_head(self, timeout=None):
        return self.recv_frame(timeout)[0]

    def expect(self, type_, timeout=None):
        """Receive one frame and require its type; error frames raise ServerError."""
        head, body = self.recv_frame(timeout)
        if head["type"] != type_:
            raise ServerError(head, body)
        return head, body

    def expect_error(self, code, timeout=None):
        head, body = self.recv_frame(timeout)
        if head.get("type") != "error" or head.get("code") != code:
            raise ProtoError("wanted error %s, got %r" % (code, head))
        return head

    def frames_until_close(self, timeout=None):
        """Collect every frame until the peer closes. Raises Timeout when the
        connection is still open at the deadline, ProtoError on a partial frame."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        frames = []
        while True:
            try:
                frames.append(self.recv_frame(max(0.0, deadline - time.monotonic())))
            except Closed as e:
                if e.partial:
                    raise ProtoError("peer closed mid-frame (%d bytes)" % len(e.partial))
                return frames

    def is_closed(self, timeout=0.5):
        """True when the peer has closed within timeout (data before EOF is
        discarded); False when it is still open."""
        try:
            self.frames_until_close(timeout)
            return True
        except Timeout:
            return False
        except ProtoError:
            return True

    # -- protocol steps -----------------------------------------------------

    def hello(self, timeout=None):
        head, _ = self.recv_frame(timeout)
        if head["type"] != "hello":
            raise ServerError(head)
        self.hello_head = head
        return head

    def auth(self, secret, client_nonce=None, mac=None, timeout=None, bytewise=False):
        """Answer the hello (read first if needed) and return the server's
        reply head. Verifies the server mac when the reply is auth_ok."""
        if self.hello_head is None:
            self.hello(timeout)
        sn = self.hello_head["nonce"]
        cn = client_nonce or new_nonce()
        if mac is None:
            mac = client_mac(secret, sn, cn)
        data = frame({"type": "auth", "nonce": cn, "mac": mac})
        if bytewise:
            self.send_bytewise(data)
        else:
            self.send_raw(data)
        head, body = self.recv_frame(timeout)
        if head["type"] == "auth_ok":
            want = server_mac(secret, sn, cn)
            got = head.get("mac")
            if not isinstance(got, str) or not hmac.compare_digest(got, want):
                raise AuthError("server mac %r does not verify (want %s)" % (got, want))
        return head

    def handshake(self, secret, timeout=None, bytewise=False):
        """Full mutual authentication; raises ServerError/AuthError on failure."""
        hello = self.hello_head or self.hello(timeout)
        if hello.get("auth") == "none":
            return hello
        if hello.get("auth") != "hmac-sha256":
            raise ProtoError("unknown auth %r" % (hello.get("auth"),))
        if not isinstance(hello.get("nonce"), str) or not HEX64.fullmatch(hello["nonce"]):
            raise ProtoError("bad server nonce %r" % (hello.get("nonce"),))
        head = self.auth(secret, timeout=timeout, bytewise=bytewise)
        if head["type"] != "auth_ok":
            raise ServerError(head)
        return head

    def request(self, head, body=b"", timeout=None):
        self.send(head, body)
        return self.recv_frame(timeout)

    def echo(self, data, **extra):
        h = {"type": "echo", "size": len(data)}
        h.update(extra)
        head, body = self.request(h, data)
        if head["type"] != "echo":
            raise ServerError(head, body)
        return body

    def ping(self):
        head, _ = self.request({"type": "ping"})
        if head["type"] != "pong":
            raise ServerError(head)
        return head
