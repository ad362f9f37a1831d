/* loop_server.c - a server on your own libuv loop (sk_server_run_on). The
 * application keeps its loop, its timers and its signals; the server's
 * callbacks run on the same thread, inside uv_run, so a handler reads the
 * application's state without a lock.
 *   {"type":"uptime"}  ->  {"type":"uptime","ticks":N}
 * N counts the application's own 100 ms timer. SIGINT or SIGTERM (watched
 * by the application) stops the server gracefully, then the program.
 * usage: loop_server [ADDR]    (no authentication)
 * build: cc loop_server.c $(pkg-config --cflags --libs sockit libuv) */
#include <errno.h>
#include <signal.h>
#include <stdio.h>

#include <sockit/sockit.h>
#include <sockit/uv.h>

/* The application's own state and handles, all on its one thread. */
static struct {
  uv_timer_t tick;
  uv_signal_t sigint, sigterm;
  int64_t ticks;
} app;

static void on_tick(uv_timer_t *t) {
  app.ticks++;
}

static int on_uptime(sk_conn *c, const sk_request *req) {
  sk_head *h = sk_head_new("uptime");
  int rc = h != NULL ? sk_head_set_int(h, "ticks", app.ticks) : -ENOMEM;
  if (rc == 0)
    rc = sk_conn_send(c, h, NULL, 0);
  sk_head_free(h);
  return rc;
}
static const sk_handler handlers[] = {{.type = "uptime", .handle = on_uptime}, {0}};
static const sk_service uptime_service = {.name = "uptime", .handlers = handlers};

static void print_notice(void *ctx, sk_notice_level level, const char *text) {
  fprintf(stderr, "sockit: %s%s\n", level == SK_NOTICE_WARNING ? "warning: " : "", text);
}

/* The application's signal watchers stop the server (gracefully: open
 * connections finish their requests first). */
static void on_signal(uv_signal_t *s, int signum) {
  sk_server_stop(s->data);
}

/* Close the application's handles: uv_run returns once they are gone. */
static void close_app(void) {
  uv_close((uv_handle_t *)&app.tick, NULL);
  uv_close((uv_handle_t *)&app.sigint, NULL);
  uv_close((uv_handle_t *)&app.sigterm, NULL);
}

/* The server has stopped and left the loop. */
static void on_server_done(sk_server *srv, void *ctx) {
  printf("server stopped after %lld ticks\n", (long long)app.ticks);
  close_app();
}

int main(int argc, char **argv) {
  const char *why = NULL, *addr = argc > 1 ? argv[1] : "127.0.0.1:8080";
  uv_loop_t *loop = uv_default_loop();
  sk_server *srv = NULL;
  int rc = sk_server_new(&srv);
  setvbuf(stdout, NULL, _IOLBF, 0);
  /* The process is the application's: it ignores SIGPIPE itself, as every
   * libuv program does (a peer gone mid-answer is that write's error). */
  signal(SIGPIPE, SIG_IGN);
  uv_timer_init(loop, &app.tick);
  uv_timer_start(&app.tick, on_tick, 100, 100);
  uv_signal_init(loop, &app.sigint);
  uv_signal_init(loop, &app.sigterm);
  if (rc == 0) {
    sk_server_on_notice(srv, print_notice, NULL);
    app.sigint.data = app.sigterm.data = srv;
    uv_signal_start(&app.sigint, on_signal, SIGINT);
    uv_signal_start(&app.sigterm, on_signal, SIGTERM);
  }
  if (rc == 0 && (rc = sk_server_add_service(srv, &uptime_service)) == 0 &&
      (rc = sk_server_set(srv, "listen", addr, &why)) == 0 &&
      (rc = sk_server_set(srv, "services", "uptime", &why)) == 0 &&
      (rc = sk_server_set(srv, "threads", "1", &why)) == 0 && /* all on this thread */
      (rc = sk_server_set(srv, "no-auth", NULL, &why)) == 0)
    rc = sk_server_run_on(srv, loop, on_server_done, NULL, &why); /* returns at once */
  if (rc < 0) {
    fprintf(stderr, "loop_server: %s\n", why ? why : sk_strerror(rc));
    close_app();
  }
  uv_run(loop, UV_RUN_DEFAULT); /* the application's loop: the server runs inside */
  sk_server_free(srv);
  uv_loop_close(loop);
  return rc < 0;
}
