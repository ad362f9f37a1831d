"""`sockit get NAME -o PATH` as cp and curl write files (issue 16, items 1-2):
the whole matrix of local paths, run as root in a temp dir with its own
symlink, FIFO, folder, and /dev/null as a device. Nothing the user had is
replaced by a regular file, and no part file is ever left beside a path that
was refused."""

import os
import socket
import stat
import subprocess
import threading

import pytest

import conftest
import sockit_proto as sp
from test_files import fsrv  # noqa: F401 (fixture, on this file's root)

DATA = os.urandom(300000)


@pytest.fixture
def root(tmp_path):
    d = tmp_path / "root"
    d.mkdir()
    (d / "f.bin").write_bytes(DATA)
    (d / "sub").mkdir()
    (d / "sub" / "g.txt").write_bytes(b"in a folder\n")
    return d


@pytest.fixture
def local(tmp_path):
    d = tmp_path / "local"
    d.mkdir()
    return d


@pytest.fixture
def get(sockit_bin, env, fsrv, local):
    """get(*args) runs `sockit get ADDR ... --no-auth` in the local folder,
    stdout as bytes."""

    def run(*args, input=None):
        r = subprocess.run([sockit_bin, "get", fsrv.addr] + [str(a) for a in args] + ["--no-auth"],
                           env=env.make(), cwd=str(local), capture_output=True, timeout=30,
                           input=input)
        err = r.stderr.decode("utf-8", "replace")
        assert not conftest.sanitizer_report(err), err
        return r.returncode, r.stdout, err

    return run


def parts(*dirs):
    """Every part file left in the given folders."""
    found = []
    for d in dirs:
        for dirpath, _, files in os.walk(str(d)):
            found += [os.path.join(dirpath, f) for f in files if f.endswith(".sockit-part")]
    return found


def test_dash_streams_to_stdout(get, local):
    code, out, err = get("f.bin", "-o", "-")
    assert code == 0, err
    assert out == DATA
    assert os.listdir(str(local)) == []  # no file named "-"


def test_dev_stdout_is_written_through_not_replaced(get, local):
    """Our own copy of the /dev/stdout link (a test must never risk the
    system's: an old binary replaced it with a regular file)."""
    os.symlink("/proc/self/fd/1", str(local / "stdout"))
    code, out, err = get("f.bin", "-o", local / "stdout")
    assert code == 0, err
    assert out == DATA
    assert os.readlink(str(local / "stdout")) == "/proc/self/fd/1"
    assert parts(local) == []
    code, out, err = get("f.bin", "-o", "/proc/self/fd/1")
    assert code == 0, err
    assert out == DATA


def test_char_device_is_written_through(get, local):
    """A node of /dev/null's numbers made in the temp dir, not /dev/null
    itself, for the same reason."""
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    dev = local / "null"
    os.mknod(str(dev), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    code, out, err = get("f.bin", "-o", dev)
    assert code == 0, err
    st = os.lstat(str(dev))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert parts(local) == []
    assert out.decode().split("\t")[0] == str(dev)


def test_symlink_is_followed_to_its_target(get, local):
    target = local / "real.bin"
    target.write_bytes(b"old")
    os.symlink("real.bin", str(local / "link"))
    code, _, err = get("f.bin", "-o", local / "link")
    assert code == 0, err
    assert os.path.islink(str(local / "link"))
    assert os.readlink(str(local / "link")) == "real.bin"
    assert target.read_bytes() == DATA
    assert parts(local) == []


def test_dangling_symlink_creates_its_target(get, local):
    (local / "d").mkdir()
    os.symlink("d/new.bin", str(local / "dangling"))
    code, out, err = get("f.bin", "-o", "dangling")
    assert code == 0, err
    assert os.path.islink(str(local / "dangling"))
    assert (local / "d" / "new.bin").read_bytes() == DATA
    assert out.decode().split("\t")[0] == "d/new.bin"


def test_fifo_is_written_through_in_order(get, local):
    fifo = local / "fifo"
    os.mkfifo(str(fifo))
    got = []

    def reader():
        with open(str(fifo), "rb") as f:
            got.append(f.read())

    t = threading.Thread(target=reader)
    t.start()
    code, _, err = get("f.bin", "-o", fifo)
    t.join(timeout=10)
    assert code == 0, err
    assert got == [DATA]
    assert stat.S_ISFIFO(os.lstat(str(fifo)).st_mode)
    assert parts(local) == []


def test_fifo_refuses_resume_and_names_the_path(get, local):
    fifo = local / "fifo"
    os.mkfifo(str(fifo))
    code, _, err = get("f.bin", "-o", fifo, "--resume")
    assert code == 1
    assert str(fifo) in err and "--resume" in err
    assert stat.S_ISFIFO(os.lstat(str(fifo)).st_mode)
    assert parts(local) == []


def test_regular_file_is_replaced_through_a_part_file(get, local):
    (local / "old.bin").write_bytes(b"old contents")
    code, out, err = get("f.bin", "-o", "old.bin")
    assert code == 0, err
    assert (local / "old.bin").read_bytes() == DATA
    assert out.decode().split("\t")[:2] == ["old.bin", str(len(DATA))]
    assert parts(local) == []


def test_new_name_and_default_name(get, local):
    code, _, err = get("f.bin", "-o", "new.bin")
    assert code == 0, err
    code, _, err = get("sub/g.txt")
    assert code == 0, err
    assert (local / "new.bin").read_bytes() == DATA
    assert (local / "g.txt").read_bytes() == b"in a folder\n"
    assert parts(local) == []


@pytest.mark.parametrize("spelling", ["dir", "dir/", "dirlink", "dirlink/"])
def test_folder_means_into_it(get, local, spelling):
    (local / "dir").mkdir()
    os.symlink("dir", str(local / "dirlink"))
    code, out, err = get("sub/g.txt", "-o", spelling)
    assert code == 0, err
    assert (local / "dir" / "g.txt").read_bytes() == b"in a folder\n"
    assert out.decode().split("\t")[0] == spelling.rstrip("/") + "/g.txt"
    assert os.path.islink(str(local / "dirlink"))


def test_several_names_into_a_folder(get, local):
    (local / "dir").mkdir()
    code, _, err = get("f.bin", "sub/g.txt", "-o", "dir/")
    assert code == 0, err
    assert sorted(os.listdir(str(local / "dir"))) == ["f.bin", "g.txt"]
    code, _, err = get("f.bin", "sub/g.txt", "-o", "one.bin")
    assert code == 2 and "-o DIR/" in err


def test_missing_folder_refused_naming_it_and_no_junk(get, local):
    code, _, err = get("f.bin", "-o", "nodir/")
    assert code == 1
    assert "nodir/" in err and "f.bin" not in err.replace("nodir/", ""), err
    code, _, err = get("f.bin", "-o", "nodir/x.bin")
    assert code == 1
    assert "nodir/x.bin" in err, err
    (local / "plain").write_bytes(b"a file")
    code, _, err = get("f.bin", "-o", "plain/")
    assert code == 1 and "plain/" in err, err
    assert sorted(os.listdir(str(local))) == ["plain"]


def test_existing_folder_in_the_way_refused(get, local):
    (local / "dir").mkdir()
    (local / "dir" / "f.bin").mkdir()
    code, _, err = get("f.bin", "-o", "dir")
    assert code == 1 and "dir/f.bin" in err, err
    assert parts(local) == []


def test_remote_refusal_leaves_no_part_file(get, local):
    code, _, err = get("nope.bin", "-o", "x.bin")
    assert code == 1 and "nope.bin" in err and "not_found" in err, err
    assert os.listdir(str(local)) == []


# ---- a wrong hash: a server that lies about the bytes ----------------------


class FakeFilesServer:
    """A files server that lies: one --no-auth connection, each request
    handed to answer(client, head) (sockit_proto frames)."""

    def __init__(self, answer):
        self.answer = answer
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4)
        self.addr = "127.0.0.1:%d" % self.lsock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        s, _ = self.lsock.accept()
        c = sp.Client(s, timeout=10)
        try:
            c.send({"type": "hello", "proto": "sockit/1", "server": "liar", "auth": "none",
                    "services": ["files"], "hashes": ["sha256"]})
            while True:
                head, _ = c.recv_frame()
                self.answer(c, head)
        except sp.ProtoError:
            pass
        finally:
            c.close()


def wrong_hash(c, head):
    """DATA, but file_end's hash is of other bytes."""
    c.send({"type": "file", "name": head["name"], "total": len(DATA), "offset": 0,
            "mode": 420, "mtime": 1}, DATA)
    c.send({"type": "file_end", "hash": conftest.sha256(b"other bytes")})


@pytest.mark.no_tls
def test_dash_reports_a_bad_hash_after_the_bytes(sockit_bin, env, tmp_path):
    liar = FakeFilesServer(wrong_hash)
    r = subprocess.run([sockit_bin, "get", liar.addr, "f.bin", "-o", "-", "--no-auth",
                        "--hash", "sha256"], env=env.make(), cwd=str(tmp_path),
                       capture_output=True, timeout=30)
    assert r.returncode == 1
    assert r.stdout == DATA
    assert b"standard output" in r.stderr and b"hash" in r.stderr
