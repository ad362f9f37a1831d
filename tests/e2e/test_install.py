"""`make install` honours PREFIX and DESTDIR, and a new user can build a
program against the installed library with
`cc prog.c $(pkg-config --cflags --libs sockit)`, shared and static (issue 10).

The library is built from this tree into a temporary build folder (not the
shared build/), installed into temporary prefixes, and examples/echo_client.c
is compiled against each install and run against the server under test."""

import glob
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROG = os.path.join(ROOT, "examples", "echo_client.c")


def sh(cmd, env=None, timeout=600):
    r = subprocess.run(cmd, shell=True, env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, "%s\nexit %d\n%s\n%s" % (cmd, r.returncode, r.stdout, r.stderr)
    return r.stdout


@pytest.fixture(scope="module")
def tools():
    for t in ("make", "cmake", "cc", "pkg-config"):
        if shutil.which(t) is None:
            pytest.skip("%s is not installed" % t)


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory, tools):
    return str(tmp_path_factory.mktemp("install") / "build")


def make_install(build, prefix, destdir=""):
    # No sanitizers and no unit tests: this checks packaging, not behaviour.
    env = {k: v for k, v in os.environ.items() if not k.endswith("SAN_OPTIONS")}
    sh("make -C %s install PREFIX=%s DESTDIR=%s BUILD=%s JOBS=4 CMAKE_ARGS=-DSOCKIT_TESTS=OFF"
       % (ROOT, prefix, destdir, build), env=env)


def pc_env(pcdir, sysroot=None):
    env = dict(os.environ, PKG_CONFIG_PATH=pcdir)
    env.pop("PKG_CONFIG_LIBDIR", None)
    if sysroot:
        env["PKG_CONFIG_SYSROOT_DIR"] = sysroot
    return env


def find_pc(root):
    """sockit.pc under ROOT/lib or a multiarch ROOT/lib/TRIPLET."""
    found = glob.glob(os.path.join(root, "lib*", "pkgconfig", "sockit.pc")) + \
        glob.glob(os.path.join(root, "lib", "*", "pkgconfig", "sockit.pc"))
    assert len(found) == 1, (root, found)
    return found[0]


def run_echo(exe, addr, env=None):
    r = subprocess.run([exe, addr, "installed"], env=env, capture_output=True, text=True,
                       timeout=20)
    assert (r.returncode, r.stdout) == (0, "installed\n"), r.stderr
    return r


def test_prefix_install_shared(build_dir, tmp_path, start_server):
    prefix = str(tmp_path / "prefix")
    make_install(build_dir, prefix)
    for rel in ("bin/sockit", "include/sockit/sockit.h", "include/sockit/version.h",
                "include/sockit/client.h"):
        assert os.path.isfile(os.path.join(prefix, rel)), rel
    pc = find_pc(prefix)
    libdir = os.path.dirname(os.path.dirname(pc))
    assert glob.glob(os.path.join(libdir, "libsockit.so*")) and \
        os.path.isfile(os.path.join(libdir, "libsockit.a"))
    version = sh("%s/bin/sockit --version" % prefix).strip()
    env = pc_env(os.path.dirname(pc))
    assert sh("pkg-config --modversion sockit", env=env).strip() == version.split()[1]

    exe = str(tmp_path / "echo_client")
    sh("cc -Wall -Wextra -Werror %s -o %s $(pkg-config --cflags --libs sockit)" % (PROG, exe),
       env=env)
    run_env = dict(os.environ, LD_LIBRARY_PATH=libdir)
    assert os.path.join(libdir, "libsockit.so") in sh("ldd %s" % exe, env=run_env)
    srv = start_server("--no-auth")
    run_echo(exe, srv.addr, run_env)

    # The opt-in libuv header compiles with the same flags (libuv's come from
    # Requires.private) and its one function links.
    embed = tmp_path / "embed.c"
    embed.write_text("#include <sockit/sockit.h>\n#include <sockit/uv.h>\n"
                     "int main(void) { uv_loop_t *(*f)(sk_conn *) = sk_conn_uv_loop;"
                     " return f == NULL; }\n")
    sh("cc -Wall -Werror %s -o %s $(pkg-config --cflags --libs sockit)"
       % (embed, tmp_path / "embed"), env=env)


def test_destdir_install_static(build_dir, tmp_path, start_server):
    stage, prefix = str(tmp_path / "stage"), "/opt/sockit-test"
    make_install(build_dir, prefix, destdir=stage)
    assert not os.path.exists(prefix), "DESTDIR was ignored"
    root = stage + prefix
    assert os.path.isfile(os.path.join(root, "bin", "sockit"))
    pc = find_pc(root)
    libdir = os.path.dirname(os.path.dirname(pc))
    # Only the static library left: the link must find everything it needs
    # (Requires.private / Libs.private) through pkg-config --static.
    for so in glob.glob(os.path.join(libdir, "libsockit.so*")):
        os.unlink(so)
    env = pc_env(os.path.dirname(pc), sysroot=stage)
    flags = sh("pkg-config --static --cflags --libs sockit", env=env)
    assert "-I%s/include" % root in flags and "-L%s" % libdir in flags
    exe = str(tmp_path / "echo_client_static")
    sh("cc %s -o %s $(pkg-config --static --cflags --libs sockit)" % (PROG, exe), env=env)
    assert "libsockit" not in sh("ldd %s" % exe)
    srv = start_server("--no-auth")
    run_echo(exe, srv.addr)


def test_static_link_beside_the_shared_library(build_dir, tmp_path, start_server):
    """Issue 16 item 16: with libsockit.so and libsockit.a side by side (a
    normal install), `pkg-config --static sockit` still links the shared
    library; the documented `sockit-static` module links the archive."""
    prefix = str(tmp_path / "prefix")
    make_install(build_dir, prefix)
    pc = find_pc(prefix)
    libdir = os.path.dirname(os.path.dirname(pc))
    assert glob.glob(os.path.join(libdir, "libsockit.so*"))
    env = pc_env(os.path.dirname(pc))
    run_env = dict(os.environ, LD_LIBRARY_PATH=libdir)
    exe = str(tmp_path / "echo_client_static")
    sh("cc %s -o %s $(pkg-config --static --cflags --libs sockit-static)" % (PROG, exe), env=env)
    assert "libsockit" not in sh("ldd %s" % exe, env=run_env)
    srv = start_server("--no-auth")
    run_echo(exe, srv.addr, run_env)
    # the trap the docs warn about: --static with the plain module
    trap = str(tmp_path / "echo_client_trap")
    sh("cc %s -o %s $(pkg-config --static --cflags --libs sockit)" % (PROG, trap), env=env)
    assert "libsockit.so" in sh("ldd %s" % trap, env=run_env)


def test_uv_header_users_link_libuv_themselves(build_dir, tmp_path):
    """sockit/uv.h: a program that calls libuv itself names libuv on its own
    link line (libsockit keeps libuv private)."""
    prefix = str(tmp_path / "prefix")
    make_install(build_dir, prefix)
    env = pc_env(os.path.dirname(find_pc(prefix)))
    src = tmp_path / "uvuser.c"
    src.write_text("#include <sockit/sockit.h>\n#include <sockit/uv.h>\n"
                   "int main(void) { return uv_version() == 0; }\n")
    sh("cc -Wall -Werror %s -o %s $(pkg-config --cflags --libs sockit libuv)"
       % (src, tmp_path / "uvuser"), env=env)


def test_completion_scripts_installed(build_dir, tmp_path):
    """Issue 16 item 14: make install puts bash and zsh completion where
    those shells look, generated from the installed command's --help."""
    prefix = str(tmp_path / "prefix")
    make_install(build_dir, prefix)
    bash = os.path.join(prefix, "share", "bash-completion", "completions", "sockit")
    zsh = os.path.join(prefix, "share", "zsh", "site-functions", "_sockit")
    with open(bash) as f:
        text = f.read()
    assert "complete -o default -F _sockit sockit" in text and "--keep-sending" in text
    with open(zsh) as f:
        assert f.read().startswith("#compdef sockit\n")
    assert sh("%s/bin/sockit completion bash" % prefix) == text
