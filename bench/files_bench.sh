#!/bin/sh
# files_bench.sh - issue 4's side-by-side figures on one 1 GiB file from the
# page cache: sockit put/get (sha256, xxh128), iperf3 one stream, an ncat
# pipe, and openssl's sha256 on one core. MB = 10^6 bytes.
#   bench/files_bench.sh [path/to/sockit]        (writes under /dev/shm)
set -eu
BIN=${1:-build/sockit}
W=/dev/shm/sk-files-bench
SIZE_MB=1024
rm -rf "$W"; mkdir -p "$W/root" "$W/out"
head -c $((SIZE_MB << 20)) /dev/urandom > "$W/src.bin"
BYTES=$((SIZE_MB << 20))
warm() { dd if=/dev/zero of=/dev/shm/sk-warm bs=1M count=1536 2>/dev/null; rm -f /dev/shm/sk-warm; }
now() { date +%s.%N; }
rate() { echo "$BYTES $1 $2" | awk '{printf "%.0f", $1 / ($3 - $2) / 1e6}'; }

"$BIN" serve -l 127.0.0.1:18310 --no-auth --root "$W/root" 2>"$W/serve.err" &
SPID=$!
sleep 0.5
for h in sha256 xxh128; do
  for i in 1 2 3; do
    rm -f "$W/root/src.bin"; warm; t0=$(now)
    "$BIN" put 127.0.0.1:18310 "$W/src.bin" --hash $h --no-auth -q; t1=$(now)
    echo "put $h $(rate $t0 $t1) MB/s"
    rm -f "$W/out/g.bin"; warm; t0=$(now)
    "$BIN" get 127.0.0.1:18310 src.bin -o "$W/out/g.bin" --hash $h --no-auth -q; t1=$(now)
    echo "get $h $(rate $t0 $t1) MB/s"
  done
done
kill $SPID; wait $SPID 2>/dev/null || true

iperf3 -s -B 127.0.0.1 -p 18311 -1 >/dev/null 2>&1 &
sleep 0.5
iperf3 -c 127.0.0.1 -p 18311 -t 10 -J | awk -F: '/"bits_per_second"/ {b=$2} END {gsub(/[ ,]/,"",b); printf "iperf3 %.0f MB/s\n", b/8/1e6}'
for i in 1 2 3; do
  warm
  ncat -l 127.0.0.1 18312 > "$W/out/n.bin" & NPID=$!
  sleep 0.3; t0=$(now)
  ncat --send-only 127.0.0.1 18312 < "$W/src.bin"; wait $NPID; t1=$(now)
  echo "ncat $(rate $t0 $t1) MB/s"
done
for i in 1 2; do
  t0=$(now); openssl dgst -sha256 "$W/src.bin" >/dev/null; t1=$(now)
  echo "openssl-sha256 $(rate $t0 $t1) MB/s"
done
rm -rf "$W"
