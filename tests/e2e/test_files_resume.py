"""Resuming transfers as rsync and croc users expect (issue 16 item 11): a
resume of a file the server has complete sends nothing; a plain put over an
interrupted one suggests --resume; Ctrl-C prints the command that resumes;
a resume right after a killed client is not refused with `busy`."""

import os
import shlex
import signal
import socket
import struct
import subprocess


import conftest
from test_files import file_sha256, fsrv, raw, root, write_random  # noqa: F401 (fixtures)

MiB = 1 << 20
BIG = 128 * MiB


def size_of(path):
    try:
        return os.stat(str(path)).st_size
    except FileNotFoundError:
        return -1


def hint_of(stderr, sockit_bin):
    """The resume command printed on an interrupt, as argv."""
    lines = [l for l in stderr.splitlines() if "resume with: " in l]
    assert len(lines) == 1, stderr
    argv = shlex.split(lines[0].split("resume with: ", 1)[1])
    assert argv[0] == "sockit" and "--resume" in argv, argv
    return [sockit_bin] + argv[1:]


def test_resume_of_a_complete_identical_file_sends_nothing(fsrv, root, tmp_path, run_cli):
    src = write_random(tmp_path / "same.bin", 3 * MiB)
    r = run_cli("put", fsrv.addr, src, "--no-auth")
    assert r.returncode == 0, r.stderr
    ino = os.stat(str(root / "same.bin")).st_ino
    r = run_cli("put", fsrv.addr, src, "--no-auth", "--resume")
    assert r.returncode == 0, r.stderr
    assert "already" in r.stderr and "nothing sent" in r.stderr, r.stderr
    assert os.stat(str(root / "same.bin")).st_ino == ino  # nothing published again
    name, total, hsh = r.stdout.strip().split("\t")
    assert (name, int(total)) == ("same.bin", 3 * MiB) and ":" in hsh
    # same length, other bytes: sent again
    write_random(src, 3 * MiB)
    r = run_cli("put", fsrv.addr, src, "--no-auth", "--resume")
    assert r.returncode == 0, r.stderr
    assert "nothing sent" not in r.stderr
    assert file_sha256(root / "same.bin") == file_sha256(src)


def test_plain_put_over_a_part_file_suggests_resume(fsrv, root, tmp_path, run_cli):
    src = write_random(tmp_path / "big.bin", 3 * MiB)
    with open(str(src), "rb") as f:
        (root / ".big.bin.sockit-part").write_bytes(f.read(MiB))
    r = run_cli("put", fsrv.addr, src, "--no-auth")
    assert r.returncode == 0, r.stderr
    assert "--resume" in r.stderr and "interrupted upload" in r.stderr, r.stderr
    assert file_sha256(root / "big.bin") == file_sha256(src)


def start_put(sockit_bin, env, fsrv, src):
    return subprocess.Popen([sockit_bin, "put", fsrv.addr, str(src), "--no-auth"],
                            env=env.make(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def stop_mid_upload(fsrv, root, name, proc):
    """Freeze the server once the upload's part file exists, so the client
    blocks in the middle of sending."""
    part = root / (".%s.sockit-part" % name)
    assert conftest.wait_for(lambda: size_of(part) >= 0 or proc.poll() is not None,
                             timeout=10, step=0.002)
    assert proc.poll() is None, proc.communicate()
    os.kill(fsrv.proc.pid, signal.SIGSTOP)


def interrupt_put(sockit_bin, env, fsrv, root, src):
    """Ctrl-C a put in the middle of sending; its stderr."""
    proc = start_put(sockit_bin, env, fsrv, src)
    try:
        stop_mid_upload(fsrv, root, os.path.basename(str(src)), proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        os.kill(fsrv.proc.pid, signal.SIGCONT)
    assert proc.returncode == -signal.SIGINT
    return err


def test_ctrl_c_during_put_prints_the_resume_command(fsrv, root, tmp_path, sockit_bin, env):
    src = write_random(tmp_path / "big.bin", BIG)
    err = interrupt_put(sockit_bin, env, fsrv, root, src)
    argv = hint_of(err, sockit_bin)  # the command as typed (options first), and --resume
    assert argv[1:] == ["put", "--no-auth", fsrv.addr, str(src), "--resume"]
    r = subprocess.run(argv, env=env.make(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert file_sha256(root / "big.bin") == file_sha256(src)


def test_resume_right_after_a_killed_client_is_not_busy(fsrv, root, tmp_path, sockit_bin,
                                                        env):
    """kill -9 while the server is still reading the dead client's bytes; the
    resume starts at once and must succeed (the client waits for the name,
    saying so) instead of failing with busy."""
    src = write_random(tmp_path / "big.bin", BIG)
    proc = start_put(sockit_bin, env, fsrv, src)
    try:
        stop_mid_upload(fsrv, root, "big.bin", proc)
        proc.kill()
        proc.communicate(timeout=10)
        resume = subprocess.Popen([sockit_bin, "put", fsrv.addr, str(src), "--no-auth",
                                   "--resume"], env=env.make(), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
    finally:
        os.kill(fsrv.proc.pid, signal.SIGCONT)
    out, err = resume.communicate(timeout=60)
    assert resume.returncode == 0, err
    assert "busy" not in err
    assert file_sha256(root / "big.bin") == file_sha256(src)


def test_resume_waits_for_the_name_a_dead_upload_still_holds(fsrv, root, tmp_path, sockit_bin,
                                                              env):
    """The server still holds the name for an upload whose client is gone
    but whose connection it has not seen end: the resume says it waits, and
    succeeds as soon as the name is let go (it failed at once with busy).
    Deterministic where the test above depends on timing."""
    src = write_random(tmp_path / "held.bin", MiB)
    with open(str(src), "rb") as f:
        head = f.read(1000)
    holder = raw(fsrv)
    holder.send({"type": "put", "name": "held.bin", "total": MiB, "offset": 0, "size": MiB},
                head, set_size=False)
    assert conftest.wait_for(lambda: size_of(root / ".held.bin.sockit-part") >= 0)
    proc = subprocess.Popen([sockit_bin, "put", fsrv.addr, str(src), "--no-auth", "--resume"],
                            env=env.make(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err = conftest.Output(proc.stderr)
    try:
        assert err.wait("still open on the server", 10), err.data()
        assert proc.poll() is None, err.data()
        # the holder's end comes now, as a killed client's kernel resets it
        holder.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        holder.close()
        assert proc.wait(30) == 0, err.data()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert b"busy" not in err.all()
    assert file_sha256(root / "held.bin") == file_sha256(src)


def test_ctrl_c_during_get_prints_the_resume_command(fsrv, root, tmp_path, sockit_bin, env):
    write_random(root / "big.bin", BIG)
    out = tmp_path / "out.bin"
    (root / "small.bin").write_bytes(b"s" * 1000)
    proc = subprocess.Popen([sockit_bin, "get", fsrv.addr, "small.bin", "big.bin", "-o",
                             str(tmp_path) + "/", "--no-auth", "--hash", "sha256"],
                            env=env.make(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    out = tmp_path / "big.bin"
    part = tmp_path / ".big.bin.sockit-part"
    try:
        assert conftest.wait_for(lambda: size_of(part) > 0 or proc.poll() is not None,
                                 timeout=10, step=0.002)
        assert proc.poll() is None, proc.communicate()
        os.kill(fsrv.proc.pid, signal.SIGSTOP)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        os.kill(fsrv.proc.pid, signal.SIGCONT)
    assert proc.returncode == -signal.SIGINT
    argv = hint_of(err, sockit_bin)
    assert argv[1:] == ["get", "-o", str(tmp_path) + "/", "--no-auth", "--hash", "sha256",
                        fsrv.addr, "small.bin", "big.bin", "--resume"]
    assert 0 < size_of(part) < BIG
    small_ino = os.stat(str(tmp_path / "small.bin")).st_ino
    r = subprocess.run(argv, env=env.make(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "small.bin: " in r.stderr and "nothing fetched" in r.stderr, r.stderr
    assert os.stat(str(tmp_path / "small.bin")).st_ino == small_ino
    assert file_sha256(out) == file_sha256(root / "big.bin")
    assert size_of(part) == -1


def test_resume_hint_quotes_for_the_shell(fsrv, root, tmp_path, sockit_bin, env):
    src = write_random(tmp_path / "it's big.bin", BIG)
    err = interrupt_put(sockit_bin, env, fsrv, root, src)
    argv = hint_of(err, sockit_bin)
    assert argv[4] == str(src)
