/* kv_server.c - a service of your own on the framework, like the tutorial's
 * socketserver section (setup / handle / finish): a key-value store.
 *   {"type":"kv_set","key":K,"size":N} + N bytes  ->  {"type":"set_ok"}
 *   {"type":"kv_get","key":K}  ->  {"type":"value","size":N} + N bytes, or not_found
 * usage: kv_server [ADDR]    (no authentication; one loop, so no locks)
 * The service is everything above main(), under 60 lines. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sockit/sockit.h>

static struct {
  char key[64], val[1024];
  size_t n;
} kv[128];
static int nkeys;

/* The index of the request's key (added if create), or the error to answer. */
static int slot(const sk_request *req, int create) {
  const char *key = sk_head_str(req->head, "key");
  int i = 0;
  if (key == NULL || strlen(key) >= sizeof(kv[0].key))
    return SK_EBADREQ;
  while (i < nkeys && strcmp(kv[i].key, key) != 0)
    i++;
  if (i == nkeys && (!create || nkeys == 128))
    return create ? SK_EBUSY : SK_ENOTFOUND;
  if (i == nkeys)
    strcpy(kv[nkeys++].key, key);
  return i;
}
static int reply(sk_conn *c, const char *type, const void *body, size_t n) {
  sk_head *h = sk_head_new(type);
  int rc = h != NULL ? sk_conn_send(c, h, body, n) : -ENOMEM; /* body is copied */
  sk_head_free(h);
  return rc;
}
static int on_set(sk_conn *c, const sk_request *req) { /* the core checked size <= 1024 */
  int i = slot(req, 1);
  if (i >= 0 && (kv[i].n = req->size) > 0)
    memcpy(kv[i].val, req->body, req->size);
  return i < 0 ? i : reply(c, "set_ok", NULL, 0); /* i < 0: the core sends the error */
}
static int on_get(sk_conn *c, const sk_request *req) {
  int i = slot(req, 0);
  return i < 0 ? i : reply(c, "value", kv[i].val, kv[i].n);
}
static int setup(sk_conn *c, void **state) { /* a connection's first kv request */
  printf("connected: %s\n", sk_conn_peer(c));
  return 0;
}
static void finish(sk_conn *c, void *state) { /* that connection has closed */
  printf("disconnected: %s\n", sk_conn_peer(c));
}
static const sk_handler handlers[] = {{.type = "kv_set", .handle = on_set, .max_body = 1024},
                                      {.type = "kv_get", .handle = on_get},
                                      {0}};
static const sk_service kv_service = {
    .name = "kv", .handlers = handlers, .setup = setup, .finish = finish};

/* The library prints nothing itself: this prints what the server has to
 * say ("listening on 127.0.0.1:8080", warnings) as `sockit serve` does. */
static void print_notice(void *ctx, sk_notice_level level, const char *text) {
  (void)ctx;
  fprintf(stderr, "sockit: %s%s\n", level == SK_NOTICE_WARNING ? "warning: " : "", text);
}

int main(int argc, char **argv) {
  const char *why = NULL, *addr = argc > 1 ? argv[1] : "127.0.0.1:8080";
  sk_server *srv = NULL;
  int rc = sk_server_new(&srv);
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (rc == 0) {
    sk_server_on_notice(srv, print_notice, NULL);
    /* SIGPIPE ignored: a client gone mid-answer is its error, not our end */
    sk_server_set_process(srv, SK_PROCESS_SIGNALS);
  }
  if (rc == 0 && (rc = sk_server_add_service(srv, &kv_service)) == 0 &&
      (rc = sk_server_set(srv, "listen", addr, &why)) == 0 &&
      (rc = sk_server_set(srv, "services", "kv", &why)) == 0 && /* kv alone, no built-in */
      (rc = sk_server_set(srv, "threads", "1", &why)) == 0 &&
      (rc = sk_server_set(srv, "no-auth", NULL, &why)) == 0)
    rc = sk_server_run(srv, 1, &why); /* until SIGINT/SIGTERM */
  if (rc < 0)
    fprintf(stderr, "kv_server: %s\n", why ? why : sk_strerror(rc));
  sk_server_free(srv);
  return rc < 0;
}
