"""man/sockit.1 against the real binary (issue 10): every command that
`sockit --help` lists has a section, every --flag that a command's --help
prints is documented, and the page renders without a groff warning. The
command list is read from the binary, so new commands are checked as they
land."""

import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MANPAGE = os.path.join(ROOT, "man", "sockit.1")
COMMAND_RE = re.compile(r"^  ([a-z][a-z0-9-]*)\s{2,}\S")
FLAG_RE = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


def man_text():
    """The page's source with roff escapes undone: \\- to -, fonts dropped."""
    with open(MANPAGE, encoding="utf-8") as f:
        src = f.read()
    src = src.replace("\\-", "-").replace("\\&", "").replace("\\c", "")
    return re.sub(r"\\f[BIRP]", "", src)


def documented(flag, text):
    return re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(flag), text) is not None


def commands(sockit_bin):
    r = subprocess.run([sockit_bin, "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    found = [m.group(1) for m in map(COMMAND_RE.match, r.stdout.splitlines()) if m]
    assert "serve" in found, r.stdout
    return found


def help_flags(sockit_bin, cmd):
    r = subprocess.run([sockit_bin, cmd, "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, "sockit %s --help: exit %d\n%s" % (cmd, r.returncode, r.stderr)
    return sorted(set(FLAG_RE.findall(r.stdout)))


def test_every_command_has_a_section(sockit_bin):
    text = man_text()
    missing = [c for c in commands(sockit_bin) if ".SS sockit %s\n" % c not in text]
    assert missing == [], "commands without a section in man/sockit.1: %s" % missing


def test_every_help_flag_is_in_the_manpage(sockit_bin):
    text = man_text()
    missing = {}
    for cmd in commands(sockit_bin):
        flags = help_flags(sockit_bin, cmd)
        assert "--help" in flags, cmd
        gone = [f for f in flags if not documented(f, text)]
        if gone:
            missing[cmd] = gone
    assert missing == {}, "flags printed by --help but not in man/sockit.1: %s" % missing


def test_top_level_flags_documented():
    text = man_text()
    assert documented("--help", text) and documented("--version", text)


def test_groff_has_no_warnings():
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed (apt-get install groff-base)")
    r = subprocess.run(["groff", "-man", "-ww", "-z", MANPAGE], capture_output=True, text=True,
                       timeout=30)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_man_renders(tmp_path):
    if shutil.which("man") is None:
        pytest.skip("man is not installed (apt-get install man-db)")
    env = dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat")
    r = subprocess.run(["man", "--warnings", "-l", MANPAGE], capture_output=True, text=True,
                       env=env, timeout=30)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "sockit serve" in r.stdout and "EXIT STATUS" in r.stdout
