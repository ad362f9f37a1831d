/* chat.c - `sockit chat [ADDR] [--room R] [--nick N] [--udp]` (SPEC 4.8, 5).
 *
 * Piped (stdin not a terminal): every stdin line is said, every message is
 * printed as "[HH:MM:SS] nick: text", presence as "[HH:MM:SS] * nick
 * joined"; at stdin's end the client waits briefly for its own last messages
 * to come back, leaves and exits 0.
 * On a terminal: a raw-mode line editor. Incoming lines are printed above
 * the input line, which is then redrawn with what was being typed.
 * One poll loop serves stdin and the socket; a ping every 60 s keeps a quiet
 * member inside the server's idle timeout (and a UDP member's lease).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "common/zone.h"
#include "jsonl.h"

#define NAME_MAX_ 32
#define LINE_MAX_ 65536   /* the say limit */
#define UDP_SAY_MAX 65000 /* leaves room for the head in one datagram */
#define PING_MS 60000
#define DRAIN_MS 3000
#define UDP_JOIN_TRIES 3
#define MAX_MEMBERS 4096

static const char chat_help[] =
    "usage: sockit chat [ADDR] [--room R] [--nick N] [--udp]\n"
    "Join a chat room. On a terminal: type and press Enter to say; commands\n"
    "/nick NEW, /join ROOM, /leave, /who, /quit. Piped: every stdin line is said\n"
    "and every message printed as \"[HH:MM:SS] nick: text\"; with --json as one\n"
    "object per line ({\"type\":\"msg\",\"room\":R,\"from\":N,\"text\":T,\"ts\":S},\n"
    "presence and joined alike), stdin lines said as when piped.\n\n"
    "      --room R       room (default lobby)\n"
    "      --nick N       nick (default $USER)\n"
    "  -u, --udp          talk to `serve --udp ADDR`: datagrams authenticated with\n"
    "                     the key (--no-auth: plain) but not encrypted; anyone on\n"
    "                     the path can read the room\n" CLI_CLIENT_HELP;

typedef struct chat {
  sk_client *tcp;
  sk_udp *udp;
  char room[NAME_MAX_ + 1], nick[NAME_MAX_ + 1];
  int in_room, tty, stdin_eof;
  int json; /* --json: each event as a JSON object line (line mode) */
  struct termios saved;
  char *line; /* the input being typed (terminal) or read (piped) */
  size_t len;
  int esc; /* inside an escape sequence */
  char *members[MAX_MEMBERS];
  size_t nmembers;
  long said, own_seen;
  int quiet_join;       /* a rejoin after a refused /nick or /join: no "joined" line */
  char join_error[256]; /* why the last join was refused, from the server */
} chat;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- transport ---------------------------------------------------------- */

static int xsend(chat *ch, sk_head *h, const void *body, size_t n) {
  return ch->tcp ? sk_client_send(ch->tcp, h, body, n) : sk_udp_send(ch->udp, h, body, n);
}

/* One frame; only called when one is due (poll said readable). */
static int xrecv(chat *ch, sk_head **h, uint8_t **b, size_t *n, int timeout_ms) {
  if (ch->tcp) {
    sk_client_set_timeout(ch->tcp, timeout_ms);
    return sk_client_recv(ch->tcp, h, b, n, LINE_MAX_);
  }
  return sk_udp_recv(ch->udp, h, b, n, timeout_ms);
}

static int send_simple(chat *ch, const char *type, const char *room, const char *nick,
                       int history) {
  sk_head *h = sk_head_new(type);
  int rc = h ? 0 : -ENOMEM;
  if (rc == 0 && room)
    sk_head_set_str(h, "room", room);
  if (rc == 0 && nick)
    sk_head_set_str(h, "nick", nick);
  if (rc == 0 && history > 0)
    sk_head_set_int(h, "history", history);
  if (rc == 0)
    rc = xsend(ch, h, NULL, 0);
  sk_head_free(h);
  return rc;
}

/* ---- output ------------------------------------------------------------- */

static void redraw(chat *ch) {
  if (!ch->tty)
    return;
  printf("\r\033[K\033[1m[%s]\033[0m %.*s", ch->in_room ? cli_safe(ch->room) : "-", (int)ch->len,
         ch->line);
  fflush(stdout);
}

static void stamp(double ts, char out[16]) {
  if (sk__time_format((int64_t)ts, "local", "%H:%M:%S", out, 16) < 0)
    snprintf(out, 16, "?");
}

static int colour_of(const char *nick) {
  unsigned h = 5381;
  for (const unsigned char *p = (const unsigned char *)nick; *p; p++)
    h = h * 33 + *p;
  return 31 + (int)(h % 6);
}

/* One line above the input line (terminal) or on stdout (piped). The nick
 * and the text are other members' words: escaped (cli_safe), so that a
 * message can never end its line early, forge another member's line, or
 * send the terminal a control sequence. */
static void show(chat *ch, double ts, const char *nick, const char *sep, const char *text,
                 size_t n) {
  char hm[16];
  stamp(ts, hm);
  if (ch->tty)
    printf("\r\033[K\033[2m[%s]\033[0m \033[%dm%s\033[0m%s", hm, colour_of(nick), cli_safe(nick),
           sep);
  else
    printf("[%s] %s%s", hm, cli_safe(nick), sep);
  cli_write_safe(stdout, text, n);
  fputs(ch->tty ? "\r\n" : "\n", stdout);
  redraw(ch);
  fflush(stdout);
}

/* A line of our own, with one argument that may be anyone's text. */
static void note(chat *ch, const char *fmt, const char *arg) {
  arg = arg != NULL ? cli_safe(arg) : "";
  if (ch->tty) {
    printf("\r\033[K* ");
    printf(fmt, arg);
    printf("\r\n");
    redraw(ch);
  } else {
    fprintf(stderr, "sockit chat: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
  }
  fflush(stdout);
}

/* ---- members (for /who) ------------------------------------------------- */

static void members_clear(chat *ch) {
  while (ch->nmembers > 0)
    free(ch->members[--ch->nmembers]);
}

static void member_add(chat *ch, const char *nick) {
  if (ch->nmembers < MAX_MEMBERS && nick && (ch->members[ch->nmembers] = strdup(nick)))
    ch->nmembers++;
}

static void member_del(chat *ch, const char *nick) {
  for (size_t i = 0; nick && i < ch->nmembers; i++)
    if (strcmp(ch->members[i], nick) == 0) {
      free(ch->members[i]);
      ch->members[i] = ch->members[--ch->nmembers];
      return;
    }
}

/* ---- frames from the server --------------------------------------------- */

static void on_joined(chat *ch, const sk_head *h) {
  members_clear(ch);
  for (size_t i = 0; i < sk_head_arr_len(h, "members"); i++)
    member_add(ch, sk_head_arr_str(h, "members", i));
  ch->in_room = 1;
  if (!ch->quiet_join)
    note(ch, "joined %s", ch->room);
}

/* --json: an event of the room as one object line: the frame's type and its
 * members that say who and where, the body as "text" (or "base64" when it
 * is not UTF-8), and the time in unix seconds. */
static void json_event(const sk_head *h, const uint8_t *body, size_t n, double ts) {
  static const char *const keys[] = {"type", "room", "from", "nick", "event"};
  sk_head *j = cli_jsonl_new();
  if (j == NULL)
    return;
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
    if (sk_head_str(h, keys[i]) != NULL)
      cli_jsonl_str(j, keys[i], sk_head_str(h, keys[i]));
  if (strcmp(sk_head_type(h), "msg") == 0 &&
      sk_head_set_strn(j, "text", n ? (const char *)body : "", n) < 0)
    cli_jsonl_base64(j, "base64", body, n);
  sk_head_set_double(j, "ts", ts);
  cli_jsonl_print(j);
  fflush(stdout);
}

/* Returns 0, or an exit code when the session must end. */
static int on_frame(chat *ch, const sk_head *h, const uint8_t *body, size_t n) {
  const char *type = sk_head_type(h), *room = sk_head_str(h, "room");
  const char *nick = sk_head_str(h, "nick"), *from = sk_head_str(h, "from");
  double ts = (double)time(NULL);

  if (strcmp(type, "msg") == 0 && room && from && strcmp(room, ch->room) == 0) {
    if (sk_head_double(h, "ts", &ts) == 0 && ch->udp && sk_udp_authenticated(ch->udp))
      ts /= 1000; /* the datagram's own stamp, in ms, took the member (SPEC 5) */
    if (strcmp(from, ch->nick) == 0)
      ch->own_seen++;
    if (ch->json)
      json_event(h, body, n, ts);
    else
      show(ch, ts, from, ": ", (const char *)body, n);
  } else if (strcmp(type, "presence") == 0 && nick && room && strcmp(room, ch->room) == 0) {
    int join = sk_head_str(h, "event") && strcmp(sk_head_str(h, "event"), "join") == 0;
    char text[NAME_MAX_ * 2 + 16];
    int k = snprintf(text, sizeof(text), "%s %s", nick, join ? "joined" : "left");
    join ? member_add(ch, nick) : member_del(ch, nick);
    if (ch->json)
      json_event(h, NULL, 0, ts);
    else
      show(ch, ts, "*", " ", text, (size_t)k);
  } else if (strcmp(type, "joined") == 0) {
    if (ch->json)
      json_event(h, NULL, 0, ts);
    on_joined(ch, h);
  } else if (strcmp(type, "error") == 0) {
    const char *code = sk_head_str(h, "code"), *msg = sk_error_message(h);
    if (ch->json)
      cli_print_failure(code ? sk_err_from_wire(code) : SK_EPROTO, h);
    if (ch->tty)
      note(ch, "server said: %s", msg ? msg : code ? code : "error");
    else
      cli_error("chat", "server said %s: %s", cli_safe(code ? code : "error"),
                cli_safe(msg ? msg : ""));
    if (code && sk_err_is_fatal(sk_err_from_wire(code)))
      return EXIT_CONN;
  }
  return 0;
}

/* The server is gone: say so on a line of its own. The input line is
 * cleared, and stdout flushed before stderr speaks, so the message is never
 * glued to the prompt. Returns the exit code. */
static int conn_lost(chat *ch, int rc) {
  if (ch->tty) {
    printf("\r\033[K");
    fflush(stdout);
  }
  cli_error("chat", "%s: %s", ch->tcp ? "lost the connection to the server" : "UDP",
            sk_strerror(rc));
  return EXIT_CONN;
}

/* ---- requests ----------------------------------------------------------- */

/* Join and wait for joined (frames in between are shown); ch->room and
 * ch->nick change only when the server says joined. UDP asks again when the
 * answer is lost. Returns 0, SK_EREMOTE when the server refused (its words
 * in ch->join_error), or a transport error. */
static int join_room(chat *ch, const char *room, const char *nick, int history) {
  int tries = ch->udp ? UDP_JOIN_TRIES : 1, rc = -ETIMEDOUT;
  for (int i = 0; i < tries; i++) {
    int64_t deadline = now_ms() + (ch->udp ? 1000 : 10000);
    if ((rc = send_simple(ch, "join", room, nick, history)) < 0)
      return rc;
    while ((rc = (int)(deadline - now_ms())) > 0) {
      sk_head *h = NULL;
      uint8_t *b = NULL;
      size_t n = 0;
      if ((rc = xrecv(ch, &h, &b, &n, rc)) < 0)
        break;
      const char *type = sk_head_type(h);
      int joined = strcmp(type, "joined") == 0, refused = strcmp(type, "error") == 0;
      if (refused) {
        const char *msg = sk_error_message(h), *code = sk_head_str(h, "code");
        snprintf(ch->join_error, sizeof(ch->join_error), "%s", msg ? msg : code ? code : "refused");
      } else {
        if (joined) {
          snprintf(ch->room, sizeof(ch->room), "%s", room);
          snprintf(ch->nick, sizeof(ch->nick), "%s", nick);
        }
        on_frame(ch, h, b, n);
      }
      sk_head_free(h);
      free(b);
      if (joined || refused)
        return refused ? SK_EREMOTE : 0;
    }
    if (rc != -ETIMEDOUT && rc < 0)
      return rc;
  }
  return -ETIMEDOUT;
}

static int leave_room(chat *ch) {
  if (!ch->in_room)
    return 0;
  ch->in_room = 0;
  members_clear(ch);
  return send_simple(ch, "leave", ch->room, NULL, 0);
}

/* Say text, cut into pieces the server takes (never inside a character). */
static int say(chat *ch, const char *text, size_t n) {
  size_t max = ch->udp ? UDP_SAY_MAX : LINE_MAX_;
  while (n > 0) {
    size_t k = n;
    if (k > max)
      for (k = max; k > 0 && ((unsigned char)text[k] & 0xc0) == 0x80; k--) {
      }
    sk_head *h = sk_head_new("say");
    int rc = h ? sk_head_set_str(h, "room", ch->room) : -ENOMEM;
    if (rc == 0)
      rc = xsend(ch, h, text, k);
    sk_head_free(h);
    if (rc < 0)
      return rc;
    ch->said++;
    text += k;
    n -= k;
  }
  return 0;
}

/* ---- the terminal ------------------------------------------------------- */

/* /nick NEW or /join ROOM: leave, join as asked, and when the server
 * refuses (a taken nick, a bad name) go back where we were, quietly, and
 * say so in one line. Returns an exit code to end, else -1. */
static int rejoin(chat *ch, int is_join, const char *arg) {
  char room[NAME_MAX_ + 1], nick[NAME_MAX_ + 1], old_room[NAME_MAX_ + 1], old_nick[NAME_MAX_ + 1];
  int was_in = ch->in_room, rc;
  snprintf(old_room, sizeof(old_room), "%s", ch->room);
  snprintf(old_nick, sizeof(old_nick), "%s", ch->nick);
  snprintf(room, sizeof(room), "%s", is_join ? arg : ch->room);
  snprintf(nick, sizeof(nick), "%s", is_join ? ch->nick : arg);
  if (!is_join && !was_in) { /* not in a room: the nick is for the next /join */
    snprintf(ch->nick, sizeof(ch->nick), "%s", nick);
    note(ch, "your nick is now %s", nick);
    return -1;
  }
  if ((rc = leave_room(ch)) == 0)
    rc = join_room(ch, room, nick, is_join ? 20 : 0);
  if (rc == 0)
    return -1;
  if (rc != SK_EREMOTE)
    return conn_lost(ch, rc);
  char line[512], why[256];
  snprintf(why, sizeof(why), "%s", cli_safe(ch->join_error));
  ch->quiet_join = 1;
  rc = was_in ? join_room(ch, old_room, old_nick, 0) : SK_EREMOTE;
  ch->quiet_join = 0;
  if (rc == 0 && is_join)
    snprintf(line, sizeof(line), "cannot join %s as %s (%s): still in %s", cli_safe(room),
             cli_safe(nick), why, cli_safe(old_room));
  else if (rc == 0)
    snprintf(line, sizeof(line), "cannot take the nick %s in %s (%s): you are still %s",
             cli_safe(nick), cli_safe(room), why, cli_safe(old_nick));
  else if (rc == SK_EREMOTE)
    snprintf(line, sizeof(line), "cannot join %s as %s (%s): /join ROOM", cli_safe(room),
             cli_safe(nick), why);
  else
    return conn_lost(ch, rc);
  note(ch, "%s", line);
  return -1;
}

static int command(chat *ch, char *cmd) {
  char *arg = strchr(cmd, ' ');
  if (arg != NULL)
    *arg++ = '\0';
  if (strcmp(cmd, "/quit") == 0)
    return EXIT_OK;
  if (strcmp(cmd, "/who") == 0) {
    if (!ch->in_room)
      note(ch, "%s", "not in a room: /join ROOM");
    for (size_t i = 0; ch->in_room && i < ch->nmembers; i++)
      note(ch, "in the room: %s", ch->members[i]);
  } else if (strcmp(cmd, "/leave") == 0) {
    if (!ch->in_room)
      note(ch, "%s", "not in a room: /join ROOM");
    else if (leave_room(ch) == 0)
      note(ch, "left %s", ch->room);
  } else if ((strcmp(cmd, "/join") == 0 || strcmp(cmd, "/nick") == 0) && arg && *arg) {
    if (strlen(arg) > NAME_MAX_)
      note(ch, "%s", "rooms and nicks are at most 32 bytes");
    else
      return rejoin(ch, cmd[1] == 'j', arg);
  } else {
    note(ch, "%s", "commands: /nick NEW, /join ROOM, /leave, /who, /quit");
  }
  return -1;
}

/* Enter: a command or a message. Returns an exit code to end, else -1. */
static int submit(chat *ch) {
  int rc = -1;
  ch->line[ch->len] = '\0';
  if (ch->line[0] == '/')
    rc = command(ch, ch->line);
  else if (ch->len > 0 && !ch->in_room)
    note(ch, "%s", "not in a room: /join ROOM");
  else if (ch->len > 0 && say(ch, ch->line, ch->len) < 0)
    rc = EXIT_CONN;
  ch->len = 0;
  redraw(ch);
  return rc;
}

/* One key byte. Returns an exit code to end, else -1. */
static int key(chat *ch, unsigned char c) {
  if (ch->esc) { /* skip ESC [ ... final byte (arrows and such) */
    ch->esc = !(c >= 0x40 && c <= 0x7e && !(ch->esc == 1 && c == '['));
    if (ch->esc)
      ch->esc = 2;
    return -1;
  }
  if (c == 3 || (c == 4 && ch->len == 0))
    return EXIT_OK;
  if (c == '\r' || c == '\n')
    return submit(ch);
  if (c == 0x1b)
    ch->esc = 1;
  else if (c == 0x7f || c == 8) {
    while (ch->len > 0 && ((unsigned char)ch->line[--ch->len] & 0xc0) == 0x80) {
    }
  } else if (c == 0x15)
    ch->len = 0;
  else if (c >= 0x20 && ch->len < LINE_MAX_)
    ch->line[ch->len++] = (char)c;
  redraw(ch);
  return -1;
}

static int raw_mode(chat *ch) {
  struct termios t;
  if (tcgetattr(STDIN_FILENO, &ch->saved) < 0)
    return -errno;
  t = ch->saved;
  t.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ISIG | IEXTEN);
  t.c_iflag &= ~(tcflag_t)(ICRNL | IXON);
  t.c_cc[VMIN] = 1;
  t.c_cc[VTIME] = 0;
  return tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) < 0 ? -errno : 0;
}

/* ---- the loop ----------------------------------------------------------- */

/* Piped input: every complete line is said. */
static int piped_input(chat *ch, const char *buf, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (buf[i] != '\n' && ch->len < LINE_MAX_) {
      ch->line[ch->len++] = buf[i];
      continue;
    }
    size_t k = ch->len;
    if (k > 0 && ch->line[k - 1] == '\r')
      k--;
    if (k > 0 && say(ch, ch->line, k) < 0)
      return EXIT_CONN;
    ch->len = 0;
    if (buf[i] != '\n')
      ch->line[ch->len++] = buf[i];
  }
  return -1;
}

static int read_stdin(chat *ch) {
  char buf[4096];
  ssize_t r = read(STDIN_FILENO, buf, sizeof(buf));
  if (r < 0)
    return errno == EINTR || errno == EAGAIN ? -1 : EXIT_FAIL;
  if (r == 0) {
    ch->stdin_eof = 1;
    return ch->tty ? EXIT_OK : piped_input(ch, "\n", ch->len > 0);
  }
  if (!ch->tty)
    return piped_input(ch, buf, (size_t)r);
  for (ssize_t i = 0; i < r; i++) {
    int rc = key(ch, (unsigned char)buf[i]);
    if (rc >= 0)
      return rc;
  }
  return -1;
}

static int read_socket(chat *ch) {
  sk_head *h = NULL;
  uint8_t *b = NULL;
  size_t n = 0;
  int rc = xrecv(ch, &h, &b, &n, ch->tcp ? 30000 : 0);
  if (rc == -ETIMEDOUT && ch->udp)
    return -1;
  if (rc < 0)
    return conn_lost(ch, rc);
  rc = on_frame(ch, h, b, n);
  sk_head_free(h);
  free(b);
  return rc > 0 ? rc : -1;
}

static int run(chat *ch) {
  int64_t next_ping = now_ms() + PING_MS, drain_until = -1;
  for (;;) {
    int64_t now = now_ms();
    int rc = -1, timeout;
    if (ch->stdin_eof && drain_until < 0)
      drain_until = now + DRAIN_MS;
    if (drain_until >= 0 && (ch->own_seen >= ch->said || now >= drain_until))
      return EXIT_OK;
    if (ch->tcp && sk_client_pending(ch->tcp)) {
      if ((rc = read_socket(ch)) >= 0)
        return rc;
      continue;
    }
    if (now >= next_ping) {
      send_simple(ch, "ping", NULL, NULL, 0);
      next_ping = now + PING_MS;
    }
    timeout = (int)((drain_until >= 0 && drain_until < next_ping ? drain_until : next_ping) - now);
    struct pollfd p[2] = {{ch->tcp ? sk_client_fd(ch->tcp) : sk_udp_fd(ch->udp), POLLIN, 0},
                          {STDIN_FILENO, POLLIN, 0}};
    int n = poll(p, ch->stdin_eof ? 1 : 2, timeout > 0 ? timeout : 0);
    if (n < 0 && errno != EINTR)
      return EXIT_FAIL;
    if (n > 0 && p[0].revents)
      rc = read_socket(ch);
    if (rc < 0 && n > 0 && !ch->stdin_eof && p[1].revents)
      rc = read_stdin(ch);
    if (rc >= 0)
      return rc;
  }
}

/* ---- the command -------------------------------------------------------- */

static int open_transport(chat *ch, cli_client *cc, int udp) {
  if (!udp)
    return cli_connect("chat", cc, &ch->tcp);
  return cli_udp_open("chat", cc, &ch->udp);
}

static int session(chat *ch, const char *room, const char *nick) {
  int rc = join_room(ch, room, nick, ch->tty ? 20 : 0), code;
  if (rc == SK_EREMOTE) {
    cli_error("chat", "cannot join %s as %s: %s", cli_safe(room), cli_safe(nick),
              cli_safe(ch->join_error));
    return EXIT_FAIL;
  }
  if (rc < 0) {
    cli_error("chat", "no joined answer: %s", sk_strerror(rc));
    return EXIT_CONN;
  }
  if (ch->tty && raw_mode(ch) < 0)
    ch->tty = 0;
  redraw(ch);
  code = run(ch);
  leave_room(ch);
  if (ch->tcp)
    send_simple(ch, "bye", NULL, NULL, 0);
  if (ch->tty) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &ch->saved);
    printf("\r\033[K");
    fflush(stdout);
  }
  return code;
}

int cmd_chat(int argc, char **argv) {
  static const struct option opts[] = {{"room", required_argument, NULL, 'r'},
                                       {"nick", required_argument, NULL, 'n'},
                                       {"udp", no_argument, NULL, 'u'},
                                       CLI_CLIENT_LONGOPTS,
                                       {0}};
  const char *room = "lobby", *nick = getenv("USER");
  cli_client cc = {.cmd = "chat"};
  chat ch = {0};
  int opt, argi, udp = 0, code;

  while ((opt = cli_getopt(argc, argv, ":u" CLI_CLIENT_SHORTOPTS, opts, NULL)) != -1) {
    if (opt == 'h')
      return fputs(chat_help, stdout), EXIT_OK;
    if (opt == 'r')
      room = optarg;
    else if (opt == 'n')
      nick = optarg;
    else if (opt == 'u')
      udp = 1;
    else if (!cli_client_opt(&cc, opt, optarg))
      return cli_option_error("chat", opt, argv);
  }
  argi = optind;
  cli_take_addr(&cc, argc, argv, &argi);
  if (argi < argc)
    return cli_usage_error("chat", "unexpected argument '%s'", argv[argi]);
  if (nick == NULL || nick[0] == '\0')
    nick = "guest";
  if (strlen(room) > NAME_MAX_ || strlen(nick) > NAME_MAX_)
    return cli_usage_error("chat", "room and nick are at most 32 bytes");
  if ((ch.line = malloc(LINE_MAX_ + 1)) == NULL)
    return EXIT_FAIL;
  ch.json = cc.json;
  ch.tty = !ch.json && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
  if ((code = open_transport(&ch, &cc, udp)) == EXIT_OK) {
    cli_verbose(cc.verbose, cc.cmd, "joining %s as %s", cli_safe(room), cli_safe(nick));
    code = session(&ch, room, nick);
  }
  members_clear(&ch);
  free(ch.line);
  sk_client_close(ch.tcp);
  sk_udp_close(ch.udp);
  return code;
}
