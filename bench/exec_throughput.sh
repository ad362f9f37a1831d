#!/bin/sh
# exec_throughput.sh SOCKIT_BIN [MiB] - bytes through a remote `cat` (1 GiB by
# default): `sockit exec --stdin -- cat` beside a plain local pipe, socat
# EXEC:cat and `ncat --exec /bin/cat`, all in one run; then one-way into a
# remote `wc -c` with sockit and with ncat. MB/s are 10^6 bytes per second.
# The raw TCP client for socat/ncat is bench/tcp_pipe.py. ncat --exec can
# stall on a two-way stream (it blocks writing the child's stdin while the
# child blocks writing its stdout): that row gives up after 30 s.
set -u
BIN=$1
MIB=${2:-1024}
BYTES=$((MIB * 1048576))
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d)
PIDS=""
trap 'kill $PIDS 2>/dev/null; rm -rf "$T"' EXIT

now() { date +%s.%N; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
report() { # name start end result-text expected-text
  awk -v n="$1" -v s="$2" -v e="$3" -v b="$BYTES" -v got="$4" -v want="$5" 'BEGIN {
    if (got != want)
      printf "%-36s %6.2f s  no rate: %s bytes came back, not %s\n", n, e - s, got == "" ? 0 : got, want
    else
      printf "%-36s %6.2f s  %8.1f MB/s\n", n, e - s, b / (e - s) / 1e6 }'
}
tcp() { timeout "${2:-120}" python3 "$HERE/tcp_pipe.py" 127.0.0.1 "$1"; }

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/key"
chmod 600 "$T/key"
"$BIN" serve -l 127.0.0.1:0 --key-file "$T/key" --allow-exec --root "$T" 2>"$T/err" &
PIDS="$PIDS $!"
P_SOCAT=$(free_port)
socat TCP-LISTEN:"$P_SOCAT",bind=127.0.0.1,reuseaddr,fork EXEC:/bin/cat &
PIDS="$PIDS $!"
P_NCAT=$(free_port)
ncat -l -k 127.0.0.1 "$P_NCAT" --exec /bin/cat &
PIDS="$PIDS $!"
P_NCWC=$(free_port)
ncat -l -k 127.0.0.1 "$P_NCWC" --sh-exec 'cat >/dev/null' &
PIDS="$PIDS $!"
sleep 0.5
ADDR=$(sed -n 's/^sockit: listening on //p' "$T/err")
X="$BIN exec $ADDR --key-file $T/key --stdin"

echo "both ways through cat, $MIB MiB:"
s=$(now); n=$(head -c "$BYTES" /dev/zero | cat | wc -c); e=$(now)
report "  plain pipe: head | cat | wc -c" "$s" "$e" "$n" "$BYTES"
s=$(now); n=$(head -c "$BYTES" /dev/zero | $X -- cat | wc -c); e=$(now)
report "  sockit exec --stdin -- cat" "$s" "$e" "$n" "$BYTES"
s=$(now); n=$(head -c "$BYTES" /dev/zero | tcp "$P_SOCAT" | wc -c); e=$(now)
report "  socat TCP-LISTEN EXEC:/bin/cat" "$s" "$e" "$n" "$BYTES"
s=$(now); n=$(head -c "$BYTES" /dev/zero | tcp "$P_NCAT" 30 | wc -c); e=$(now)
report "  ncat --exec /bin/cat" "$s" "$e" "$n" "$BYTES"
echo "one way into a remote program, $MIB MiB:"
s=$(now); n=$(head -c "$BYTES" /dev/zero | $X -- wc -c); e=$(now)
report "  sockit exec --stdin -- wc -c" "$s" "$e" "$n" "$BYTES"
s=$(now); head -c "$BYTES" /dev/zero | $X -- sh -c 'cat >/dev/null'; e=$(now)
report "  sockit exec --stdin -- cat >/dev/null" "$s" "$e" - -
s=$(now); head -c "$BYTES" /dev/zero | tcp "$P_NCWC"; e=$(now)
report "  ncat --sh-exec 'cat >/dev/null'" "$s" "$e" - -
