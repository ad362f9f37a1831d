/* test_process.c - the library leaves the process alone unless asked
 * (issue 14): a server run without a notice callback writes nothing to
 * stderr, and without SK_PROCESS_* flags keeps SIGPIPE's disposition, SIGXFSZ's
 * and the RLIMIT_NOFILE soft limit as the application set them. With a
 * callback it hears what `sockit serve` prints; with the flags it changes
 * exactly those. Check forks each test, so their changes stay in the child.
 *
 * A service's start hook runs late in start-up (signals set, limit raised,
 * loops ready; only the listeners are still to open): it records the
 * process state there and stops the server, so each run is one whole
 * start-up and a clean stop. */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "sockit/sockit.h"

typedef struct seen {
  void (*sigpipe)(int);
  void (*sigxfsz)(int);
  rlim_t nofile;
} seen;

static seen at_start;
static char notices[8][256];
static int nnotices;

static void (*disposition(int sig))(int) {
  struct sigaction sa;
  ck_assert_int_eq(sigaction(sig, NULL, &sa), 0);
  return sa.sa_handler;
}

static rlim_t nofile_soft(void) {
  struct rlimit rl;
  ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
  return rl.rlim_cur;
}

static int probe_start(sk_server *srv) {
  at_start.sigpipe = disposition(SIGPIPE);
  at_start.sigxfsz = disposition(SIGXFSZ);
  at_start.nofile = nofile_soft();
  sk_server_stop(srv);
  return 0;
}

static const sk_handler probe_handlers[] = {{0}};
static const sk_service probe = {.name = "probe", .handlers = probe_handlers, .start = probe_start};

static void on_notice(void *ctx, sk_notice_level level, const char *text) {
  ck_assert_ptr_eq(ctx, notices);
  if (nnotices < 8)
    snprintf(notices[nnotices++], sizeof(notices[0]), "%d %s", (int)level, text);
}

/* A server on a loopback port of the kernel's choice, only the probe. */
static sk_server *probe_server(void) {
  sk_server *srv = NULL;
  const char *why = NULL;
  ck_assert_int_eq(sk_server_new(&srv), 0);
  ck_assert_int_eq(sk_server_set(srv, "listen", "127.0.0.1:0", &why), 0);
  ck_assert_int_eq(sk_server_set(srv, "services", "probe", &why), 0); /* the probe alone */
  /* more connections than the limit can hold: the limit is then said */
  ck_assert_int_eq(sk_server_set(srv, "max-conns", "10000000", &why), 0);
  ck_assert_int_eq(sk_server_set(srv, "threads", "1", &why), 0);
  ck_assert_int_eq(sk_server_set(srv, "no-auth", NULL, &why), 0);
  ck_assert_int_eq(sk_server_add_service(srv, &probe), 0);
  return srv;
}

/* The soft limit below the hard one, so that a raise would show. */
static rlim_t lower_nofile(void) {
  struct rlimit rl;
  ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max <= 256)
    return 0; /* nothing to lower */
  rl.rlim_cur = 256;
  ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
  return rl.rlim_max;
}

START_TEST(test_quiet_and_untouched_by_default) {
  char path[] = "/tmp/sockit-test-stderr-XXXXXX";
  int fd = mkstemp(path), saved = dup(2);
  const char *why = NULL;
  sk_server *srv;
  ck_assert_int_ge(fd, 0);
  unlink(path);
  signal(SIGPIPE, SIG_DFL);
  signal(SIGXFSZ, SIG_DFL);
  lower_nofile();
  srv = probe_server();
  ck_assert_int_eq(dup2(fd, 2), 2); /* whatever the library writes lands in fd */
  ck_assert_int_eq(sk_server_run(srv, 0, &why), 0);
  dup2(saved, 2);
  sk_server_free(srv);
  ck_assert_int_eq((int)lseek(fd, 0, SEEK_END), 0); /* not one byte */
  ck_assert_ptr_eq(at_start.sigpipe, SIG_DFL);
  ck_assert_ptr_eq(at_start.sigxfsz, SIG_DFL);
  ck_assert_ptr_eq(disposition(SIGPIPE), SIG_DFL);
  ck_assert_uint_eq(at_start.nofile, nofile_soft());
  close(fd);
  close(saved);
}
END_TEST

START_TEST(test_notices_and_process_when_asked) {
  const char *why = NULL;
  char want[128];
  rlim_t hard = lower_nofile();
  sk_server *srv = probe_server();
  signal(SIGPIPE, SIG_DFL);
  signal(SIGXFSZ, SIG_DFL);
  sk_server_on_notice(srv, on_notice, notices);
  sk_server_set_process(srv, SK_PROCESS_SIGNALS | SK_PROCESS_NOFILE);
  ck_assert_int_eq(sk_server_run(srv, 0, &why), 0);
  sk_server_free(srv);
  ck_assert_ptr_eq(at_start.sigpipe, SIG_IGN);
  ck_assert_ptr_eq(at_start.sigxfsz, SIG_IGN);
  if (hard != 0)
    ck_assert_uint_eq(at_start.nofile, hard);
  /* as `sockit serve` prints them, in order: the limit (when it cannot
   * hold --max-conns), then the listener */
  if (at_start.nofile == RLIM_INFINITY || at_start.nofile >= 10000064) {
    ck_assert_int_eq(nnotices, 1);
    memmove(notices[1], notices[0], sizeof(notices[0]));
  } else {
    ck_assert_int_eq(nnotices, 2);
    snprintf(want, sizeof(want), "0 the open file limit (%llu) is below --max-conns 10000000",
             (unsigned long long)at_start.nofile);
    ck_assert_msg(strncmp(notices[0], want, strlen(want)) == 0, "%s", notices[0]);
  }
  ck_assert_msg(strncmp(notices[1], "0 listening on 127.0.0.1:", 25) == 0, "%s", notices[1]);
  ck_assert_int_gt(atoi(notices[1] + 25), 0); /* the port the kernel chose */
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("process");
  TCase *tc = tcase_create("process");
  tcase_add_test(tc, test_quiet_and_untouched_by_default);
  tcase_add_test(tc, test_notices_and_process_when_asked);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  int failed;
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
