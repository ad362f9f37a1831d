# bench/lib.sh - helpers for bench/run.sh and chat_redis.sh (source it). Every process started
# here is tracked by PID in PIDS and stopped by PID, never by name.

note() { echo "# $*" >>"$RES"; }

# setup_kit KIT DIR: copy the reference kit (read-only where it lives) and build it
setup_kit() {
  rm -rf "$2" && cp -r "$1" "$2" && make -s -C "$2" >/dev/null 2>&1 && return 0
  echo "run.sh: cannot build the reference kit from $1" >&2
  return 1
}

# raise_fd_limit N: as root, lift the hard limit too (children inherit it)
raise_fd_limit() {
  ulimit -Hn "$1" 2>/dev/null
  ulimit -n "$(ulimit -Hn)" 2>/dev/null
}

wait_listen() {
  local pid=$1 n=300
  while ((n-- > 0)); do
    kill -0 "$pid" 2>/dev/null || return 1
    ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q . && return 0
    sleep 0.05
  done
  return 1
}

wait_free() {
  local n=200
  while ((n-- > 0)); do
    ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q . || return 0
    sleep 0.05
  done
  return 1
}

# start_server PIN CMD...: PIN 1 runs it on CPU 0 only
start_server() {
  local pin=$1
  shift
  wait_free || { echo "run.sh: port $PORT is busy" >&2; return 1; }
  mkdir -p "$FROOT"
  if [ "$pin" = 1 ]; then
    taskset -c 0 "$@" >>"$OUT/servers.log" 2>&1 &
  else
    "$@" >>"$OUT/servers.log" 2>&1 &
  fi
  PIDS+=($!)
  wait_listen "$!"
}

# stop_pids: TERM each process in PIDS, KILL after 5 s; PIDS emptied
stop_pids() {
  local pid n
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || continue
    n=100
    while ((n-- > 0)) && kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  PIDS=()
}

# stop_all: stop every started server; empty the file root
stop_all() {
  stop_pids
  rm -rf "$FROOT"
}

# prefault: the VM hands idle pages back to the host (BASELINE.md); touch
# 1.5 GiB of tmpfs right before a 1 GiB transfer so it is not charged faults
prefault() {
  dd if=/dev/zero of=/dev/shm/sockit-bench-warm bs=1M count=1536 status=none
  rm -f /dev/shm/sockit-bench-warm
}

# server_cpu: user+sys seconds of the last server started, so far
server_cpu() {
  [ ${#PIDS[@]} -gt 0 ] && awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' \
    "/proc/${PIDS[-1]}/stat" 2>/dev/null
}

# cpu_since T0: " server_cpu_s=S" since server_cpu said T0 (empty if unknown)
cpu_since() {
  local t1
  t1=$(server_cpu) && [ -n "$1" ] && awk -v a="$1" -v b="$t1" 'BEGIN {printf " server_cpu_s=%.2f", b - a}'
}

# record LABEL FIG CMD...: run a loadgen-style command (key=value line out),
# with the server's CPU seconds during it
record() {
  local label=$1 fig=$2 out rc t0
  shift 2
  t0=$(server_cpu)
  out=$(timeout -k 5 300 "$@" 2>"$OUT/last.err")
  rc=$?
  if [ $rc -eq 0 ]; then
    echo "$label $fig $out$(cpu_since "$t0")" >>"$RES"
  else
    echo "$label $fig FAILED rc=$rc $(tr '\n' ' ' <"$OUT/last.err" | cut -c1-200)" >>"$RES"
  fi
}

# record_json LABEL FIG CMD...: the same for `sockit bench --json`
record_json() {
  local label=$1 fig=$2 out rc t0
  shift 2
  t0=$(server_cpu)
  out=$(timeout -k 5 300 "$@" 2>"$OUT/last.err")
  rc=$?
  if [ $rc -eq 0 ]; then
    echo "$(echo "$out" | python3 "$ROOT_DIR/bench/targets.py" --json "$label" "$fig")$(cpu_since "$t0")" >>"$RES"
  else
    echo "$label $fig FAILED rc=$rc $(tr '\n' ' ' <"$OUT/last.err" | cut -c1-200)" >>"$RES"
  fi
}
