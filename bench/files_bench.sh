#!/bin/sh
# files_bench.sh - the side-by-side figures of issues 4 and 8 (#4) on one
# 1 GiB file from the page cache: sockit put/get (sha256, xxh128), the
# reference kit's epoll_echo put (loadgen), iperf3 one stream, an ncat pipe,
# and sha256 on one core (`openssl dgst` of the file, `openssl speed`).
# MB = 10^6 bytes; each transfer is preceded by a pre-fault of /dev/shm
# (see shared/bench/BASELINE.md on the balloon).
#   bench/files_bench.sh [SOCKIT...]      (writes under /dev/shm)
# Several binaries are measured in turn within each repetition, so a
# before/after pair shares the same machine state.
# Environment: RUNS [3], SIZE_MB [1024], KIT [/work/shared/bench] (copied
# and built in the work folder), HASHES ["xxh128 sha256"], REFS [1] (0 skips
# iperf3/ncat/openssl/epoll).
set -eu
[ $# -gt 0 ] || set -- build/sockit
RUNS=${RUNS:-3}
SIZE_MB=${SIZE_MB:-1024}
KIT=${KIT:-/work/shared/bench}
HASHES=${HASHES:-"xxh128 sha256"}
REFS=${REFS:-1}
W=/dev/shm/sk-files-bench
BYTES=$((SIZE_MB << 20))
rm -rf "$W"
mkdir -p "$W/root" "$W/out" "$W/kit"
head -c "$BYTES" /dev/urandom >"$W/src.bin"
warm() {
  dd if=/dev/zero of=/dev/shm/sk-warm bs=1M count=1536 2>/dev/null
  rm -f /dev/shm/sk-warm
}
now() { date +%s.%N; }
rate() { echo "$BYTES $1 $2" | awk '{printf "%.0f", $1 / ($3 - $2) / 1e6}'; }

if [ "$REFS" = 1 ]; then
  cp -r "$KIT"/loadgen.c "$KIT"/peers "$KIT"/Makefile "$W/kit/" && chmod -R u+w "$W/kit"
  make -s -C "$W/kit" >/dev/null
fi

# One sockit server per binary, each on its own port.
PORT=18310
for b in "$@"; do
  mkdir -p "$W/root$PORT"
  "$b" serve -l 127.0.0.1:$PORT --no-auth --root "$W/root$PORT" 2>"$W/serve$PORT.err" &
  echo $! >"$W/pid$PORT"
  PORT=$((PORT + 1))
done
sleep 0.5

for i in $(seq "$RUNS"); do
  if [ "$REFS" = 1 ]; then
    "$W/kit/peers/epoll_echo" -l 127.0.0.1:18320 --root "$W/root" 2>/dev/null &
    EPID=$!
    sleep 0.3
    rm -f "$W/root/src.bin"
    warm
    "$W/kit/loadgen" --addr 127.0.0.1:18320 --no-auth --mode put --file "$W/src.bin" --json |
      python3 -c 'import json,sys; d=json.load(sys.stdin); print("epoll-put %.0f MB/s" % (d.get("mb_s") or d.get("MB_s") or d["bytes"]/d["seconds"]/1e6))' ||
      true
    kill $EPID
    wait $EPID 2>/dev/null || true
  fi
  for h in $HASHES; do
    PORT=18310
    for b in "$@"; do
      tag=$(basename "$(dirname "$b")")
      rm -f "$W/root$PORT/src.bin"
      warm
      t0=$(now)
      "$b" put 127.0.0.1:$PORT "$W/src.bin" --hash "$h" --no-auth -q
      t1=$(now)
      echo "put $h $tag $(rate "$t0" "$t1") MB/s"
      rm -f "$W/out/g.bin"
      warm
      t0=$(now)
      "$b" get 127.0.0.1:$PORT src.bin -o "$W/out/g.bin" --hash "$h" --no-auth -q
      t1=$(now)
      echo "get $h $tag $(rate "$t0" "$t1") MB/s"
      cmp -s "$W/src.bin" "$W/out/g.bin" || echo "get $h $tag: FILES DIFFER"
      PORT=$((PORT + 1))
    done
  done
done
for f in "$W"/pid*; do
  kill "$(cat "$f")"
done
wait 2>/dev/null || true

if [ "$REFS" = 1 ]; then
  iperf3 -s -B 127.0.0.1 -p 18311 -1 >/dev/null 2>&1 &
  sleep 0.5
  iperf3 -c 127.0.0.1 -p 18311 -t 10 -J |
    awk -F: '/"bits_per_second"/ {b=$2} END {gsub(/[ ,]/,"",b); printf "iperf3 %.0f MB/s\n", b/8/1e6}'
  for i in $(seq "$RUNS"); do
    warm
    ncat -l 127.0.0.1 18312 >"$W/out/n.bin" &
    NPID=$!
    sleep 0.3
    t0=$(now)
    ncat --send-only 127.0.0.1 18312 <"$W/src.bin"
    wait $NPID
    t1=$(now)
    echo "ncat $(rate "$t0" "$t1") MB/s"
  done
  for i in 1 2; do
    t0=$(now)
    openssl dgst -sha256 "$W/src.bin" >/dev/null
    t1=$(now)
    echo "openssl-dgst-sha256 $(rate "$t0" "$t1") MB/s"
  done
  openssl speed -seconds 3 -bytes 1048576 -evp sha256 2>/dev/null |
    awk '/^sha256/ {v=$NF; sub(/k$/,"",v); printf "openssl-speed-sha256 %.0f MB/s\n", v*1000/1e6}'
fi
rm -rf "$W"
