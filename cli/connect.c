/* connect.c - `sockit connect [-u] [ADDR]`: the tutorial's first client, as a
 * raw byte pipe between a server and stdin/stdout (see pipe.c). */
#include "cli.h"
#include "pipe.h"

static const char connect_help[] =
    "usage: sockit connect [-u] [-v] [-w S] [--keep-sending] [--idle-timeout S] [ADDR | HOST "
    "PORT]\n"
    "Connect to ADDR (default $SOCKIT_ADDR, else 127.0.0.1:8080; HOST:PORT,\n"
    "[IPv6]:PORT, :PORT, PORT or unix:/path) and pass raw bytes both ways:\n"
    "stdin's to the server, the server's to stdout. stdin's EOF half-closes the\n"
    "connection (the server reads EOF, its answer still comes). When the server\n"
    "closes its side, everything received is written out and connect exits 0,\n"
    "even while stdin is still open, as ncat and socat do. A reset by the server\n"
    "exits 1.\n\n"
    "  -u                 UDP (or a Unix datagram socket): each stdin read is one\n"
    "                     datagram, datagrams are printed; ends 1 s after stdin's\n"
    "                     EOF once no more answers come\n"
    "  -w, --timeout S    give up connecting after S seconds (default 10)\n"
    "      --keep-sending after the server closed its side, go on sending stdin\n"
    "                     until it ends (a server that stops sending first but\n"
    "                     still reads); exit 0 when both sides are closed\n"
    "      --idle-timeout S  give up after S seconds without a byte (exit 1)\n"
    "      --tls          TLS 1.3 keyed by the key file (the peer runs --tls too)\n"
    "      --key-file F   the key for --tls (default ~/.config/sockit/key)\n"
    "  -v, --verbose      say each step on stderr: resolving, connecting, connected\n"
    "  -h, --help         this help\n"
    "      --version      print the version\n";

int cmd_connect(int argc, char **argv) {
  pipe_opts o = {.cmd = "connect", .addr = cli_default_addr()};
  int code = pipe_parse(&o, argc, argv, connect_help, 0);
  return code >= 0 ? code : pipe_connect(&o);
}
