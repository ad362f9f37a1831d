#!/bin/sh
# tls.sh - TLS against plain, side by side in one run (issue 17):
#   1. echo of 64 B, 50 connections x 16 pipelined, `sockit bench` over TLS
#      keyed by the secret vs --no-tls, alternating, RUNS each;
#   2. put and get of SIZE_MB (default 1024 MiB) from /dev/shm, TLS vs
#      --no-tls, same binary, same server options, RUNS each;
#   3. `openssl speed` for X25519 and AES-128-GCM on this CPU (the costs a
#      handshake and a byte pay);
#   4. full handshakes: HS (default 3000) fresh connections authenticating
#      (PSK: the handshake is the authentication), the server's CPU time
#      for them from /proc, so handshakes per second of one server core;
#   5. memory per idle connection: CONNS (default 10000) held by `sockit
#      bench --mode conns`, TLS and plain, each answering a ping.
#   bench/tls.sh [build/sockit]
# With RES=FILE it also appends each figure to FILE as a result line
# ("LABEL FIGURE key=value ...", labels tls/plain/openssl), as bench/run.sh
# writes them; bench/round2.sh reads them from there.
# MB = 10^6 bytes. Processes are stopped by PID.
set -eu
B=${1:-build/sockit}
RUNS=${RUNS:-3}
SIZE_MB=${SIZE_MB:-1024}
CONNS=${CONNS:-10000}
HS=${HS:-3000}
ECHO_S=${ECHO_S:-5}
RES=${RES:-}
W=/dev/shm/sk-tls-bench.$$ # one per run: runs side by side do not share files
P0=${PORT:-18410}             # P0, P0+1, P0+2
P1=$((P0 + 1))
P2=$((P0 + 2))
BYTES=$((SIZE_MB << 20))
rm -rf "$W"
mkdir -p "$W/root" "$W/out"
head -c "$BYTES" /dev/urandom >"$W/src.bin"
"$B" keygen -o "$W/key" 2>/dev/null
now() { date +%s.%N; }
rate() { echo "$BYTES $1 $2" | awk '{printf "%.0f", $1 / ($3 - $2) / 1e6}'; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
emit() { [ -z "$RES" ] || echo "$*" >>"$RES"; }
hz=$(getconf CLK_TCK)

start() { # start PORT ARGS...: a server in the background, its PID in $W/pid.PORT
  p=$1
  shift
  "$B" serve -l 127.0.0.1:"$p" --key-file "$W/key" --root "$W/root" "$@" 2>"$W/serve.$p" &
  echo $! >"$W/pid.$p"
  n=0
  until grep -q "listening on" "$W/serve.$p" 2>/dev/null || [ $n -gt 100 ]; do
    sleep 0.05
    n=$((n + 1))
  done
}
stop() { kill "$(cat "$W/pid.$1")" 2>/dev/null || true; wait "$(cat "$W/pid.$1")" 2>/dev/null || true; }
# a failed step (set -e) must not leave the two servers running
trap 'stop $P0; stop $P1; rm -rf "$W"' EXIT

start $P0
start $P1 --no-tls
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# echo PORT FLAG: one ECHO_S s run; prints "req/s server-CPU-us-per-request"
echo_run() {
  pid=$(cat "$W/pid.$1")
  c0=$(cpu_ticks "$pid")
  rs=$("$B" bench -q --json --key-file "$W/key" $2 127.0.0.1:"$1" -c 50 -p 16 -d "$ECHO_S" | jq .requests)
  c1=$(cpu_ticks "$pid")
  echo "$rs $c0 $c1 $(getconf CLK_TCK)" | awk -v d="$ECHO_S" '{printf "%.0f %.2f", $1 / d, ($3 - $2) / $4 * 1e6 / $1}'
}
echo "# echo 64 B, 50 x 16 pipelined (TLS | plain), $RUNS runs of $ECHO_S s: req/s, server CPU us/request"
echo "# (CPU per request is the steadier figure on shared cores: its plain/TLS ratio is the"
echo "#  throughput ratio of a server-bound run)"
for i in $(seq "$RUNS"); do
  t=$(echo_run $P0 "")
  p=$(echo_run $P1 --no-tls)
  emit "tls echo64_c50_p16 req_s=${t% *} cpu_us=${t#* }"
  emit "plain echo64_c50_p16 req_s=${p% *} cpu_us=${p#* }"
  echo "$t $p" | awk -v i="$i" '{printf "run %d: tls %d req/s %.2f us, plain %d req/s %.2f us; ratio req/s %.2f, CPU/request plain/tls %.2f\n", i, $1, $2, $3, $4, $1 / $3, $4 / $2}'
done
echo "# put/get of $SIZE_MB MiB, MB/s (TLS | plain), $RUNS runs"
for i in $(seq "$RUNS"); do
  line=""
  for mode in tls plain; do
    if [ $mode = tls ]; then port=$P0 flag=""; else port=$P1 flag="--no-tls"; fi
    rm -f "$W/root/src.bin" "$W/out/src.bin"
    pid=$(cat "$W/pid.$port")
    c0=$(cpu_ticks "$pid")
    t0=$(now)
    "$B" put -q $flag --key-file "$W/key" 127.0.0.1:$port "$W/src.bin"
    t1=$(now)
    c1=$(cpu_ticks "$pid")
    "$B" get -q $flag --key-file "$W/key" 127.0.0.1:$port src.bin -o "$W/out/src.bin"
    t2=$(now)
    c2=$(cpu_ticks "$pid")
    cmp -s "$W/src.bin" "$W/out/src.bin" || echo "tls.sh: $mode get differs" >&2
    emit "$mode put_${SIZE_MB}M mb_s=$(rate "$t0" "$t1") server_cpu_s=$(echo "$c0 $c1 $hz" | awk '{print ($2 - $1) / $3}')"
    emit "$mode get_${SIZE_MB}M mb_s=$(rate "$t1" "$t2") server_cpu_s=$(echo "$c1 $c2 $hz" | awk '{print ($2 - $1) / $3}')"
    line="$line $mode put $(rate "$t0" "$t1") get $(rate "$t1" "$t2")"
  done
  echo "run $i:$line"
done

echo "# openssl speed (one core)"
x=$(openssl speed -seconds 2 ecdhx25519 2>/dev/null | grep -i "x25519" | tail -1)
echo "$x"
emit "openssl x25519 ops_s=$(echo "$x" | awk '{print $(NF)}')"
openssl speed -seconds 2 -evp aes-128-gcm 2>/dev/null | tail -1

echo "# full handshakes: $HS fresh connections (TLS PSK), server CPU"
pid=$(cat "$W/pid.$P0")
c0=$(cpu_ticks "$pid")
"$B" bench -q --json --key-file "$W/key" 127.0.0.1:$P0 --mode conns -c "$HS" --hold 0 \
  --connect-batch 32 >"$W/hs.json"
c1=$(cpu_ticks "$pid")
hs=$(echo "$HS $c0 $c1 $hz $(jq .setup_s "$W/hs.json")" |
  awk '{cpu = ($3 - $2) / $4; printf "%d handshakes in %.2f s wall; server CPU %.2f s: %.0f handshakes per server-core second\n", $1, $5, cpu, $1 / cpu}')
echo "$hs"
emit "tls handshakes n=$HS per_core_s=$(echo "$hs" | awk '{print $(NF-4)}')"

echo "# idle connections: $CONNS held, each answering a ping (sockit bench --mode conns)"
for mode in tls plain; do
  if [ $mode = tls ]; then port=$P0 flag=""; else port=$P1 flag="--no-tls"; fi
  "$B" bench -q --json $flag --key-file "$W/key" 127.0.0.1:$port --mode conns -c "$CONNS" \
    --hold 2 --server-pid "$(cat "$W/pid.$port")" >"$W/idle.json"
  jq -r --arg m "$mode" '"\($m): \(.answered_ping) of \(.established) answered; server RSS +\(.server_rss_growth_kb) KiB, \(.rss_per_conn_kb * 1024 | floor) bytes per connection"' "$W/idle.json"
  emit "$mode conns$CONNS $(jq -r '"answered_ping=\(.answered_ping) established=\(.established) rss_per_conn_kb=\(.rss_per_conn_kb) server_rss_growth_kb=\(.server_rss_growth_kb)"' "$W/idle.json")"
done
stop $P0
stop $P1
rm -rf "$W"
