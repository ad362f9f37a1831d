/* connect.c - `sockit connect [-u] [ADDR]`: the tutorial's first client, as a
 * raw byte pipe between a server and stdin/stdout (see pipe.c). */
#include "cli.h"
#include "pipe.h"

static const char connect_help[] =
    "usage: sockit connect [-u] [--idle-timeout S] [ADDR]\n"
    "Connect to ADDR (default $SOCKIT_ADDR, else 127.0.0.1:8080; HOST:PORT,\n"
    "[IPv6]:PORT, :PORT, PORT or unix:/path) and pass raw bytes both ways:\n"
    "stdin's to the server, the server's to stdout. stdin's EOF half-closes the\n"
    "connection; the server's EOF closes stdout; exit 0 when both are closed.\n\n"
    "  -u                 UDP (or a Unix datagram socket): each stdin read is one\n"
    "                     datagram, datagrams are printed; ends 1 s after stdin's\n"
    "                     EOF once no more answers come\n"
    "      --idle-timeout S  give up after S seconds without a byte (exit 1)\n"
    "  -h, --help         this help\n";

int cmd_connect(int argc, char **argv) {
  pipe_opts o = {.cmd = "connect", .addr = sk_client_default_addr()};
  int code = pipe_parse(&o, argc, argv, connect_help, 0);
  return code >= 0 ? code : pipe_connect(&o);
}
