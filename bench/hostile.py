#!/usr/bin/env python3
"""bench/hostile.py BINARY - the figures of issue 15 items 7-11 for one
sockit binary, so that a build from before the fixes and one from after can
be compared line by line:

    bench/hostile.py /path/to/old/sockit; bench/hostile.py build/sockit

item 7 (seed wire), 8 (failed-auth penalties, by address and by Unix uid),
9 (background children of exec), 10 (memory held by 20 echo clients that
never read; with --max-buffered 32M when the binary knows the option) and 11
(raw C1/bidi bytes in the log, lines after 200 silent connections, SIGHUP).
Runs servers on 127.0.0.1:0 and Unix sockets under a temporary folder; takes
about 40 s. Seed exec is started without --exec-user: as root, a fixed
binary refuses to start (an old one starts: that is the finding). Uses the
e2e tests' protocol client."""
import json, os, re, socket, struct, subprocess, sys, tempfile, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import sockit_proto as sp
B = sys.argv[1]
D = tempfile.mkdtemp(prefix="sk-hostile-"); os.mkdir(D + "/root")
key = D + "/key"; open(key, "w").write(os.urandom(32).hex() + "\n"); os.chmod(key, 0o600)
secret = open(key).read().strip().encode()

# This client speaks plain sockit/1: a binary with TLS (SPEC 8) is asked for
# --no-tls.
PLAIN = ["--no-tls"] if "--no-tls" in subprocess.run(
    [B, "serve", "--help"], capture_output=True, text=True).stdout else []


def serve(*args):
    p = subprocess.Popen([B, "serve", "--key-file", key, "--root", D + "/root"] + PLAIN + list(args),
                         stderr=subprocess.PIPE, text=True)
    addrs = []
    want = sum(1 for a in args if a == "-l") or 1
    while len(addrs) < want:
        line = p.stderr.readline()
        if not line: raise SystemExit("server died: " + line)
        m = re.match(r"sockit: listening on (\S+)", line)
        if m: addrs.append(m.group(1))
    return p, addrs

def stop(p): p.terminate(); p.wait()

# item 9
p, (a,) = serve("-l", "127.0.0.1:0", "--allow-exec", "--max-execs", "2", "--exec-timeout", "5")
pids, res = [], []
def one():
    with sp.Client.connect(a) as c:
        c.handshake(secret); c.send({"type": "exec", "shell": "sleep 600 </dev/null >/dev/null 2>&1 & echo $!"})
        out = b""
        while True:
            h, b = c.recv_frame(10)
            if h["type"] == "stdout": out += b
            elif h["type"] in ("exit", "error"): res.append(h.get("code")); break
        if out: pids.append(int(out))
ts = [threading.Thread(target=one) for _ in range(5)]
[t.start() for t in ts]; [t.join() for t in ts]
time.sleep(7)
alive = [x for x in pids if os.path.exists("/proc/%d" % x) and open("/proc/%d/stat" % x).read().rsplit(")", 1)[1].split()[0] != "Z"]
print("item 9: 5 concurrent execs of `sleep 600 &` (--max-execs 2 --exec-timeout 5): answers %s; sleeps alive 7 s later: %d" % (res, len(alive)))
for x in alive: os.kill(x, 9)
stop(p)

# item 8
sd = D
p, addrs = serve("-l", "127.0.0.1:0", "-l", "unix:%s/s" % sd)
tcp, unix = addrs[0], addrs[1]
def junk(addr, n):
    for _ in range(n):
        try:
            with sp.Client.connect(addr) as c:
                c.auth(os.urandom(32).hex().encode())
        except sp.ServerError:
            pass
def right(addr):
    with sp.Client.connect(addr) as c:
        h, _ = c.recv_frame()
        if h["type"] != "hello": return h.get("code")
        c.hello_head = h
        r = c.auth(secret); return "ok" if r["type"] == "auth_ok" else r.get("code")
junk(tcp, 5); t0 = time.monotonic()
while right(tcp) != "ok" and time.monotonic() - t0 < 20: time.sleep(0.25)
locked = time.monotonic() - t0
print("item 8: after 5 junk macs from 127.0.0.1 the right key is refused for %.1f s%s" % (locked, " (still refused at 20 s)" if locked >= 20 else ""))
junk(unix, 10)
print("item 8: after 10 junk macs over the Unix socket the right key gets: %s" % right(unix))
stop(p)

# item 11
log = D + "/conn.log"
p, (a,) = serve("-l", "127.0.0.1:0", "--allow-exec", "--log", log)
with sp.Client.connect(a) as c:
    c.handshake(secret); c.send({"type": "exec", "argv": ["true", "x\u009b2J\u202eevil"]})
    while c.recv_frame()[0]["type"] != "exit": pass
host, port = sp.parse_addr(a)[1]
for _ in range(200): socket.create_connection((host, port)).close()
time.sleep(1)
raw = open(log, "rb").read()
print("item 11: raw U+009B / U+202E bytes in the log: %d / %d; lines after 200 silent connections: %d" % (raw.count("\u009b".encode()), raw.count("\u202e".encode()), raw.count(b"\n")))
p.send_signal(1); time.sleep(0.5)
print("item 11: server alive after SIGHUP: %s" % (p.poll() is None))
if p.poll() is None: stop(p)

# item 7
p, addrs = serve("--allow-exec", "--exec-user", "root", "--wire", "seed", "--service", "put", "-l", "127.0.0.1:0",
                 "--wire", "seed", "--service", "chat", "-l", "unix:%s/c" % sd)
put, chat = addrs
open(D + "/root/a.txt", "w").write("old")
s = socket.create_connection(sp.parse_addr(put)[1]); h = json.dumps({"filename": "a.txt", "filesize": 3}).encode()
s.sendall(struct.pack("i", len(h)) + h + b"new"); s.close(); time.sleep(0.5)
print("item 7: seed put of a.txt over an existing one: a.txt holds %r; root: %s" % (open(D + "/root/a.txt").read(), sorted(os.listdir(D + "/root"))))
print("item 7: seed chat Unix socket mode %o" % (os.stat("%s/c" % sd).st_mode & 0o777))
x = socket.socket(socket.AF_UNIX); x.connect("%s/c" % sd); y = socket.socket(socket.AF_UNIX); y.connect("%s/c" % sd)
time.sleep(0.2); x.sendall(b"\x1b]52;c;ZXZpbA==\x07\x1b[2J"); y.settimeout(2); got = y.recv(100)
print("item 7: seed chat relays %r" % got)
stop(p)
p = subprocess.Popen([B, "serve", "--key-file", key, "--root", D + "/root", "--allow-exec", "--wire", "seed", "--service", "exec", "-l", "127.0.0.1:0"], stderr=subprocess.PIPE, text=True)
try:
    p.wait(2); print("item 7: seed exec as root without --exec-user: exit %d: %s" % (p.returncode, p.stderr.read().strip().splitlines()[-1]))
except subprocess.TimeoutExpired:
    print("item 7: seed exec as root without --exec-user: started (serving root shells)"); stop(p)

# item 10
base_args = ["-l", "127.0.0.1:0", "--threads", "1"]
help_text = subprocess.run([B, "serve", "--help"], capture_output=True, text=True).stdout
if "--max-buffered" in help_text:
    base_args += ["--max-buffered", "32M"]
p, (a,) = serve(*base_args)
def rss():
    with open("/proc/%d/status" % p.pid) as f:
        return int([l for l in f if l.startswith("VmRSS")][0].split()[1]) // 1024
base = rss()
body16 = os.urandom(16 << 20)
held = []
for _ in range(20):
    fam, sa = sp.parse_addr(a)
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.connect(sa)
    c = sp.Client(s, 30)
    c.handshake(secret)
    try:
        c.send({"type": "echo", "size": len(body16)}, body16)
    except OSError:
        pass
    held.append(c)
time.sleep(3)
print("item 10: server RSS %d MiB at start, %d MiB with 20 non-reading 16 MiB echo clients%s"
      % (base, rss(), " (--max-buffered 32M)" if "--max-buffered" in base_args else ""))
for c in held:
    c.close()
stop(p)
subprocess.run(["rm", "-rf", D])
