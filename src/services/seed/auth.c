/* auth.c - seed auth: the tutorial's HMAC check of a client.
 *
 * The server sends a random decimal number (the tutorial's
 * str(random.randint(0, 99)), widened to 20 digits from the kernel CSPRNG);
 * the client answers hmac.new(key, number, 'md5').digest(), 16 bytes, read
 * as the tutorial's conn.recv(len(server_key)) does. Right: `验证成功` and
 * close. Wrong: `验证失败` and another try; the fifth wrong answer closes
 * and counts toward the address's rate limit (SPEC 4.3). A lone `q`
 * closes. The key is the server's secret. */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "auth/hmac_md5.h"
#include "service/seed.h"
#include "services/services.h"
#include "wire/seed.h"

#define AUTH_MAX_FAILS 5

static const char ok_text[] = "验证成功";   /* "verified" */
static const char fail_text[] = "验证失败"; /* "verification failed" */

typedef struct auth_conn {
  sk_seed_conn sc;
  uint8_t want[SK_SEED_MAC_LEN]; /* the right answer */
  uint8_t got[SK_SEED_MAC_LEN];  /* the answer so far */
  size_t ngot;
  int fails;
} auth_conn;

/* A fresh challenge in out; returns its length or a negative error. */
static int challenge(char out[SK_SEED_AUTH_DIGITS + 1]) {
  uint8_t rnd[64];
  int rc = -EAGAIN;
  for (int tries = 0; tries < 4 && rc == -EAGAIN; tries++) {
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
      return -errno;
    rc = sk__seed_digits(rnd, sizeof(rnd), out, SK_SEED_AUTH_DIGITS + 1, SK_SEED_AUTH_DIGITS);
  }
  return rc;
}

static void on_start(sk_seed_conn *sc) {
  auth_conn *ac = (auth_conn *)sc;
  char num[SK_SEED_AUTH_DIGITS + 1];
  int n;

  if (sk__ratelimit_blocked(sk__server_ratelimit(sc->srv), sc->src, sk__now_mono()) > 0) {
    sk__seed_log(sc, "rate_limited", "wire", 's', "seed/auth", NULL);
    sk__seed_close(sc, 0);
    return;
  }
  if ((n = challenge(num)) < 0 ||
      sk__hmac_md5(sk__server_key(sc->srv)->bytes, sk__server_key(sc->srv)->len, num, (size_t)n,
                   ac->want) < 0) {
    sk__seed_close(sc, 0);
    return;
  }
  sk__seed_write(sc, num, (size_t)n);
}

static void judge(auth_conn *ac) {
  sk_seed_conn *sc = &ac->sc;
  double now = sk__now_mono();

  ac->ngot = 0;
  if (sk__seed_equal(ac->want, ac->got, SK_SEED_MAC_LEN)) {
    sk__ratelimit_success(sk__server_ratelimit(sc->srv), sc->src, now);
    sk__seed_log(sc, "auth_ok", "wire", 's', "seed/auth", NULL);
    sk__seed_write(sc, ok_text, sizeof(ok_text) - 1);
    sk__seed_close(sc, 1);
    return;
  }
  sk__ratelimit_fail(sk__server_ratelimit(sc->srv), sc->src, now);
  sk__seed_log(sc, "auth_failed", "wire", 's', "seed/auth", NULL);
  sk__seed_write(sc, fail_text, sizeof(fail_text) - 1);
  if (++ac->fails >= AUTH_MAX_FAILS ||
      sk__ratelimit_blocked(sk__server_ratelimit(sc->srv), sc->src, now) > 0)
    sk__seed_close(sc, 1);
}

static void on_read(sk_seed_conn *sc, const char *p, size_t n) {
  auth_conn *ac = (auth_conn *)sc;
  /* the tutorial's client sends b'q' alone to give up */
  if (ac->ngot == 0 && n == 1 && p[0] == 'q') {
    sk__seed_close(sc, 1);
    return;
  }
  while (n > 0 && !sc->closing) {
    size_t k = SK_SEED_MAC_LEN - ac->ngot < n ? SK_SEED_MAC_LEN - ac->ngot : n;
    memcpy(ac->got + ac->ngot, p, k);
    ac->ngot += k;
    p += k;
    n -= k;
    if (ac->ngot == SK_SEED_MAC_LEN)
      judge(ac);
  }
}

static const sk_seed_ops ops = {
    .name = "seed/auth", .start = on_start, .read = on_read, .size = sizeof(auth_conn)};

static void accept_auth(sk_listener *l, int fd) {
  sk__seed_accept(l, fd, &ops);
}

static int check_auth(sk_server *srv, const sk_listen_spec *ls, const char **why) {
  if (sk__server_key(srv)->len == 0) {
    *why = "--wire seed --service auth needs the server's key: drop --no-auth";
    return -EINVAL;
  }
  return sk__seed_check(srv, ls, why);
}

const sk_wire sk__wire_seed_auth = {
    .name = "seed/auth", .accept = accept_auth, .check = check_auth};
