#!/bin/sh
# tls.sh - TLS against plain, side by side in one run (issue 17):
#   1. put and get of SIZE_MB (default 1024 MiB) from /dev/shm, TLS keyed by
#      the secret vs --no-tls, same binary, same server options, RUNS each;
#   2. `openssl speed` for X25519 and AES-128-GCM on this CPU (the costs a
#      handshake and a byte pay);
#   3. memory per idle TLS connection: CONNS (default 10000) held by a
#      Python ssl client in certificate mode (Python has no TLS 1.3 PSK; the
#      server side of a held connection is the same transport either way),
#      the server's RSS before and after.
#   bench/tls.sh [build/sockit]
# MB = 10^6 bytes. Processes are stopped by PID.
set -eu
B=${1:-build/sockit}
RUNS=${RUNS:-3}
SIZE_MB=${SIZE_MB:-1024}
CONNS=${CONNS:-10000}
W=/dev/shm/sk-tls-bench
BYTES=$((SIZE_MB << 20))
rm -rf "$W"
mkdir -p "$W/root" "$W/out"
head -c "$BYTES" /dev/urandom >"$W/src.bin"
"$B" keygen -o "$W/key" 2>/dev/null
now() { date +%s.%N; }
rate() { echo "$BYTES $1 $2" | awk '{printf "%.0f", $1 / ($3 - $2) / 1e6}'; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

start() { # start PORT ARGS...: a server in the background, its PID in $W/pid.PORT
  p=$1
  shift
  "$B" serve -l 127.0.0.1:"$p" --key-file "$W/key" --root "$W/root" "$@" 2>"$W/serve.$p" &
  echo $! >"$W/pid.$p"
  n=0
  until grep -q "listening on" "$W/serve.$p" || [ $n -gt 100 ]; do
    sleep 0.05
    n=$((n + 1))
  done
}
stop() { kill "$(cat "$W/pid.$1")" 2>/dev/null || true; wait "$(cat "$W/pid.$1")" 2>/dev/null || true; }

start 18410
start 18411 --no-tls
echo "# put/get of $SIZE_MB MiB, MB/s (TLS | plain), $RUNS runs"
for i in $(seq "$RUNS"); do
  line=""
  for mode in tls plain; do
    if [ $mode = tls ]; then port=18410 flag=""; else port=18411 flag="--no-tls"; fi
    rm -f "$W/root/src.bin" "$W/out/src.bin"
    t0=$(now)
    "$B" put -q $flag --key-file "$W/key" 127.0.0.1:$port "$W/src.bin"
    t1=$(now)
    "$B" get -q $flag --key-file "$W/key" 127.0.0.1:$port src.bin -o "$W/out/src.bin"
    t2=$(now)
    cmp -s "$W/src.bin" "$W/out/src.bin" || echo "tls.sh: $mode get differs" >&2
    line="$line $mode put $(rate "$t0" "$t1") get $(rate "$t1" "$t2")"
  done
  echo "run $i:$line"
done
stop 18411

echo "# openssl speed (one core)"
openssl speed -seconds 2 ecdhx25519 2>/dev/null | grep -i "x25519" | tail -1
openssl speed -seconds 2 -evp aes-128-gcm 2>/dev/null | tail -1

echo "# idle TLS connections: $CONNS held (certificate mode, Python ssl)"
mkdir -p "$W/cert"
"$B" keygen --cert -o "$W/cert" >/dev/null 2>&1
start 18412 --tls-cert "$W/cert/cert.pem" --tls-key "$W/cert/key.pem" --max-conns 100000
pid=$(cat "$W/pid.18412")
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
before=$(rss "$pid")
/usr/bin/python3 - "$CONNS" "$pid" <<'PY'
import socket, ssl, sys, time
n, pid = int(sys.argv[1]), sys.argv[2]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
held = []
t0 = time.monotonic()
for i in range(n):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", 18412)))
    s.recv(4096)  # the hello: the server side is set up and idle
    held.append(s)
took = time.monotonic() - t0
print("handshakes (Python client, serial, incl. hello): %.0f/s" % (n / took))
rss = [l for l in open("/proc/%s/status" % pid) if l.startswith("VmRSS")][0].split()[1]
print("held %d; server RSS now %s KiB" % (n, rss))
sys.stdout.flush()
PY
after=$(rss "$pid")
echo "server RSS before $before KiB, after $after KiB: $(( (after - before) * 1024 / CONNS )) bytes per idle TLS connection"
stop 18410
stop 18412
rm -rf "$W"
