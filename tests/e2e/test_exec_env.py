"""`sockit exec --env NAME=VALUE` reaches the program's environment (SPEC 4.6 "env")."""


def test_env_reaches_the_program(start_server, run_cli, key_file):
    srv = start_server("--key-file", key_file, "--allow-exec")
    r = run_cli("exec", srv.addr, "--key-file", key_file, "--env", "GREETING=hello world",
                "--env", "EMPTY=", "--shell", 'printf "%s|%s|%s" "$GREETING" "${EMPTY-unset}" "$0"')
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello world||/bin/sh"


def test_env_needs_a_name(run_cli, key_file):
    r = run_cli("exec", "127.0.0.1:1", "--key-file", key_file, "--env", "=x", "--", "true")
    assert r.returncode == 2
