/* raw_codec.c - the tutorial's cure for sticky packets ("解决TCP黏包": send
 * a fixed-size length first, then the data; the receiver reads the length,
 * then exactly that many bytes), done with sockit's codec on a plain POSIX
 * socket and your own buffers: no client object, no event loop.
 *
 * It sends two echo requests in ONE write - exactly what glues messages
 * together on a bare TCP stream - and still gets two clean answers back,
 * because every frame says how long its head and body are.
 *
 *   usage: raw_codec HOST:PORT      (a server started with --no-auth)
 */
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sockit/sockit.h>

static int dial(const char *hostport) {
  char host[256];
  const char *colon = strrchr(hostport, ':');
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
  int fd = -1;
  if (colon == NULL || (size_t)(colon - hostport) >= sizeof(host))
    return -1;
  snprintf(host, sizeof(host), "%.*s", (int)(colon - hostport), hostport);
  if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
    return -1;
  fd = socket(ai->ai_family, SOCK_STREAM, 0);
  if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
    close(fd);
    fd = -1;
  }
  freeaddrinfo(ai);
  return fd;
}

/* What has arrived and not yet been used; the decoder knows where frames
 * begin and end in it. */
typedef struct inbuf {
  int fd;
  sk_decoder d;
  size_t len;
  uint8_t data[8192];
} inbuf;

/* Append what the socket has; 0 at end of stream, on error or when full. */
static int more(inbuf *b) {
  ssize_t r = read(b->fd, b->data + b->len, sizeof(b->data) - b->len);
  if (r > 0)
    b->len += (size_t)r;
  return r > 0;
}

static void drop(inbuf *b, size_t k) {
  memmove(b->data, b->data + k, b->len - k);
  b->len -= k;
}

/* One whole frame: returns its head (the caller frees it) and copies its
 * body into body[0..*n), at most cap bytes; NULL on error. Bytes of the next
 * frame stay in b for the next call: that is what makes glued frames safe. */
static sk_head *read_frame(inbuf *b, char *body, size_t cap, size_t *n) {
  sk_head *h = NULL;
  ssize_t used;
  while ((used = sk_decode_head(&b->d, b->data, b->len, &h)) == 0)
    if (!more(b))
      return NULL;
  if (used < 0)
    return NULL;
  drop(b, (size_t)used); /* the prefix and the head */
  for (*n = 0; b->d.in_body;) {
    size_t take = sk_decoder_body_avail(&b->d, b->len);
    if (*n + take > cap || (take == 0 && !more(b))) {
      sk_head_free(h);
      return NULL;
    }
    memcpy(body + *n, b->data, take);
    *n += take;
    drop(b, take);
    sk_decoder_body_consume(&b->d, take);
  }
  return h;
}

/* Append {"type":"echo","size":N} and the N bytes of text to out[off..cap).
 * Returns the new end, or 0 when it does not fit. */
static size_t put_echo(uint8_t *out, size_t off, size_t cap, const char *text) {
  size_t n = strlen(text);
  sk_head *h = sk_head_new("echo");
  ssize_t k = -1;
  if (h != NULL && sk_head_set_int(h, "size", (int64_t)n) == 0)
    k = sk_head_encode(h, out + off, cap - off); /* prefix + head; the body is ours */
  sk_head_free(h);
  if (k < 0 || off + (size_t)k + n > cap)
    return 0;
  memcpy(out + off + (size_t)k, text, n);
  return off + (size_t)k + n;
}

int main(int argc, char **argv) {
  static inbuf in;
  uint8_t out[4096];
  char body[4096];
  size_t n, off;
  sk_head *h;

  in.fd = argc > 1 ? dial(argv[1]) : -1;
  if (in.fd < 0) {
    fprintf(stderr, "usage: raw_codec HOST:PORT (and a server listening there)\n");
    return 1;
  }
  /* A head limit far below the 64 KiB maximum: the buffer can always hold one. */
  sk_decoder_init(&in.d, 4096);
  h = read_frame(&in, body, sizeof(body), &n); /* the server speaks first */
  printf("hello from %s, auth %s\n", h ? sk_head_str(h, "server") : "?",
         h ? sk_head_str(h, "auth") : "?");
  sk_head_free(h);
  off = put_echo(out, 0, sizeof(out), "hello");
  off = off ? put_echo(out, off, sizeof(out), "aike") : 0; /* two frames, one write */
  if (off == 0 || write(in.fd, out, off) != (ssize_t)off)
    return 1;
  for (int i = 0; i < 2 && (h = read_frame(&in, body, sizeof(body), &n)) != NULL; i++) {
    printf("%s %zu bytes: %.*s\n", sk_head_type(h), n, (int)n, body);
    sk_head_free(h);
  }
  close(in.fd);
  return 0;
}
