#!/usr/bin/env bash
# bench/round2.sh - every figure of issue 20 ("Performance, round 2") side
# by side in one run, the target table with PASS/MISS, and the plots of how
# cost grows (docs/images/round2-*.png).
#
#   bench/round2.sh [OUT_DIR]       # results in OUT_DIR (default: a new /tmp dir)
#
# It reuses bench/run.sh (sourced for its set-up, servers and figures:
# c1 p1 pinned latency, put/get, openssl speed sha256) and bench/tls.sh (TLS
# against plain, handshakes, idle connections), and adds what issue 20 asks
# beyond them: the server's CPU per echo request against epoll_echo in
# alternating rounds (the method of the kit's cpu.sh), the clients' own CPU
# per request (`sockit bench` against loadgen on the same server), and the
# sweeps behind the plots. Result lines go to OUT_DIR/results.txt, the table
# to OUT_DIR/round2.md, the plot data to OUT_DIR/*.dat.
#
# Environment (defaults in brackets; run.sh's SOCKIT, KIT, DUR, PORT apply):
#   ROUNDS     [3]      alternating rounds of the CPU-per-request figures
#   TLS_RUNS   [3]      rounds of bench/tls.sh's TLS/plain echo and put/get (means)
#   FILE_MB    [1024]   put/get size of the target figures (MiB)
#   PUT_SIZES  [1 16 256 1024 4096]  MiB, the put sweep (a size is skipped unless
#              2.5 times it is free memory: source, copy and pre-fault live in /dev/shm)
#   IDLE       [19900]  idle connections held, plain and TLS (fd limit 20,000 here)
#   HS         [3000]   full TLS handshakes timed
#   SWEEP_CONNS [1 10 100 1000 10000]  the echo sweep; SWEEP_DUR [2] s each
#   ROOMS      [10 100 1000 3000]      the chat sweep (members of one room; forming a
#              room costs N^2: 10,000 members did not form within 60 s here)
#   IDLE_STEPS [1000 5000 10000]       the RSS sweep (IDLE is the last point)
#   PLOTS      [docs/images]  where the PNGs go ("" skips drawing)
# Tiny run while developing: ROUNDS=1 TLS_RUNS=1 DUR=1 FILE_MB=16 PUT_SIZES="1 16" IDLE=500
#   HS=200 SWEEP_CONNS="1 10" SWEEP_DUR=1 ROOMS="10 100" IDLE_STEPS=100 bench/round2.sh
# Needs what run.sh needs, plus jq, gnuplot (plots), iperf3 (its put line, if
# installed) and /usr/bin/time.
set -u
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
TLS_RUNS=${TLS_RUNS:-3}
PUT_SIZES=${PUT_SIZES:-"1 16 256 1024 4096"}
IDLE=${IDLE:-19900}
HS=${HS:-3000}
SWEEP_CONNS=${SWEEP_CONNS:-"1 10 100 1000 10000"}
SWEEP_DUR=${SWEEP_DUR:-2}
ROOMS=${ROOMS:-"10 100 1000 3000"}
IDLE_STEPS=${IDLE_STEPS:-"1000 5000 10000"}
PLOTS=${PLOTS-$ROOT_DIR/docs/images}
RUN_SH_LIB=1
# shellcheck source=bench/run.sh
. "$ROOT_DIR/bench/run.sh" "${1:-}"
HZ=$(getconf CLK_TCK)
echo "round2.sh: results in $OUT" >&2

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
kv() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p; s/^$1=\([^[:space:]]*\).*/\1/p" <<<"$2" | head -1; }

# serve NAME: epoll, sockit (plain, no auth) or sockit_auth (plain, authenticated),
# with its default loops (one per core), or with _t1 one loop as epoll_echo has
serve() {
  case $1 in
    epoll) serve_epoll 0 ;;
    sockit) start_server 0 "$SOCKIT" serve -l "$ADDR" --no-tls --no-auth --root "$FROOT" ;;
    sockit_auth) serve_sockit 0 ;;
    sockit_t1) start_server 0 "$SOCKIT" serve -l "$ADDR" --no-tls --no-auth --threads 1 --root "$FROOT" ;;
    sockit_auth_t1) serve_sockit 0 --threads 1 ;;
  esac
}
lg_auth() { case $1 in sockit_auth*) echo "--key-file $KEY" ;; *) echo "--no-auth" ;; esac; }

# ---- 1. server CPU per echo request against epoll_echo (cpu.sh's method) ----------
# One loadgen run per server, no warm-up, the server's user+sys ticks around it.
cpu_figures() {
  local c p r name out t0 t1 rs
  for cp in "50 16" "50 1"; do
    read -r c p <<<"$cp"
    for r in $(seq "$ROUNDS"); do
      for name in epoll sockit sockit_auth sockit_t1 sockit_auth_t1; do
        serve "$name" || { note "$name cpu_c${c}_p$p: server did not start"; continue; }
        t0=$(ticks "${PIDS[-1]}")
        # shellcheck disable=SC2046
        out=$("$LOADGEN" --addr "$ADDR" $(lg_auth "$name") --mode echo --conns "$c" --pipeline "$p" \
          --size 64 --duration "$DUR" --warmup 0 2>"$OUT/last.err")
        t1=$(ticks "${PIDS[-1]}")
        stop_all
        rs=$(kv req_s "$out")
        [ -n "$rs" ] || { note "$name cpu_c${c}_p$p round $r failed: $(head -c 200 "$OUT/last.err")"; continue; }
        echo "$name cpu_c${c}_p$p round=$r req_s=$rs cpu_us=$(awk -v r="$rs" -v t=$((t1 - t0)) \
          -v d="$DUR" -v hz="$HZ" 'BEGIN { printf "%.3f", t * 1e6 / hz / (r * d) }')" >>"$RES"
      done
    done
  done
}

# ---- 6. the clients' own CPU per request, same server, alternating ------------------
client_cpu_figures() {
  local r tool out rs cpu
  for r in $(seq "$ROUNDS"); do
    serve sockit_auth || { note "client_cpu: server did not start"; return; }
    for tool in loadgen bench; do
      if [ $tool = loadgen ]; then
        out=$(/usr/bin/time -f "cpu=%U+%S" "$LOADGEN" --addr "$ADDR" --key-file "$KEY" --mode echo \
          --conns 50 --pipeline 16 --size 64 --duration "$DUR" --warmup 0 2>"$OUT/last.err")
        rs=$(kv req_s "$out")
      else
        out=$(/usr/bin/time -f "cpu=%U+%S" "$SOCKIT" bench "$ADDR" --no-tls --key-file "$KEY" -q \
          --mode echo --conns 50 --pipeline 16 --size 64 --duration "$DUR" --warmup 0 --json \
          2>"$OUT/last.err")
        rs=$(jq -r .req_s <<<"$out" 2>/dev/null)
      fi
      cpu=$(sed -n 's/^cpu=//p' "$OUT/last.err" | tail -1)
      [ -n "$rs" ] && [ -n "$cpu" ] || { note "client_cpu $tool round $r failed"; continue; }
      echo "$tool client_cpu_c50_p16 round=$r req_s=$rs cpu_us=$(awk -v r="$rs" -v d="$DUR" \
        "BEGIN { printf \"%.3f\", ($cpu) * 1e6 / (r * d) }")" >>"$RES"
    done
    stop_all
  done
}

# ---- plot data ----------------------------------------------------------------
# Echo, 64 B, one request in flight per connection, N connections.
sweep_conns() {
  local n name out
  echo "# conns sockit_req_s sockit_p99_us epoll_req_s epoll_p99_us" >"$OUT/conns.dat"
  for n in $SWEEP_CONNS; do
    local row="$n"
    for name in sockit_auth epoll; do
      serve "$name" || { row="$row NaN NaN"; continue; }
      # shellcheck disable=SC2046
      out=$("$LOADGEN" --addr "$ADDR" $(lg_auth "$name") --mode echo --conns "$n" --pipeline 1 \
        --size 64 --duration "$SWEEP_DUR" --warmup 1 --connect-batch 64 2>"$OUT/last.err")
      stop_all
      row="$row $(kv req_s "$out") $(kv p99_us "$out")"
      echo "$name sweep_conns$n $out" >>"$RES"
    done
    echo "$row" | awk '{ for (i = 1; i <= 5; i++) if ($i == "") $i = "NaN"; print }' >>"$OUT/conns.dat"
  done
}

# put of each size from /dev/shm: sockit (fastest hash, sha256, TLS), epoll_echo
# (loadgen, no hash); iperf3 one stream and openssl speed sha256 give the lines
sweep_put() {
  local mb f out name
  echo "# mib sockit_fastest_s sockit_sha256_s sockit_tls_s epoll_s" >"$OUT/put.dat"
  for mb in $PUT_SIZES; do
    # the source, the server's copy and the pre-fault all live in memory
    if [ $((mb * 5 / 2)) -gt $(($(awk '/MemAvailable/ {print $2}' /proc/meminfo) / 1024)) ]; then
      note "put sweep: $mb MiB skipped, not enough memory free for it in /dev/shm"
      continue
    fi
    f=/dev/shm/sockit-bench-put-$$-$mb.bin
    head -c "$((mb << 20))" /dev/urandom >"$f"
    local row="$mb" secs
    for name in fastest sha256 tls epoll; do
      prefault
      case $name in
        epoll)
          serve_epoll 0 && out=$("$LOADGEN" --addr "$ADDR" --no-auth --mode put --file "$f" \
            --name p.bin 2>"$OUT/last.err") && secs=$(kv seconds "$out") ;;
        tls)
          start_server 0 "$SOCKIT" serve -l "$ADDR" --key-file "$KEY" --root "$FROOT" &&
            secs=$("$SOCKIT" bench "$ADDR" --key-file "$KEY" -q --mode put --file "$f" --json \
              2>"$OUT/last.err" | jq -r .seconds) ;;
        *)
          local h=()
          [ $name = sha256 ] && h=(--hash sha256)
          serve_sockit 0 && secs=$("$SOCKIT" bench "$ADDR" --no-tls --key-file "$KEY" -q --mode put \
            --file "$f" "${h[@]}" --json 2>"$OUT/last.err" | jq -r .seconds) ;;
      esac
      stop_all
      [ -n "${secs:-}" ] || secs=NaN
      row="$row $secs"
      echo "$name sweep_put${mb} seconds=$secs" >>"$RES"
      secs=
    done
    rm -f "$f"
    echo "$row" >>"$OUT/put.dat"
  done
  if command -v iperf3 >/dev/null; then
    start_server 0 iperf3 -s -B 127.0.0.1 -p "$PORT" -1 &&
      out=$(iperf3 -c 127.0.0.1 -p "$PORT" -t 3 -J 2>/dev/null) &&
      echo "iperf3 loopback mb_s=$(jq '.end.sum_received.bits_per_second / 8e6' <<<"$out")" >>"$RES"
    stop_all
  fi
}

# one room of N members, one sender, 64-byte messages, window of 16; the
# time to form the room (connect, authenticate, join) is the wall time of
# the run less the measured seconds and the warm-up
sweep_chat() {
  local n out t0 t1
  echo "# members deliveries_s p50_us p99_us form_s" >"$OUT/chat.dat"
  for n in $ROOMS; do
    serve_sockit 0 || continue
    t0=$(date +%s.%N)
    out=$("$SOCKIT" bench "$ADDR" --no-tls --key-file "$KEY" -q --mode chat --conns "$n" --senders 1 \
      --size 64 --duration "$SWEEP_DUR" --warmup 1 --json 2>"$OUT/last.err")
    t1=$(date +%s.%N)
    stop_all
    echo "sockit chat$n $(jq -r '"deliveries_s=\(.deliveries_s) p99_us=\(.p99_us) ok=\(.ok) error=\(.error // "" | gsub(" "; "_"))"' <<<"$out")" >>"$RES"
    jq -r --arg n "$n" --arg f "$(echo "$t0 $t1 $SWEEP_DUR" | awk '{print $2 - $1 - $3 - 1}')" \
      'select(.ok) | "\($n) \(.deliveries_s) \(.p50_us) \(.p99_us) \($f)"' <<<"$out" >>"$OUT/chat.dat"
  done
}

# server RSS growth with N idle authenticated connections (each answers a ping)
sweep_idle() {
  local n name
  for n in $IDLE_STEPS; do
    for name in sockit tls epoll; do
      case $name in
        sockit) serve_sockit 0 && record_json "sockit" "idle$n" "$SOCKIT" bench "$ADDR" --no-tls \
          --key-file "$KEY" -q --mode conns --conns "$n" --hold 1 --server-pid "${PIDS[-1]}" --json ;;
        tls) start_server 0 "$SOCKIT" serve -l "$ADDR" --key-file "$KEY" --root "$FROOT" &&
          record_json "tls" "idle$n" "$SOCKIT" bench "$ADDR" --key-file "$KEY" -q --mode conns \
            --conns "$n" --hold 1 --server-pid "${PIDS[-1]}" --json ;;
        epoll) serve_epoll 0 && record_json "epoll" "idle$n" "$SOCKIT" bench "$ADDR" --no-tls \
          --no-auth -q --mode conns --conns "$n" --hold 1 --server-pid "${PIDS[-1]}" --json ;;
      esac
      stop_all
    done
  done
}

t_start=$(date +%s)
cpu_figures
echo_figure "echo64_c1_p1@cpu0" 1 1 1 sockit epoll
put_figures
PORT=$((PORT + 50)) RES=$RES RUNS=$TLS_RUNS SIZE_MB=$FILE_MB CONNS=$IDLE HS=$HS ECHO_S=$DUR \
  sh "$ROOT_DIR/bench/tls.sh" "$SOCKIT" >"$OUT/tls.txt" 2>&1 || note "tls.sh failed: $(tail -3 "$OUT/tls.txt")"
client_cpu_figures
sweep_conns
sweep_put
sweep_chat
sweep_idle
note "run took $(($(date +%s) - t_start)) s; loadavg at the end $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$ROOT_DIR/bench/targets.py" --round2 "$RES" "$IDLE" "$OUT" | tee "$OUT/round2.md"
if [ -n "$PLOTS" ]; then
  mkdir -p "$PLOTS"
  gnuplot -e "dir='$OUT'; out='$PLOTS'" "$ROOT_DIR/bench/round2.gp" && echo "plots in $PLOTS" >&2
fi
