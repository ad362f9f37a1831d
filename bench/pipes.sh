#!/bin/sh
# pipes.sh - 1 GiB through `sockit listen/connect`, ncat and socat, in one run.
# usage: [REPS=3] bench/pipes.sh [SOCKIT_BIN] [MIB]   (default build/sockit, 1024 MiB)
# Each row: one client sends the bytes from a /dev/shm file or from a pipe
# (head -c); the listener writes them to /dev/null; the time is from the
# client's start to the listener's exit (every byte delivered); each row is
# run REPS times, interleaved with nothing else, and shows the best and the
# median. Load on the machine shows up as noise: compare rows of one run.
set -eu
BIN=${1:-build/sockit}
MIB=${2:-1024}
REPS=${REPS:-3}
SRC=/dev/shm/sockit-pipes-bench.bin
PORT=${PORT:-47000}
export PORT
head -c "${MIB}M" /dev/zero > "$SRC"
trap 'rm -f "$SRC"' EXIT

now() { date +%s.%N; }

# once INPUT LISTEN_CMD CONNECT_CMD: prints the seconds until the listener exits
once() {
  PORT=$((PORT + 1))
  sh -c "$2" < /dev/null > /dev/null 2>/dev/null &
  lpid=$!
  sleep 0.3
  t0=$(now)
  if [ "$1" = file ]; then
    sh -c "$3" < "$SRC" > /dev/null
  else
    head -c "${MIB}M" /dev/zero | sh -c "$3" > /dev/null
  fi
  wait "$lpid"
  echo "$t0 $(now)" | awk '{ printf "%.3f\n", $2 - $1 }'
}

# run NAME INPUT LISTEN_CMD CONNECT_CMD: best and median of $REPS runs
run() {
  times=$(for i in $(seq "$REPS"); do once "$2" "$3" "$4"; done | sort -n | tr '\n' ' ')
  echo "$1 $2 $times" | awk -v mib="$MIB" -v reps="$REPS" '{
    best = $3; med = $(3 + int((reps - 1) / 2))
    printf "%-12s %-5s best %6.2f s %6.0f MiB/s   median %6.2f s %6.0f MiB/s\n",
           $1, $2, best, mib / best, med, mib / med }'
}

for input in file pipe; do
  run sockit $input "exec $BIN listen 127.0.0.1:\$PORT" "exec $BIN connect 127.0.0.1:\$PORT"
  run ncat $input "exec ncat -l 127.0.0.1 \$PORT" "exec ncat 127.0.0.1 \$PORT"
  run socat $input "exec socat TCP-LISTEN:\$PORT,bind=127.0.0.1,reuseaddr STDIO" \
    "exec socat STDIO TCP:127.0.0.1:\$PORT"
  run socat-b256k $input "exec socat -b 262144 TCP-LISTEN:\$PORT,bind=127.0.0.1,reuseaddr STDIO" \
    "exec socat -b 262144 STDIO TCP:127.0.0.1:\$PORT"
done
