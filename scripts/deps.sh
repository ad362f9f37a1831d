#!/usr/bin/env bash
# scripts/deps.sh [--test] - check (and, as root, install) what building
# sockit needs, and with --test also what testing it needs.
#
#   deps.sh         the build set: a C compiler, make, cmake, pkg-config and
#                   the dev packages of the libraries libsockit links. `make`,
#                   `make run` and `make install` ask for these only.
#   deps.sh --test  the build set and the test set: Check, pytest and what
#                   the e2e tests drive (groff, man, Chromium, ...), clang
#                   with the libFuzzer runtime, valgrind, cppcheck,
#                   clang-tidy, clang-format. `make test` and the other test,
#                   fuzz and lint targets ask for these.
#
# Every dependency comes from Debian. All present: prints "deps: ok" and
# exits 0. Something missing:
#   root      -> apt-get install -y --no-install-recommends <the missing
#                packages>, with one `apt-get update` only if the install
#                fails without it; then checks again.
#   not root  -> prints the exact `sudo apt-get install ...` line, exits 1.
#
# Environment:
#   SOCKIT_DEPS_NO_INSTALL=1  never install, only report (exit 1 if missing)
#   PKG_CONFIG                pkg-config program to use (default pkg-config)
#   PYTHON                    python for the e2e tests (default /usr/bin/python3)
set -euo pipefail

want_test=0
case ${1:-} in
  --test) want_test=1 ;;
  "") ;;
  *)
    echo "usage: $0 [--test]" >&2
    exit 2
    ;;
esac

PKG_CONFIG=${PKG_CONFIG:-pkg-config}
PYTHON=${PYTHON:-/usr/bin/python3}
CC_PROG=${CC:-cc}

missing=()     # Debian package names, in a stable order, no duplicates
why=()         # what each one is for, for the message
have_pc=1      # pkg-config is there (else dpkg tells whether a -dev package is)

need() {       # need PACKAGE REASON
  local p
  for p in "${missing[@]+"${missing[@]}"}"; do
    [[ $p == "$1" ]] && return 0
  done
  missing+=("$1")
  why+=("$1 ($2)")
}

have_cmd() { command -v "$1" >/dev/null 2>&1; }

# A C compiler that can build and link a program against libc.
cc_works() {
  local cc=$1 tmp rc
  have_cmd "$cc" || return 1
  tmp=$(mktemp -d)
  printf '#include <stdio.h>\nint main(void){puts("x");return 0;}\n' >"$tmp/t.c"
  "$cc" "$tmp/t.c" -o "$tmp/t" >/dev/null 2>&1 && rc=0 || rc=1
  rm -rf "$tmp"
  return $rc
}

# Can clang link a libFuzzer harness?
fuzzer_works() {
  local tmp rc
  tmp=$(mktemp -d)
  printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)'\
'{(void)d;(void)n;return 0;}\n' >"$tmp/f.c"
  clang -fsanitize=fuzzer "$tmp/f.c" -o "$tmp/f" >/dev/null 2>&1 && rc=0 || rc=1
  rm -rf "$tmp"
  return $rc
}

# Does the C compiler find this header? (libraries without a pkg-config file)
have_header() {
  printf '#include <%s>\n' "$1" | "$CC_PROG" -E -x c - >/dev/null 2>&1
}

# Debian package installed? Used for libraries while pkg-config itself is missing.
dpkg_has() {
  have_cmd dpkg-query || return 1
  [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

# Debian package for a pkg-config module that is missing.
need_module() { # need_module MODULE PACKAGE
  if ((have_pc)); then
    "$PKG_CONFIG" --exists "$1" 2>/dev/null || need "$2" "pkg-config module $1"
  else
    dpkg_has "$2" || need "$2" "pkg-config module $1"
  fi
}

# What `make` needs: compiler, build tools and the libraries libsockit links.
check_build() {
  have_cmd make || need make "make"
  have_cmd cmake || need cmake "cmake"
  if ! cc_works "$CC_PROG"; then
    local before=${#missing[@]}
    have_cmd "$CC_PROG" || need gcc "C compiler"
    dpkg_has libc6-dev || need libc6-dev "C library headers"   # gcc only Recommends it
    ((${#missing[@]} > before)) || need gcc "a C compiler that works ($CC_PROG fails on hello world)"
  fi
  have_pc=1
  have_cmd "$PKG_CONFIG" || { have_pc=0; need pkg-config "pkg-config"; }
  local pair
  # pkg-config module  Debian package
  for pair in "libuv:libuv1-dev" "libssl:libssl-dev" "libcrypto:libssl-dev" "jansson:libjansson-dev" \
              "libxxhash:libxxhash-dev" \
              "icu-uc:libicu-dev" "icu-i18n:libicu-dev" "hiredis:libhiredis-dev"; do
    need_module "${pair%%:*}" "${pair#*:}"
  done
  # the HTTP front's parsers (src/http), which ship no pkg-config file
  have_header http_parser.h || need libhttp-parser-dev "http-parser (HTTP/1.1 requests)"
  have_header wslay/wslay.h || need libwslay-dev "wslay (WebSocket frames)"
}

# What `make test` needs on top: the unit test library, the e2e runner and
# the hardening stage's tools.
check_test() {
  need_module check check
  if [[ ! -x $PYTHON ]] || ! "$PYTHON" -c 'import pytest' >/dev/null 2>&1; then
    need python3-pytest "$PYTHON -m pytest"
  fi
  # make test's hardening stage: libFuzzer harnesses (clang and its runtime)
  # and a valgrind run of the end-to-end suite
  if ! have_cmd clang; then
    need clang "clang, for the libFuzzer harnesses"
    need libclang-rt-dev "clang's libFuzzer runtime" # not pulled in by clang
  elif ! fuzzer_works; then
    need libclang-rt-dev "clang's libFuzzer runtime"
  fi
  have_cmd valgrind || need valgrind "valgrind memcheck of the e2e suite"
  # make test also runs make lint and make format-check
  have_cmd cppcheck || need cppcheck "cppcheck (make lint)"
  have_cmd clang-tidy || need clang-tidy "clang-tidy (make lint)"
  have_cmd clang-format || need clang-format "clang-format (make format-check)"
  # TLS interop tests: openssl s_client / s_server with an external PSK
  have_cmd openssl || need openssl "openssl s_client (TLS interop tests)"
  # the man page is rendered and checked for warnings by the e2e suite
  have_cmd groff || need groff-base "groff, to check man/sockit.1"
  have_cmd man || need man-db "man -l man/sockit.1"
  # the e2e suite runs its tests in parallel and bounds each one
  if ! "$PYTHON" -c 'import xdist' >/dev/null 2>&1; then
    need python3-pytest-xdist "pytest -n (parallel e2e tests)"
  fi
  if ! "$PYTHON" -c 'import pytest_timeout' >/dev/null 2>&1; then
    need python3-pytest-timeout "pytest --timeout (per-test bound)"
  fi
  # the HTTP front's tests: /metrics parsed by the Prometheus client's own
  # parser, the web page driven in headless Chromium
  if ! "$PYTHON" -c 'import prometheus_client' >/dev/null 2>&1; then
    need python3-prometheus-client "prometheus_client's text parser (test_http)"
  fi
  if ! "$PYTHON" -c 'import selenium' >/dev/null 2>&1; then
    need python3-selenium "selenium (test_web)"
  fi
  have_cmd chromium || need chromium "headless Chromium (test_web)"
  have_cmd chromedriver || need chromium-driver "chromedriver (test_web)"
  # chat across servers: the e2e tests start their own redis-server
  have_cmd redis-server || need redis-server "redis-server (test_chat_redis)"
  have_cmd redis-benchmark || need redis-tools "redis-benchmark (bench/chat_redis.sh)"
  # bench/round2.sh and bench/tls.sh (iperf3 is used when installed)
  have_cmd jq || need jq "jq (bench/tls.sh, bench/round2.sh)"
  have_cmd gnuplot || need gnuplot-nox "gnuplot (the plots of bench/round2.sh)"
}

check_all() {
  missing=()
  why=()
  check_build
  if ((want_test)); then
    check_test
  fi
}

check_all
if ((${#missing[@]} == 0)); then
  echo "deps: ok"
  exit 0
fi

echo "deps: missing: ${why[*]}" >&2
cmd="apt-get install -y --no-install-recommends ${missing[*]}"

if [[ ${SOCKIT_DEPS_NO_INSTALL:-0} == 1 ]]; then
  echo "deps: install them with: sudo $cmd" >&2
  exit 1
fi
if [[ $(id -u) != 0 ]]; then
  echo "deps: not root, so not installing. Run:" >&2
  echo "  sudo $cmd" >&2
  echo "then run the same make command again." >&2
  exit 1
fi
if ! have_cmd apt-get; then
  echo "deps: no apt-get here; install the equivalents of: ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Some checks can only run once an earlier package is there (the fuzzer
# runtime needs clang to test it), so a second round may find more.
for round in 1 2; do
  echo "deps: apt-get install -y --no-install-recommends ${missing[*]}" >&2
  if ! apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
    echo "deps: install failed; running apt-get update and trying again" >&2
    apt-get update >&2
    apt-get install -y --no-install-recommends "${missing[@]}" >&2
  fi
  check_all
  ((${#missing[@]} == 0)) && break
done
if ((${#missing[@]} != 0)); then
  echo "deps: still missing after install: ${why[*]}" >&2
  exit 1
fi
echo "deps: ok"
