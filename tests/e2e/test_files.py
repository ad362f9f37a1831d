"""End-to-end tests of the files service and `sockit put / get / ls`
(SPEC 4.7, issue 4), against the real binary. Hashes are checked
independently with hashlib; the wire is driven with sockit_proto where a test
needs to stop half-way or send something the CLI never would."""

import hashlib
import os
import signal
import stat
import sys

import pytest

import conftest
import sockit_proto as sp
from conftest import wait_for

MiB = 1 << 20
BIG = int(os.environ.get("SOCKIT_E2E_BIG_MB", "200")) * MiB


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MiB), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def write_random(path, n):
    with open(path, "wb") as f:
        left = n
        while left:
            k = min(left, 8 * MiB)
            f.write(os.urandom(k))
            left -= k
    return path


@pytest.fixture
def root(tmp_path):
    d = tmp_path / "root"
    d.mkdir()
    return d


@pytest.fixture
def fsrv(start_server, root):
    return start_server("--no-auth", "--root", str(root))


def raw(srv):
    c = srv.connect()
    c.hello()
    return c


def put_raw(c, name, data, **extra):
    head = {"type": "put", "name": name, "total": len(data), "offset": 0, "hash": "sha256"}
    head.update(extra)
    c.send(head, data[head["offset"]:])


def part_of(root, name):
    d, _, base = name.rpartition("/")
    return root / d / (".%s.sockit-part" % base) if d else root / (".%s.sockit-part" % base)


# ---- round trips -----------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 5 * MiB, BIG], ids=["0B", "1B", "5MiB", "big"])
def test_round_trip(fsrv, root, tmp_path, run_cli, size):
    src = write_random(tmp_path / "src.bin", size)
    want = file_sha256(src)
    r = run_cli("put", fsrv.addr, src, "--no-auth", "--hash", "sha256", timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\t")[2].strip() == want
    assert file_sha256(root / "src.bin") == want
    assert not part_of(root, "src.bin").exists()
    out = tmp_path / "out.bin"
    r = run_cli("get", fsrv.addr, "src.bin", "-o", out, "--no-auth", timeout=120)
    assert r.returncode == 0, r.stderr
    assert file_sha256(out) == want
    assert not (tmp_path / ".out.bin.sockit-part").exists()


@pytest.mark.no_tls
def test_default_hash_is_fastest_and_mode_mtime_kept(fsrv, root, tmp_path, run_cli):
    src = write_random(tmp_path / "m.bin", 3000)
    os.chmod(src, 0o640)
    os.utime(src, (1000000000, 1000000000))
    r = run_cli("put", fsrv.addr, src, "--no-auth")
    assert r.returncode == 0, r.stderr
    c = raw(fsrv)
    assert "sha256" in c.hello_head["hashes"]
    assert r.stdout.split("\t")[2].startswith(c.hello_head["hashes"][0] + ":")
    st = os.stat(root / "m.bin")
    assert stat.S_IMODE(st.st_mode) == 0o640 and int(st.st_mtime) == 1000000000
    head, _ = c.request({"type": "stat", "name": "m.bin", "id": 7})
    assert head == {"type": "stat", "name": "m.bin", "exists": True, "length": 3000,
                    "mode": 0o640, "mtime": 1000000000, "partial": 0, "id": 7}


@pytest.mark.no_tls
def test_get_wire_hash_and_offset(fsrv, root):
    data = os.urandom(100000)
    (root / "w.bin").write_bytes(data)
    c = raw(fsrv)
    head, body = c.request({"type": "get", "name": "w.bin", "offset": 10, "hash": "sha256",
                            "id": "g"})
    assert head["type"] == "file" and head["total"] == 100000 and head["offset"] == 10
    assert head["size"] == 99990 and body == data[10:] and head["id"] == "g"
    end, _ = c.expect("file_end")
    assert end["hash"] == sha256(data) and end["id"] == "g"
    head, body = c.request({"type": "get", "name": "w.bin"})
    assert body == data
    end, _ = c.expect("file_end")
    assert "hash" not in end


@pytest.mark.no_tls
def test_hash_mismatch_publishes_nothing(fsrv, root):
    data = os.urandom(300000)
    c = raw(fsrv)
    put_raw(c, "bad.bin", data)
    c.send({"type": "put_end", "hash": sha256(b"something else")})
    c.expect_error("hash_mismatch")
    assert not (root / "bad.bin").exists()
    assert not part_of(root, "bad.bin").exists()
    c.send({"type": "ping"})
    c.expect("pong")


@pytest.mark.no_tls
def test_put_ok_wire(fsrv, root):
    data = os.urandom(70000)
    c = raw(fsrv)
    put_raw(c, "dir/ok.bin", data, mode=0o600, mtime=1234567890, id=5)
    c.send({"type": "put_end", "hash": sha256(data), "id": 6})
    head, _ = c.expect("put_ok")
    assert head == {"type": "put_ok", "name": "dir/ok.bin", "total": 70000,
                    "hash": sha256(data), "id": 5}
    assert (root / "dir" / "ok.bin").read_bytes() == data
    assert stat.S_IMODE(os.stat(root / "dir" / "ok.bin").st_mode) == 0o600


# ---- hostile names -----------------------------------------------------------

HOSTILE = ["/etc/passwd", "", ".", "..", "../x", "a/../../x", "a/..", "./a", "a/./b", "a//b",
           "a/", "/", "a\x00b", "x" * 4097, "y" * 256, "a/" + "z" * 256,
           ".f.sockit-part", "d/.g.sockit-part"]


@pytest.mark.parametrize("name", HOSTILE, ids=[repr(n)[:24] for n in HOSTILE])
@pytest.mark.no_tls
def test_hostile_names_forbidden(fsrv, root, name):
    c = raw(fsrv)
    put_raw(c, name, b"evil!")
    c.send({"type": "put_end", "hash": sha256(b"evil!")})
    c.expect_error("forbidden")
    for req in ({"type": "get", "name": name}, {"type": "stat", "name": name}):
        c.send(req)
        c.expect_error("forbidden")
    if name:  # an empty list name means the root
        c.send({"type": "list", "name": name})
        c.expect_error("forbidden")
    c.send({"type": "ping"})  # the refused put's put_end drew no answer
    c.expect("pong")
    assert os.listdir(root) == []


@pytest.mark.no_tls
def test_long_names_at_the_limit_work(fsrv, root):
    c = raw(fsrv)
    comp = "n" * 255
    put_raw(c, comp, b"ok")
    c.send({"type": "put_end", "hash": sha256(b"ok")})
    c.expect("put_ok")
    assert (root / comp).read_bytes() == b"ok"
    st, _ = c.request({"type": "stat", "name": comp})
    assert st["exists"] and st["partial"] == 0


@pytest.mark.no_tls
def test_symlink_out_of_root_refused(fsrv, root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    os.symlink(str(outside), str(root / "out"))
    os.symlink(str(outside / "secret"), str(root / "lnk"))
    os.symlink("../outside/secret", str(root / "rel"))
    c = raw(fsrv)
    for name in ("out/secret", "lnk", "rel"):
        c.send({"type": "get", "name": name})
        c.expect_error("forbidden")
    for name in ("out/new", "out/sub/new", "lnk", "rel"):
        put_raw(c, name, b"overwrite")
        c.send({"type": "put_end", "hash": sha256(b"overwrite")})
        c.expect_error("forbidden")
    c.send({"type": "list", "name": "out"})
    c.expect_error("forbidden")
    assert sorted(os.listdir(outside)) == ["secret"]
    assert (outside / "secret").read_bytes() == b"secret"
    assert os.readlink(root / "lnk") == str(outside / "secret")


# ---- resume ----------------------------------------------------------------


def send_half(srv, name, data, half):
    c = raw(srv)
    c.send_raw(sp.frame({"type": "put", "name": name, "total": len(data), "offset": 0,
                         "size": len(data), "hash": "sha256"}, b"", set_size=False))
    c.send_raw(data[:half])
    return c


@pytest.mark.no_tls
def test_resume_after_client_killed(fsrv, root, tmp_path, run_cli):
    data = os.urandom(12 * MiB + 12345)
    src = tmp_path / "r.bin"
    src.write_bytes(data)
    half = 5 * MiB + 777
    c = send_half(fsrv, "r.bin", data, half)
    c.close()  # the client dies mid-body
    c = raw(fsrv)
    assert wait_for(lambda: c.request({"type": "stat", "name": "r.bin"})[0]["partial"] == half, 10)
    st, _ = c.request({"type": "stat", "name": "r.bin"})
    assert st["exists"] is False and st["partial"] == half
    r = run_cli("put", fsrv.addr, src, "--resume", "--hash", "sha256", "--no-auth")
    assert r.returncode == 0, r.stderr
    assert (root / "r.bin").read_bytes() == data
    assert not part_of(root, "r.bin").exists()


@pytest.mark.no_tls
def test_resume_after_server_sigkill(start_server, root, tmp_path, run_cli):
    srv = start_server("--no-auth", "--root", str(root))
    data = os.urandom(9 * MiB + 5)
    src = tmp_path / "k.bin"
    src.write_bytes(data)
    half = 4 * MiB + 3
    c = send_half(srv, "k.bin", data, half)
    part = part_of(root, "k.bin")
    # the server writes in large blocks: what a SIGKILL leaves is a clean prefix
    assert wait_for(lambda: part.exists() and part.stat().st_size >= 3 * MiB, 10)
    srv.kill()
    c.close()
    srv2 = start_server("--no-auth", "--root", str(root))
    st, _ = raw(srv2).request({"type": "stat", "name": "k.bin"})
    assert 3 * MiB <= st["partial"] <= half
    assert part.read_bytes() == data[:st["partial"]]
    r = run_cli("put", srv2.addr, src, "--resume", "--no-auth")
    assert r.returncode == 0, r.stderr
    assert (root / "k.bin").read_bytes() == data


def test_get_resume(fsrv, root, tmp_path, run_cli):
    data = os.urandom(3 * MiB + 1)
    (root / "g.bin").write_bytes(data)
    out = tmp_path / "g.out"
    (tmp_path / ".g.out.sockit-part").write_bytes(data[:MiB])
    r = run_cli("get", fsrv.addr, "g.bin", "-o", out, "--resume", "--no-auth")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == data
    assert not (tmp_path / ".g.out.sockit-part").exists()


@pytest.mark.no_tls
def test_resume_offset_past_part_refused(fsrv, root):
    c = raw(fsrv)
    put_raw(c, "p.bin", b"abcdef", offset=3)
    c.send({"type": "put_end"})
    c.expect_error("bad_request")
    c.send({"type": "ping"})
    c.expect("pong")


# ---- refusals ------------------------------------------------------------------


@pytest.mark.no_tls
def test_exclusive(fsrv, root, tmp_path, run_cli):
    (root / "x.bin").write_bytes(b"old")
    c = raw(fsrv)
    put_raw(c, "x.bin", b"new", exclusive=True)
    c.send({"type": "put_end", "hash": sha256(b"new")})
    c.expect_error("exists")
    c.send({"type": "ping"})
    c.expect("pong")
    assert (root / "x.bin").read_bytes() == b"old"
    src = tmp_path / "x.bin"
    src.write_bytes(b"new")
    r = run_cli("put", fsrv.addr, src, "--exclusive", "--no-auth")
    assert r.returncode == 1 and "exists" in r.stderr
    r = run_cli("put", fsrv.addr, src, "--no-auth")
    assert r.returncode == 0, r.stderr
    assert (root / "x.bin").read_bytes() == b"new"


@pytest.mark.no_tls
def test_concurrent_uploads_of_one_name(fsrv, root):
    a_data, b_data = os.urandom(2 * MiB), os.urandom(2 * MiB)
    a = send_half(fsrv, "same.bin", a_data, MiB)
    # a's part file exists only once its put has claimed the name: without
    # this, b's connection (maybe on the other loop) can be served first
    assert wait_for(lambda: part_of(root, "same.bin").exists(), 10)
    b = raw(fsrv)
    put_raw(b, "same.bin", b_data)
    b.send({"type": "put_end", "hash": sha256(b_data)})
    b.expect_error("busy")
    a.send_raw(a_data[MiB:])
    a.send({"type": "put_end", "hash": sha256(a_data)})
    a.expect("put_ok")
    assert (root / "same.bin").read_bytes() == a_data


@pytest.mark.no_tls
def test_max_file(start_server, root):
    srv = start_server("--no-auth", "--root", str(root), "--max-file", "1000")
    c = raw(srv)
    put_raw(c, "big", os.urandom(2000))
    c.send({"type": "put_end"})
    c.expect_error("too_large")
    put_raw(c, "big", os.urandom(2000), offset=1500)  # body small, total too large
    c.send({"type": "put_end"})
    c.expect_error("too_large")
    put_raw(c, "fits", b"f" * 1000)
    c.send({"type": "put_end", "hash": sha256(b"f" * 1000)})
    c.expect("put_ok")
    assert sorted(os.listdir(root)) == ["fits"]


WRAPPER = """#!%s
import os, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # the server must ignore it itself
resource.setrlimit(resource.RLIMIT_FSIZE, (%d, %d))
os.execv(%r, [%r] + sys.argv[1:])
"""


@pytest.mark.no_tls
def test_write_error_gives_io_error(start_server, root, tmp_path, monkeypatch):
    # RLIMIT_FSIZE on the server: writes past 1 MiB fail with EFBIG (and raise
    # SIGXFSZ, whose default action would kill a server that did not ignore it).
    wrapper = tmp_path / "limited-sockit"
    wrapper.write_text(WRAPPER % (sys.executable, MiB, MiB, conftest.SOCKIT_BIN,
                                  conftest.SOCKIT_BIN))
    wrapper.chmod(0o755)
    monkeypatch.setattr(conftest, "SOCKIT_BIN", str(wrapper))
    srv = start_server("--no-auth", "--root", str(root))
    c = raw(srv)
    data = os.urandom(3 * MiB)
    put_raw(c, "full.bin", data)
    c.send({"type": "put_end", "hash": sha256(data)})
    c.expect_error("io_error")
    assert not (root / "full.bin").exists()
    assert not part_of(root, "full.bin").exists()
    put_raw(c, "small.bin", b"s" * 1000)
    c.send({"type": "put_end", "hash": sha256(b"s" * 1000)})
    c.expect("put_ok")


# ---- listing and trees -------------------------------------------------------


@pytest.mark.no_tls
def test_ls_nested(fsrv, root, run_cli):
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "deep.txt").write_bytes(b"deep")
    (root / "a" / "d.txt").write_bytes(b"12345")
    (root / "top.txt").write_bytes(b"")
    (root / ".top.txt.sockit-part").write_bytes(b"hidden")
    c = raw(fsrv)
    head, _ = c.request({"type": "list"})
    assert [(e["name"], e["type"]) for e in head["entries"]] == [("a", "dir"), ("top.txt", "file")]
    head, _ = c.request({"type": "list", "name": "a", "id": 1})
    assert head["name"] == "a" and head["id"] == 1
    assert [(e["name"], e["type"], e.get("length")) for e in head["entries"]] == [
        ("b", "dir", 0), ("d.txt", "file", 5)]
    assert all(isinstance(e["mtime"], int) and "size" not in e for e in head["entries"])
    head, _ = c.request({"type": "list", "name": "a/b"})
    assert [e["name"] for e in head["entries"]] == ["deep.txt"]
    c.send({"type": "list", "name": "nope"})
    c.expect_error("not_found")
    r = run_cli("ls", fsrv.addr, "a", "--no-auth")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("dir") and lines[0].endswith("b/")
    assert lines[1].startswith("file") and "5 B" in lines[1] and lines[1].endswith("d.txt")


def test_put_recursive_tree_of_100_files(fsrv, root, tmp_path, run_cli):
    tree = tmp_path / "tree"
    want = {}
    for i in range(100):
        rel = "d%d/s%d/f%03d.bin" % (i % 4, i % 3, i) if i % 5 else "f%03d.bin" % i
        p = tree / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom(i * 37)
        p.write_bytes(data)
        want[rel] = sha256(data)
    r = run_cli("put", fsrv.addr, "-r", tree, "--no-auth", "-q", timeout=60)
    assert r.returncode == 0, r.stderr
    for rel, h in want.items():
        assert file_sha256(root / "tree" / rel) == h
    r = run_cli("put", fsrv.addr, tree, "--no-auth")
    assert r.returncode == 1 and "-r" in r.stderr


def test_cli_get_missing_and_put_log(start_server, root, tmp_path, run_cli):
    log = tmp_path / "conn.log"
    srv = start_server("--no-auth", "--root", str(root), "--log", str(log))
    r = run_cli("get", srv.addr, "missing.bin", "-o", tmp_path / "m", "--no-auth")
    assert r.returncode == 1 and "not_found" in r.stderr
    assert not (tmp_path / "m").exists() and not (tmp_path / ".m.sockit-part").exists()
    src = tmp_path / "l.bin"
    src.write_bytes(b"logged")
    assert run_cli("put", srv.addr, src, "--no-auth").returncode == 0
    assert wait_for(lambda: "l.bin" in log.read_text(), 10)
    text = log.read_text()
    assert "put" in text and "result" in text and "missing.bin" in text


def test_root_made_only_by_a_service_that_keeps_files(start_server, key_file, tmp_path):
    """The file root belongs to the services that keep files there (files,
    exec's working directory, the seed put): a server serving none of them
    leaves the disk alone; one serving files makes it before it listens."""
    untouched = tmp_path / "untouched"
    start_server("--key-file", key_file, "--services", "echo,time,chat", "--root", str(untouched))
    assert not untouched.exists()
    made = tmp_path / "made" / "files"
    start_server("--key-file", key_file, "--services", "echo,files", "--root", str(made))
    assert made.is_dir() and (made.stat().st_mode & 0o777) == 0o700
