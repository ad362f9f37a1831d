#!/bin/sh
# scripts/check-layers.sh [ROOT] - the service boundary (docs/internals.md,
# "Layers"): services see the server only through the service API
# (src/service/*.h and include/sockit/), and the core knows no service.
#
#   1. no file under src/services/ includes a src/net/ header;
#   2. no file under src/net/ or src/http/ (the core) names a service: a
#      services/ header, a built-in's table (sk__svc_*) or seed adapter
#      (sk__wire_seed_*), or a built-in service's name as a string or at
#      the head of a list ("echo,time");
#   3. the connection engine (src/net/engine.[ch]) makes no libuv call and
#      includes no <uv.h> itself: the plumbing (conn.c) owns the socket;
#   4. loop.c calls nothing above it by name (connections, write queues,
#      the budget, the server): it sees connections through
#      sk_loop_conn_ops.
#
# A grep, cheap enough for every `make lint` and ctest (`layers`). Prints
# each breach as FILE:LINE: TEXT and exits 1; 0 when the layers hold.
set -u
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 2
rc=0

hits=$(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"(\.\./)*net/' src/services)
if [ -n "$hits" ]; then
  printf '%s\n' "$hits" | sed 's/$/  <- a service includes a src\/net\/ header: use src\/service\/*.h/' >&2
  rc=1
fi

hits=$(grep -rnE '#[[:space:]]*include[[:space:]]*"(\.\./)*services/|sk__svc_[a-z]|sk__wire_seed_|"(echo|time|chat|files|exec)(,[a-z,]*)?"' \
  src/net src/http)
if [ -n "$hits" ]; then
  printf '%s\n' "$hits" | sed 's/$/  <- the core names a service: let the service declare it (its table, options, wires)/' >&2
  rc=1
fi
hits=$(grep -nHE '(^|[^a-z_])uv_[a-z_]+[[:space:]]*\(|#[[:space:]]*include[[:space:]]*<uv\.h>' \
  src/net/engine.c src/net/engine.h)
if [ -n "$hits" ]; then
  printf '%s\n' "$hits" | sed 's/$/  <- the engine calls libuv: leave it to the plumbing (conn.c, a host member)/' >&2
  rc=1
fi

hits=$(grep -nHE '(sk__conn_|sk__wq_|sk__budget_|sk__server_)[a-z_]+[[:space:]]*\(|sk_server_stop' src/net/loop.c)
if [ -n "$hits" ]; then
  printf '%s\n' "$hits" | sed 's/$/  <- loop.c calls a layer above it: go through sk_loop_conn_ops/' >&2
  rc=1
fi
exit $rc
