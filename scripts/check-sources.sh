#!/bin/sh
# scripts/check-sources.sh [ROOT] - is every source file listed in its CMake
# file? CMake lists sources by name (no globbing), so a new .c file that
# nobody added to the list would silently not be built. CMake runs this when
# it configures (so `make` stops), and ctest runs it as `sources_listed`.
#
# Prints each missing file with the file and list to add it to, exits 1.
set -u
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 2
rc=0

# check DIR FIND-ARGS... : every file find lists under DIR must appear in
# DIR's list file as its path relative to where that CMakeLists.txt lives.
check() { # check CMAKEFILE LISTNAME PREFIX-TO-STRIP FIND-ARGS...
  cmakefile=$1 list=$2 strip=$3
  shift 3
  for f in $(find "$@" -type f | LC_ALL=C sort); do
    rel=${f#"$strip"}
    # a word of its own: preceded by space/( and followed by space/)/end
    if ! grep -Eq "(^|[[:space:](])$(printf '%s' "$rel" | sed 's/[.]/[.]/g')([[:space:])]|$)" \
      "$cmakefile"; then
      echo "sources: $f is not built: add \"$rel\" to $list in $cmakefile" >&2
      rc=1
    fi
  done
}

check CMakeLists.txt SOCKIT_SOURCES "" src -name '*.c'
check CMakeLists.txt SOCKIT_CLI_SOURCES "" cli -name '*.c'
check CMakeLists.txt SOCKIT_WEB_FILES "" web
[ -d tests/unit ] && check tests/unit/CMakeLists.txt SOCKIT_UNIT_TESTS tests/unit/ \
  tests/unit -maxdepth 1 -name 'test_*.c'
[ -d tests/helpers ] && check tests/helpers/CMakeLists.txt SOCKIT_TEST_HELPERS tests/helpers/ \
  tests/helpers -maxdepth 1 -name '*.c'
[ -d examples ] && check examples/CMakeLists.txt SOCKIT_EXAMPLES examples/ \
  examples -maxdepth 1 -name '*.c'
[ -d fuzz ] && check fuzz/CMakeLists.txt SOCKIT_FUZZERS fuzz/ fuzz -maxdepth 1 -name 'fuzz_*.c'
exit $rc
