/* chat_client.c - the client half of the tutorial's chat pair ("测试1").
 * The tutorial's client must send, then wait for one reply, then send
 * again. Here one poll() watches the keyboard and the connection at once:
 * say as much as you like, and see the others' messages as they come.
 *
 *   usage: chat_client ADDR NICK [ROOM]     then type; "bye" or end of input leaves
 *
 * Prints "joined ROOM as NICK", then "NICK: text" for every message (yours
 * included, in the one order every member sees) and "* NICK joined/left".
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sockit/sockit.h>

/* Show one frame from the server; returns its error code for error frames. */
static int show(const sk_head *h, const uint8_t *body, size_t n) {
  const char *type = sk_head_type(h);
  if (strcmp(type, "joined") == 0)
    printf("joined %s as %s\n", sk_head_str(h, "room"), sk_head_str(h, "nick"));
  else if (strcmp(type, "msg") == 0)
    printf("%s: %.*s\n", sk_head_str(h, "from"), (int)n, (const char *)body);
  else if (strcmp(type, "presence") == 0)
    printf("* %s %s\n", sk_head_str(h, "nick"),
           strcmp(sk_head_str(h, "event"), "join") == 0 ? "joined" : "left");
  fflush(stdout);
  if (strcmp(type, "error") == 0) { /* nick_taken, say: the one frame we can get wrong */
    const char *msg = sk_error_message(h);
    fprintf(stderr, "chat_client: %s\n", msg ? msg : sk_head_str(h, "code"));
    return SK_EREMOTE;
  }
  return 0;
}

static int receive(sk_client *c) {
  sk_head *h = NULL;
  uint8_t *body = NULL;
  size_t n = 0;
  int rc = sk_client_recv(c, &h, &body, &n, 65536);
  if (rc == 0)
    rc = show(h, body, n);
  sk_head_free(h);
  free(body);
  return rc;
}

/* {"type":"say","room":ROOM,"size":N} + the line. */
static int say(sk_client *c, const char *room, const char *text) {
  sk_head *h = sk_head_new("say");
  int rc = h ? sk_head_set_str(h, "room", room) : SK_EINTERNAL;
  if (rc == 0)
    rc = sk_client_send(c, h, text, strlen(text));
  sk_head_free(h);
  return rc;
}

static int join(sk_client *c, const char *room, const char *nick) {
  sk_head *h = sk_head_new("join");
  int rc = h ? sk_head_set_str(h, "room", room) : SK_EINTERNAL;
  if (rc == 0 && (rc = sk_head_set_str(h, "nick", nick)) == 0)
    rc = sk_client_send(c, h, NULL, 0);
  sk_head_free(h);
  return rc;
}

/* Every complete line typed so far is said; a partial one waits. Returns 1
 * after "bye" or end of input. */
static int typed(sk_client *c, const char *room, char *line, size_t *len, size_t cap) {
  ssize_t r = read(STDIN_FILENO, line + *len, cap - 1 - *len);
  char *nl;
  if (r <= 0)
    return 1;
  *len += (size_t)r;
  line[*len] = '\0';
  while ((nl = strchr(line, '\n')) != NULL) {
    *nl = '\0';
    if (line[0] != '\0' && say(c, room, line) < 0)
      return 1;
    if (strcmp(line, "bye") == 0)
      return 1;
    *len -= (size_t)(nl + 1 - line);
    memmove(line, nl + 1, *len + 1);
  }
  return *len == cap - 1; /* a line longer than the buffer: give up */
}

int main(int argc, char **argv) {
  const char *room = argc > 3 ? argv[3] : "lobby";
  char line[4096];
  size_t len = 0;
  sk_client *c;
  int rc, done = 0;

  if (argc < 3) {
    fprintf(stderr, "usage: chat_client ADDR NICK [ROOM]\n");
    return 2;
  }
  if ((rc = sk_client_connect(&c, argv[1], NULL)) == 0 && (rc = join(c, room, argv[2])) == 0)
    rc = receive(c); /* "joined", or nick_taken */
  while (rc == 0 && !done) {
    struct pollfd p[2] = {{sk_client_fd(c), POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
    /* frames already buffered in the client are invisible to poll() */
    if (!sk_client_pending(c) && poll(p, 2, -1) < 0)
      break;
    if (sk_client_pending(c) || p[0].revents)
      rc = receive(c);
    else if (p[1].revents)
      done = typed(c, room, line, &len, sizeof(line));
  }
  if (rc < 0 && rc != SK_EREMOTE)
    fprintf(stderr, "chat_client: %s\n", sk_strerror(rc));
  sk_client_close(c); /* closing leaves every room */
  return rc < 0;
}
