/* fuzz_svc_exec.c - the exec service's handlers (exec, stdin, signal) with
 * random well-formed heads: see fuzz_service.h. No program runs: the
 * driver removes the working folder, so every spawn fails in the child
 * before its exec and is answered as `not_started` (code 127). */
static const char *const fz_types[] = {"exec", "stdin", "signal"};
static const char *const fz_members[] = {"argv", "shell", "stdin",  "timeout",
                                         "env",  "eof",   "signal", "id"};
static const char *const fz_strings[] = {
    "true",     "sh", "INT", "TERM", "KILL", "HUP", "PATH", "", "echo hi", "a=b", "SOCKIT_KEY_FILE",
    "x\\u0000y"};
#define FZ_SERVICE "echo,exec"
#define FZ_ALLOW_EXEC 1
#include "fuzz_service.h"
