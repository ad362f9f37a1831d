/* udp_chat.c - the tutorial's UDP chat ("聊天": input, sendto, recvfrom, until
 * "bye"). A join registers this socket's address with the server's chat
 * service; every datagram renews that for 120 s. Each line typed is said to
 * the room, and every message of the room is printed as it arrives.
 *
 *   usage: udp_chat ADDR NICK [ROOM]     then type; "bye" or end of input leaves
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sockit/sockit.h>

/* Send {"type":TYPE,"room":ROOM[,"nick":NICK]} + text as one datagram. */
static int send_frame(sk_udp *u, const char *type, const char *room, const char *nick,
                      const char *text) {
  sk_head *h = sk_head_new(type);
  int rc = h ? sk_head_set_str(h, "room", room) : SK_EINTERNAL;
  if (rc == 0 && nick != NULL)
    rc = sk_head_set_str(h, "nick", nick);
  if (rc == 0)
    rc = sk_udp_send(u, h, text, text ? strlen(text) : 0);
  sk_head_free(h);
  return rc;
}

/* Print one datagram's frame: joined, msg, presence or error. */
static int receive(sk_udp *u) {
  sk_head *h = NULL;
  uint8_t *body = NULL;
  size_t n = 0;
  int rc = sk_udp_recv(u, &h, &body, &n, 0);
  const char *type = rc == 0 ? sk_head_type(h) : "";
  if (strcmp(type, "joined") == 0)
    printf("joined %s as %s\n", sk_head_str(h, "room"), sk_head_str(h, "nick"));
  else if (strcmp(type, "msg") == 0)
    printf("%s: %.*s\n", sk_head_str(h, "from"), (int)n, (const char *)body);
  else if (strcmp(type, "presence") == 0)
    printf("* %s %s\n", sk_head_str(h, "nick"), sk_head_str(h, "event"));
  else if (strcmp(type, "error") == 0)
    rc = sk_err_from_wire(sk_head_str(h, "code"));
  fflush(stdout);
  sk_head_free(h);
  free(body);
  return rc == -ETIMEDOUT ? 0 : rc; /* a datagram that was not a frame */
}

/* Say every complete line typed so far (a partial one waits for the rest).
 * Returns 1 after "bye" or at end of input, else 0 or an error. */
static int typed(sk_udp *u, const char *room, char *line, size_t *len, size_t cap) {
  ssize_t r = read(STDIN_FILENO, line + *len, cap - 1 - *len);
  char *nl;
  if (r <= 0 || *len + (size_t)r == cap - 1)
    return 1; /* end of input, or a line longer than the buffer */
  *len += (size_t)r;
  line[*len] = '\0';
  while ((nl = strchr(line, '\n')) != NULL) {
    int rc = 0;
    *nl = '\0';
    if (line[0] != '\0' && (rc = send_frame(u, "say", room, NULL, line)) < 0)
      return rc;
    if (strcmp(line, "bye") == 0)
      return 1;
    *len -= (size_t)(nl + 1 - line);
    memmove(line, nl + 1, *len + 1);
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *room = argc > 3 ? argv[3] : "lobby";
  char line[4096];
  size_t len = 0;
  sk_udp *u = NULL;
  int rc;

  if (argc < 3) {
    fprintf(stderr, "usage: udp_chat ADDR NICK [ROOM]\n");
    return 2;
  }
  if ((rc = sk_udp_open(&u, argv[1])) == 0)
    rc = send_frame(u, "join", room, argv[2], NULL);
  while (rc == 0) {
    struct pollfd p[2] = {{sk_udp_fd(u), POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
    if (poll(p, 2, -1) < 0)
      break;
    if (p[0].revents)
      rc = receive(u);
    else if (p[1].revents)
      rc = typed(u, room, line, &len, sizeof(line));
  }
  if (rc >= 0)
    rc = send_frame(u, "leave", room, NULL, NULL);
  if (rc < 0)
    fprintf(stderr, "udp_chat: %s\n", sk_strerror(rc));
  sk_udp_close(u);
  return rc < 0;
}
