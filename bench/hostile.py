#!/usr/bin/env python3
"""bench/hostile.py BINARY [ITEM...] - the figures of issue 15, items 1-11,
for one sockit binary, so that a build from before the fixes and one from
after can be compared line by line (ITEM: the numbers to run, default all):

    bench/hostile.py /path/to/old/sockit; bench/hostile.py build/sockit

item 1 (the get offset crash: the server, a bystander), 2 (keyless
datagrams to a server with a key), 3 (bytes a --no-auth UDP server sends a
victim for forged joins), 4 (rooms squatted from one address, RSS after
filling 256 rooms' history), 5 (lines forged and raw terminal sequences in
`sockit chat`), 6 (another client's list while 6 `get fifo` wait), 7 (seed
wire), 8 (failed-auth penalties, by address and by Unix uid), 9 (background
children of exec), 10 (memory held by 20 echo clients that never read; with
--max-buffered 32M when the binary knows the option) and 11 (raw C1/bidi
bytes in the log, lines after 200 silent connections, SIGHUP).
Runs servers on 127.0.0.1:0 (127.0.0.2 for a second source) and Unix
sockets under a temporary folder; takes about 90 s and holds up to 300 MiB
(item 4, an old binary). Seed exec is started without --exec-user: as root,
a fixed binary refuses to start (an old one starts: that is the finding).
Uses the e2e tests' protocol client and their attack functions."""
import json, os, re, signal, socket, struct, subprocess, sys, tempfile, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import sockit_proto as sp
import udp_proto as up
import test_chat as tc, test_chat_limits as tcl, test_cli_chat as tcc, test_udp_security as tus
B = sys.argv[1]
ITEMS = sys.argv[2:] or [str(i) for i in range(1, 12)]
D = tempfile.mkdtemp(prefix="sk-hostile-"); os.mkdir(D + "/root")
key = D + "/key"; open(key, "w").write(os.urandom(32).hex() + "\n"); os.chmod(key, 0o600)
secret = open(key).read().strip().encode()

# This client speaks plain sockit/1: a binary with TLS (SPEC 8) is asked for
# --no-tls.
PLAIN = ["--no-tls"] if "--no-tls" in subprocess.run(
    [B, "serve", "--help"], capture_output=True, text=True).stdout else []


def serve(*args, auth=True):
    cred = ["--key-file", key] if auth else ["--no-auth"]
    p = subprocess.Popen([B, "serve"] + cred + ["--root", D + "/root"] + PLAIN + list(args),
                         stderr=subprocess.PIPE, text=True)
    addrs = []
    want = sum(1 for a in args if a in ("-l", "--udp")) or 1
    while len(addrs) < want:
        line = p.stderr.readline()
        if not line: raise SystemExit("server died: " + line)
        m = re.match(r"sockit: listening on (\S+)", line)
        if m: addrs.append(m.group(1))
    return p, addrs

def stop(p): p.terminate(); p.wait()

class Srv:  # what the e2e tests' attack functions want of a server
    def __init__(self, addr): self.addr = addr

def rss_mib(p):
    with open("/proc/%d/status" % p.pid) as f:
        return int([l for l in f if l.startswith("VmRSS")][0].split()[1]) // 1024


def item1():
    open(D + "/root/a", "w").write("hello")
    p, (a,) = serve("-l", "127.0.0.1:0")
    by = sp.Client.connect(a); by.handshake(secret)  # a bystander, connected
    with sp.Client.connect(a) as c:
        c.handshake(secret); c.send({"type": "get", "name": "a", "offset": 1.5})
        try:
            h, _ = c.recv_frame(5); got = "%s %s" % (h["type"], h.get("code", ""))
        except sp.ProtoError:
            got = "connection closed"
    try:
        p.wait(2); died = "died, %s" % (signal.Signals(-p.returncode).name if p.returncode < 0 else "exit %d" % p.returncode)
    except subprocess.TimeoutExpired:
        died = "alive"
    try:
        bystander = by.ping()["type"]
    except (sp.ProtoError, OSError):
        bystander = "lost"
    print("item 1: one frame {\"type\":\"get\",\"name\":\"a\",\"offset\":1.5}: answer %s; server %s; a bystander's ping: %s" % (got.strip(), died, bystander))
    if p.poll() is None: stop(p)


def item2():
    p, (a, u) = serve("-l", "127.0.0.1:0", "--udp", "127.0.0.1:0")
    alice, _ = tc.member(Srv(a), "secret", "alice", secret=secret)
    tc.say(alice, "secret", "the plan"); tc.next_of(alice, {"msg"})
    s = up.sock_for(u)
    s.send(sp.frame({"type": "join", "room": "secret", "nick": "mallory", "history": 10}))
    got = up.recv_all(s, 1.0)
    s.send(sp.frame({"type": "say", "room": "secret"}, b"forged"))
    heard = []  # what reaches alice within 2 s
    try:
        while True:
            h, b = alice.recv_frame(2)
            heard.append("%s %s" % (h["type"], b.decode() if h["type"] == "msg" else h.get("nick", "")))
    except sp.Timeout:
        pass
    print("item 2: keyless datagrams (join with history, say) to a server with a key: %d answers (%d B, history %s); the TCP member saw %s"
          % (len(got), sum(map(len, got)), "leaked" if any(b"the plan" in d for d in got) else "not leaked", heard or "nothing"))
    stop(p)


def item3():
    p, (a, u) = serve("-l", "127.0.0.1:0", "--udp", "127.0.0.1:0", auth=False)
    srv = Srv(a); srv.uaddr = u
    victims = [up.sock_for(u) for _ in range(256)]
    sent, got, members = tus.amplification(srv, victims, 5, "a" * 60000)
    for v in victims: v.close()
    print("item 3: --no-auth: 256 forged joins (%d B in the victim's name) + 5 says of 60,000 B: the victim received %d B (%.2fx what was sent in its name); %d victim ports registered"
          % (sent, got, got / sent, len(members) - 2))
    stop(p)


def item4():
    p, (a,) = serve("-l", "127.0.0.1:0", "--threads", "1")
    conns, joined, errors = tcl.squat(a, secret)
    k = tcl.connect(a, secret, source="127.0.0.2")
    print("item 4: 17 sockets x 64 joins from 127.0.0.1: %d rooms held; a key holder's join from 127.0.0.2: %s" % (sum(joined), tcl.join(k, "lobby", "keyholder")))
    for c in conns + [k]: c.close()
    base = rss_mib(p)
    tcl.fill(a, secret, rooms=256).close()
    print("item 4: 256 rooms x 1 MiB of history from one connection: server RSS %d MiB -> %d MiB" % (base, rss_mib(p)))
    stop(p)


def item5():
    p, (a,) = serve("-l", "127.0.0.1:0", auth=False)
    chat = subprocess.Popen([B, "chat", a, "--no-auth", "--room", "r", "--nick", "bob"] + PLAIN,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    m, _ = tc.member(Srv(a), "r", "mallory")
    while tc.next_of(m, {"presence"})[0]["nick"] != "bob": pass
    for body, _ in tcc.HOSTILE_BODIES: tc.say(m, "r", body)
    tc.say(m, "r", "the end")
    out = b""
    while b"the end" not in out:
        chunk = chat.stdout.read1(65536)
        if not chunk: break
        out += chunk
    chat.stdin.close(); chat.wait(5); m.close()
    text = out.decode("utf-8", "replace")
    forged = [l for l in text.splitlines() if re.match(r"\[\d\d:\d\d:\d\d\] alice: ", l)]
    print("item 5: a member's hostile bodies (HOSTILE_BODIES) in `sockit chat`: lines forged as alice %d; raw ESC %d, raw U+202E %d, raw U+009B %d"
          % (len(forged), out.count(b"\x1b"), text.count("\u202e"), text.count("\u009b")))
    stop(p)


def item6():
    os.mkfifo(D + "/root/fifo")
    p, (a,) = serve("-l", "127.0.0.1:0")
    stuck = []
    for _ in range(6):
        c = sp.Client.connect(a); c.handshake(secret); c.send({"type": "get", "name": "fifo", "offset": 0}); stuck.append(c)
    t0 = time.monotonic()
    with sp.Client.connect(a) as c:
        c.handshake(secret)
        try:
            c.request({"type": "list", "name": ""}, timeout=5); took = "answered in %.2f s" % (time.monotonic() - t0)
        except sp.Timeout:
            took = "no answer in 5 s"
    print("item 6: 6 x `get fifo`, then another client's list: %s" % took)
    for c in stuck: c.close()
    # unblock any pool thread stuck in open(): a writer opens the FIFO
    fd = os.open(D + "/root/fifo", os.O_RDWR | os.O_NONBLOCK); os.close(fd)
    stop(p); os.unlink(D + "/root/fifo")


def item9():
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


def item8():
    p, addrs = serve("-l", "127.0.0.1:0", "-l", "unix:%s/s" % D)
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


def item11():
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


def item7():
    p, addrs = serve("--allow-exec", "--exec-user", "root", "--wire", "seed", "--service", "put", "-l", "127.0.0.1:0",
                     "--wire", "seed", "--service", "chat", "-l", "unix:%s/c" % D)
    put, chat = addrs
    open(D + "/root/a.txt", "w").write("old")
    s = socket.create_connection(sp.parse_addr(put)[1]); h = json.dumps({"filename": "a.txt", "filesize": 3}).encode()
    s.sendall(struct.pack("i", len(h)) + h + b"new"); s.close(); time.sleep(0.5)
    print("item 7: seed put of a.txt over an existing one: a.txt holds %r; root: %s" % (open(D + "/root/a.txt").read(), sorted(os.listdir(D + "/root"))))
    print("item 7: seed chat Unix socket mode %o" % (os.stat("%s/c" % D).st_mode & 0o777))
    x = socket.socket(socket.AF_UNIX); x.connect("%s/c" % D); y = socket.socket(socket.AF_UNIX); y.connect("%s/c" % D)
    time.sleep(0.2); x.sendall(b"\x1b]52;c;ZXZpbA==\x07\x1b[2J"); y.settimeout(2); got = y.recv(100)
    print("item 7: seed chat relays %r" % got)
    stop(p)
    p = subprocess.Popen([B, "serve", "--key-file", key, "--root", D + "/root", "--allow-exec", "--wire", "seed", "--service", "exec", "-l", "127.0.0.1:0"], stderr=subprocess.PIPE, text=True)
    try:
        p.wait(2); print("item 7: seed exec as root without --exec-user: exit %d: %s" % (p.returncode, p.stderr.read().strip().splitlines()[-1]))
    except subprocess.TimeoutExpired:
        print("item 7: seed exec as root without --exec-user: started (serving root shells)"); stop(p)


def item10():
    base_args = ["-l", "127.0.0.1:0", "--threads", "1"]
    help_text = subprocess.run([B, "serve", "--help"], capture_output=True, text=True).stdout
    if "--max-buffered" in help_text:
        base_args += ["--max-buffered", "32M"]
    p, (a,) = serve(*base_args)
    base = rss_mib(p)
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
          % (base, rss_mib(p), " (--max-buffered 32M)" if "--max-buffered" in base_args else ""))
    for c in held:
        c.close()
    stop(p)


for n in ITEMS:
    globals()["item" + n]()
subprocess.run(["rm", "-rf", D])
