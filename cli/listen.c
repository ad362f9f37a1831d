/* listen.c - `sockit listen [-u] [-k] [ADDR]`: the tutorial's first server,
 * as a raw byte pipe between one client and stdin/stdout (see pipe.c). */
#include "cli.h"
#include "pipe.h"

static const char listen_help[] =
    "usage: sockit listen [-u] [-v] [-k | --keep-sending] [--idle-timeout S] [ADDR | HOST PORT]\n"
    "Wait for a client on ADDR (default 127.0.0.1:8080; HOST:PORT, [IPv6]:PORT,\n"
    ":PORT, PORT or unix:/path) and pass raw bytes both ways: the client's to\n"
    "stdout, stdin's to the client. stdin's EOF half-closes the connection. When\n"
    "the client closes its side, everything received is written out and listen\n"
    "exits 0, even while stdin is still open. Prints `sockit: listening on ADDR`\n"
    "once bound.\n\n"
    "  -u                 UDP (or a Unix datagram socket): print every datagram;\n"
    "                     each stdin read goes as one datagram to the last sender;\n"
    "                     ends when stdin ends (unless -k)\n"
    "  -k, --keep-open    after a client, wait for the next (one at a time); a\n"
    "                     client's EOF ends its turn; with -u: go on after stdin ends\n"
    "      --keep-sending after the client closed its side, go on sending stdin\n"
    "                     until it ends; exit 0 when both sides are closed\n"
    "      --idle-timeout S  close a client after S seconds without a byte\n"
    "      --tls          TLS 1.3 keyed by the key file (the peer runs --tls too)\n"
    "      --key-file F   the key for --tls (default ~/.config/sockit/key)\n"
    "  -v, --verbose      say each client's address on stderr as it connects\n"
    "  -h, --help         this help\n"
    "      --version      print the version\n\n"
    "A stale Unix socket file is replaced, and removed again on exit.\n"
    "SIGINT/SIGTERM end it with status 0.\n";

int cmd_listen(int argc, char **argv) {
  pipe_opts o = {.cmd = "listen", .addr = "127.0.0.1:8080"};
  int code = pipe_parse(&o, argc, argv, listen_help, 1);
  return code >= 0 ? code : pipe_listen(&o);
}
