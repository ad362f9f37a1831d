#!/usr/bin/env python3
"""scripts/check-exports.py LIBSOCKIT.SO SONAME HEADER_DIR... - does the
shared library export exactly the functions include/sockit/*.h declare?

libsockit is compiled with -fvisibility=hidden and every public declaration
carries SK_API (sockit/export.h). This compares the two sides and names each
difference, so that a new public function without SK_API (not exported), or
an internal one that became visible (exported, declared nowhere), fails the
ctest `exported_symbols`. It also checks the library's SONAME.

Headers are read as text: comments, preprocessor lines and brace blocks
(struct bodies, static inline bodies) are dropped, and every remaining
statement of the form `... name(...)` that is not a typedef and not static
is a public function."""

import glob
import os
import re
import subprocess
import sys


def declarations(path):
    """{name: has SK_API} for the functions the header declares."""
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r"\\\n", " ", text)
    text = re.sub(r"^\s*#[^\n]*", " ", text, flags=re.M)
    text = text.replace('extern "C" {', " ")
    text = re.sub(r"^\s*}\s*$", " ", text, flags=re.M)  # extern "C"'s end
    while True:
        shorter = re.sub(r"\{[^{}]*\}", ";", text)
        if shorter == text:
            break
        text = shorter
    found = {}
    for stmt in text.split(";"):
        stmt = " ".join(stmt.split())
        if "(" not in stmt or re.match(r"(typedef|static)\b", stmt):
            continue
        m = re.search(r"(\w+)\s*\(", stmt)
        if m is None or m.group(1) == "SK_API":
            continue
        found[m.group(1)] = stmt.startswith("SK_API ")
    return found


def exported(lib):
    out = subprocess.run(["nm", "-D", "--defined-only", lib], check=True,
                         capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        name = line.split()[-1].split("@")[0]
        # toolchain symbols (_init, _fini, __bss_start, sanitizer glue)
        if not name.startswith("_"):
            names.add(name)
    return names


def soname(lib):
    out = subprocess.run(["readelf", "-d", lib], check=True, capture_output=True,
                         text=True).stdout
    m = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", out)
    return m.group(1) if m else None


def main(argv):
    if len(argv) < 4:
        sys.stderr.write(__doc__.split("\n\n")[0] + "\n")
        return 2
    lib, want_soname, dirs = argv[1], argv[2], argv[3:]
    declared = {}
    where = {}
    for d in dirs:
        for h in sorted(glob.glob(os.path.join(d, "sockit", "*.h"))):
            for name, marked in declarations(h).items():
                declared[name] = marked
                where[name] = os.path.relpath(h, os.path.dirname(d))
    have = exported(lib)
    bad = 0
    for name in sorted(n for n, marked in declared.items() if not marked):
        print("exports: %s (%s) is declared without SK_API: begin its declaration "
              "with SK_API" % (name, where[name]))
        bad += 1
    for name in sorted(n for n, marked in declared.items() if marked and n not in have):
        print("exports: %s (%s) is declared but libsockit.so does not export it "
              "(not defined, or defined static?)" % (name, where[name]))
        bad += 1
    for name in sorted(have - set(declared)):
        print("exports: %s is exported but declared in no public header: make it "
              "static, or sk__ in a src/ header (hidden), or declare it in "
              "include/sockit/ with SK_API" % name)
        bad += 1
    got = soname(lib)
    if got != want_soname:
        print("exports: SONAME is %s, want %s (SOCKIT_ABI_VERSION in CMakeLists.txt)"
              % (got, want_soname))
        bad += 1
    print("exports: %d functions declared, %d exported, SONAME %s, %d problems"
          % (len(declared), len(have), got, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
