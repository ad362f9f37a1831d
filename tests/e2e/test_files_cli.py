"""The file commands as rsync/scp users expect them (issue 16 items 12-13,
issue 15 item 5 for names): `rm` (and its wire request), `get -r`,
`put a b c --as dir/`, empty folders in `put -r`, `ls` with every entry type,
-l/--bytes and messages naming the path, and `--json` on ls/put/get."""

import json
import os
import time

import pytest

import conftest
from test_files import fsrv, raw, root  # noqa: F401 (fixtures)
from test_get_output import FakeFilesServer


@pytest.fixture
def cli(run_cli, fsrv):
    def run(cmd, *args, **kw):
        return run_cli(cmd, fsrv.addr, *args, "--no-auth", **kw)
    return run


def tree_of(d):
    """{relative path: bytes or None for a folder} of everything under d."""
    out = {}
    for dirpath, dirs, files in os.walk(str(d)):
        rel = os.path.relpath(dirpath, str(d))
        for name in dirs:
            out[os.path.normpath(os.path.join(rel, name))] = None
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as f:
                out[os.path.normpath(os.path.join(rel, name))] = f.read()
    return out


def make_tree(d):
    (d / "sub" / "deeper").mkdir(parents=True)
    (d / "empty").mkdir()
    (d / "sub" / "empty2").mkdir()
    (d / "a.txt").write_bytes(b"alpha\n")
    (d / "sub" / "b.bin").write_bytes(os.urandom(70000))
    (d / "sub" / "deeper" / "c.txt").write_bytes(b"")
    return d


# ---- rm: the wire request ----------------------------------------------------


def test_rm_wire(fsrv, root):
    (root / "f.txt").write_bytes(b"x")
    (root / "d" / "e").mkdir(parents=True)
    (root / "d" / "e" / "g").write_bytes(b"y")
    c = raw(fsrv)
    head, _ = c.request({"type": "rm", "name": "f.txt", "id": 1})
    assert head == {"type": "rm_ok", "name": "f.txt", "id": 1}
    assert not (root / "f.txt").exists()
    head, _ = c.request({"type": "rm", "name": "f.txt"})
    assert head["type"] == "error" and head["code"] == "not_found"
    head, _ = c.request({"type": "rm", "name": "d"})
    assert head["type"] == "error" and head["code"] == "bad_request"
    assert "recursive" in head["message"]
    assert (root / "d" / "e" / "g").exists()
    head, _ = c.request({"type": "rm", "name": "d", "recursive": True})
    assert head == {"type": "rm_ok", "name": "d"}
    assert os.listdir(str(root)) == []
    for bad in ("../x", "/etc", "a/../b", ".x.sockit-part", ""):
        head, _ = c.request({"type": "rm", "name": bad, "recursive": True})
        assert head["type"] == "error" and head["code"] == "forbidden", (bad, head)


def test_rm_never_leaves_the_root(fsrv, root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_bytes(b"keep")
    os.symlink(str(outside), str(root / "out"))
    os.symlink(str(outside / "keep.txt"), str(root / "flink"))
    c = raw(fsrv)
    head, _ = c.request({"type": "rm", "name": "out/keep.txt"})
    assert head["type"] == "error" and head["code"] == "forbidden", head
    head, _ = c.request({"type": "rm", "name": "out", "recursive": True})
    assert head["type"] == "rm_ok"  # the link itself, never what it names
    head, _ = c.request({"type": "rm", "name": "flink"})
    assert head["type"] == "rm_ok"
    assert (outside / "keep.txt").read_bytes() == b"keep"
    assert os.listdir(str(root)) == []
    # a tree holding a link out: the link goes, the outside stays
    (root / "t").mkdir()
    os.symlink(str(outside), str(root / "t" / "l"))
    head, _ = c.request({"type": "rm", "name": "t", "recursive": True})
    assert head["type"] == "rm_ok"
    assert (outside / "keep.txt").read_bytes() == b"keep"


def test_rm_during_upload_is_busy_and_removes_part_files(fsrv, root):
    c = raw(fsrv)
    c.send({"type": "put", "name": "up.bin", "total": 10, "offset": 0, "size": 10}, b"abcd",
           set_size=False)
    # not finished: the name is claimed while the body is owed
    conftest.wait_for(lambda: (root / ".up.bin.sockit-part").exists())
    other = raw(fsrv)
    head, _ = other.request({"type": "rm", "name": "up.bin"})
    assert head["type"] == "error" and head["code"] == "busy", head
    c.close()
    # once the upload is dropped its part file is what rm removes
    def rm_ok():
        h, _ = other.request({"type": "rm", "name": "up.bin"})
        return h["type"] == "rm_ok"
    assert conftest.wait_for(rm_ok, timeout=10)
    assert not (root / ".up.bin.sockit-part").exists()


def test_mkdir_wire(fsrv, root):
    (root / "file").write_bytes(b"x")
    c = raw(fsrv)
    head, _ = c.request({"type": "mkdir", "name": "a/b/c"})
    assert head == {"type": "mkdir_ok", "name": "a/b/c"}
    assert (root / "a" / "b" / "c").is_dir()
    head, _ = c.request({"type": "mkdir", "name": "a/b/c"})
    assert head["type"] == "mkdir_ok"  # there already: fine
    head, _ = c.request({"type": "mkdir", "name": "file"})
    assert head["type"] == "error" and head["code"] == "exists"
    head, _ = c.request({"type": "mkdir", "name": "../up"})
    assert head["type"] == "error" and head["code"] == "forbidden"


# ---- rm: the command -------------------------------------------------------


def test_rm_command(fsrv, root, cli):
    (root / "f.txt").write_bytes(b"x")
    (root / "d").mkdir()
    (root / "d" / "g").write_bytes(b"y")
    (root / ".p.bin.sockit-part").write_bytes(b"half")
    r = cli("rm", "f.txt")
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r
    r = cli("rm", "f.txt")
    assert r.returncode == 1 and r.stderr == "sockit rm: f.txt: not found\n"
    r = cli("rm", "d")
    assert r.returncode == 1
    assert r.stderr == "sockit rm: d is a folder: add -r to remove it and everything in it\n"
    r = cli("rm", "d", "p.bin", "-r")
    assert r.returncode == 0, r.stderr
    assert os.listdir(str(root)) == []
    r = cli("rm", "../etc/passwd")
    assert r.returncode == 1 and "forbidden" in r.stderr
    (root / "j.txt").write_bytes(b"j")
    r = cli("rm", "j.txt", "nope.txt", "--json")
    assert r.returncode == 1
    assert [json.loads(ln) for ln in r.stdout.splitlines()] == [
        {"name": "j.txt", "ok": True, "removed": True},
        {"name": "nope.txt", "ok": False, "error": "not_found", "message": "not found"}]


# ---- put: several files into a folder, empty folders -------------------------


def test_put_several_files_as_a_folder(fsrv, root, tmp_path, cli):
    for n in ("a", "b", "c"):
        (tmp_path / n).write_bytes(n.encode() * 3)
    r = cli("put", tmp_path / "a", tmp_path / "b", tmp_path / "c", "--as", "in/box/")
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(str(root / "in" / "box"))) == ["a", "b", "c"]
    assert (root / "in" / "box" / "b").read_bytes() == b"bbb"
    r = cli("put", tmp_path / "a", tmp_path / "b", "--as", "plain")
    assert r.returncode == 2 and "--as DIR/" in r.stderr


def test_put_r_sends_empty_folders(fsrv, root, tmp_path, cli):
    src = make_tree(tmp_path / "tree")
    r = cli("put", "-r", src)
    assert r.returncode == 0, r.stderr
    assert tree_of(root / "tree") == tree_of(src)
    assert (root / "tree" / "empty").is_dir() and (root / "tree" / "sub" / "empty2").is_dir()
    (tmp_path / "bare").mkdir()
    r = cli("put", "-r", tmp_path / "bare", "--as", "x/bare")
    assert r.returncode == 0, r.stderr
    assert (root / "x" / "bare").is_dir()


# ---- get -r ------------------------------------------------------------------


def test_get_r_mirrors_put_r(fsrv, root, tmp_path, cli):
    src = make_tree(tmp_path / "tree")
    assert cli("put", "-r", src).returncode == 0
    os.symlink("/etc", str(root / "tree" / "link"))
    os.mkfifo(str(root / "tree" / "fifo"))
    work = tmp_path / "work"
    work.mkdir()
    r = cli("get", "-r", "tree", "-o", work / "copy")
    assert r.returncode == 0, r.stderr
    assert tree_of(work / "copy") == tree_of(src)
    assert "link" in r.stderr and "fifo" in r.stderr  # said, not fetched
    r = cli("get", "-r", "tree/", "-o", str(work) + "/")
    assert r.returncode == 0, r.stderr
    assert tree_of(work / "tree") == tree_of(src)
    r = cli("get", "-r", "nope", "-o", work / "n")
    assert r.returncode == 1 and "nope: not found" in r.stderr
    # a folder without -r: said as put says it (it was the server's "use list")
    r = cli("get", "tree", "-o", work / "plain")
    assert r.returncode == 1
    assert r.stderr == "sockit get: tree is a folder: add -r to fetch it with everything in it\n"
    assert not (work / "plain").exists()


class ListingLiar(FakeFilesServer):
    """A server whose listing holds names that climb out of the folder."""

    def __init__(self):
        self.gets = []
        super().__init__(self.reply)

    def reply(self, c, head):
        if head["type"] == "list":
            entries = [{"name": n, "type": "file", "length": 1, "mtime": 1}
                       for n in ("../evil", "a/b", "..", ".", "")]
            entries.append({"name": "sub", "type": "dir", "length": 0, "mtime": 1})
            if head["name"] == "d/sub":
                entries = []
            c.send({"type": "list", "name": head["name"], "entries": entries})
        elif head["type"] == "get":
            self.gets.append(head["name"])
            c.send({"type": "error", "code": "not_found", "message": "no"})


def test_get_r_refuses_names_that_climb_out(sockit_bin, env, tmp_path):
    liar = ListingLiar()
    work = tmp_path / "w"
    work.mkdir()
    r = conftest.subprocess.run(
        [sockit_bin, "get", liar.addr, "-r", "d", "--no-auth"], env=env.make(),
        cwd=str(work), capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert liar.gets == []
    assert tree_of(work) == {"d": None, "d/sub": None}
    assert not (tmp_path / "evil").exists()
    assert r.stderr.count("skipped") == 5, r.stderr


# ---- ls ----------------------------------------------------------------------


def test_ls_shows_every_entry_type(fsrv, root, cli):
    (root / "a.txt").write_bytes(b"x" * 1234567)
    os.utime(str(root / "a.txt"), (1700000000, 1700000042))
    (root / "d").mkdir()
    os.symlink("a.txt", str(root / "link"))
    os.mkfifo(str(root / "fifo"))
    (root / ".new.bin.sockit-part").write_bytes(b"y" * 5000)
    (root / ".a.txt.sockit-part").write_bytes(b"z" * 300)
    r = cli("ls")
    assert r.returncode == 0, r.stderr
    rows = {line.split()[-1] if "uploading" not in line else line.split()[5]: line.split()[0]
            for line in r.stdout.splitlines()}
    assert rows == {"a.txt": "file", "d/": "dir", "link": "link", "fifo": "other",
                    "new.bin": "partial"}
    assert "(uploading: 300 B so far)" in r.stdout
    r = cli("ls", "-l")
    line = [l for l in r.stdout.splitlines() if "a.txt" in l][0]
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(1700000042))
    assert line.split()[:4] == ["file", "1234567", when.split()[0], when.split()[1]], line
    assert line.endswith("a.txt  (uploading: 300 so far)")
    r = cli("ls", "--bytes")
    line = [l for l in r.stdout.splitlines() if "new.bin" in l][0]
    assert line.split()[:2] == ["partial", "5000"]
    assert len(line.split()[3]) == 5  # minutes without -l


def test_ls_messages_name_the_path(fsrv, root, cli):
    (root / "old.txt").write_bytes(b"x")
    r = cli("ls", "nope")
    assert r.returncode == 1 and r.stderr == "sockit ls: nope: not found\n"
    r = cli("ls", "old.txt")
    assert r.returncode == 1 and r.stderr.startswith("sockit ls: old.txt is a file"), r.stderr
    (root / "d").mkdir()
    (root / "d" / "in").write_bytes(b"1")
    r = cli("ls", "d/")
    assert r.returncode == 0 and r.stdout.split()[-1] == "in"


def test_ls_escapes_hostile_names(fsrv, root, cli):
    evil = "evil\x1b]0;pwned\x07\u202e.txt"
    (root / evil).write_bytes(b"x")
    (root / "line\nforged").write_bytes(b"x")
    r = cli("ls")
    assert r.returncode == 0
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout and "\u202e" not in r.stdout
    assert "evil\\x1b]0;pwned\\x07\\u202e.txt" in r.stdout
    assert len(r.stdout.splitlines()) == 2 and "line\\nforged" in r.stdout
    # --json carries the real names, with DEL, C1 and bidi spelled \uXXXX
    # (the JSON encoder left U+202E and U+009B raw for the terminal)
    (root / "c1\u009b2J\x7f").write_bytes(b"x")
    r = cli("ls", "--json")
    for raw in ("\x1b", "\x07", "\u202e", "\u009b", "\x7f"):
        assert raw not in r.stdout, (raw, r.stdout)
    assert "\\u202e" in r.stdout and "\\u009b" in r.stdout and "\\u007f" in r.stdout
    names = sorted(json.loads(l)["name"] for l in r.stdout.splitlines())
    assert names == sorted([evil, "line\nforged", "c1\u009b2J\x7f"])


# ---- --json on ls, put, get ----------------------------------------------------


def test_json_ls_put_get(fsrv, root, tmp_path, cli):
    src = tmp_path / "j.bin"
    src.write_bytes(b"j" * 4096)
    os.utime(str(src), (1600000000, 1600000000))
    r = cli("put", src, tmp_path / "missing", "--json", "--hash", "sha256")
    assert r.returncode == 1
    objs = [json.loads(l) for l in r.stdout.splitlines()]
    assert objs[0] == {"name": "j.bin", "path": str(src), "ok": True, "total": 4096,
                       "offset": 0, "sent": 4096, "hash": conftest.sha256(b"j" * 4096),
                       "unchanged": False}
    assert objs[1]["ok"] is False and objs[1]["error"] == "local" and objs[1]["name"] == "missing"
    r = cli("put", src, "--json", "--resume", "--hash", "sha256")
    assert json.loads(r.stdout)["unchanged"] is True and json.loads(r.stdout)["sent"] == 0
    r = cli("ls", "--json")
    assert [json.loads(l) for l in r.stdout.splitlines()] == [
        {"name": "j.bin", "type": "file", "length": 4096, "mtime": 1600000000}]
    out = tmp_path / "o.bin"
    r = cli("get", "j.bin", "nope", "-o", str(tmp_path) + "/", "--json", "--hash", "sha256")
    assert r.returncode == 1
    objs = [json.loads(l) for l in r.stdout.splitlines()]
    assert objs[0] == {"name": "j.bin", "path": str(tmp_path) + "/j.bin", "ok": True,
                       "total": 4096, "offset": 0, "received": 4096,
                       "hash": conftest.sha256(b"j" * 4096), "unchanged": False}
    assert objs[1]["ok"] is False and objs[1]["error"] == "not_found"
    assert not out.exists()


def test_get_put_messages_escape_names(fsrv, root, tmp_path, cli):
    evil = "x\x1b[2J\u202e"
    r = cli("get", evil, "-o", tmp_path / "o")
    assert r.returncode == 1
    assert "\x1b" not in r.stderr and "\u202e" not in r.stderr
    assert "x\\x1b[2J\\u202e: server said not_found" in r.stderr, r.stderr
    (tmp_path / evil).write_bytes(b"1")
    r = cli("put", tmp_path / evil, "--as", "ok.txt", "--exclusive")
    assert r.returncode == 0, r.stderr
    r = cli("put", tmp_path / evil, "--as", "ok.txt", "--exclusive")
    assert r.returncode == 1 and "\x1b" not in r.stderr and "exists" in r.stderr
    r = cli("put", tmp_path / evil)
    assert r.returncode == 0 and "\x1b" not in r.stdout
    assert r.stdout.startswith("x\\x1b[2J\\u202e\t1\t")
