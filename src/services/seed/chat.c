/* chat.c - seed chat: a broker like `ncat --chat`. What one client sends
 * reaches every other client connected to the same listener, byte for byte.
 * Seed listeners accept on loop 0 only, so a listener's members are all on
 * one thread; the member list itself is shared by every server in the
 * process, hence its lock. Control characters other than newline and tab
 * are relayed as U+FFFD (SPEC 6 v2), so that one member cannot drive the
 * others' terminals (clear the screen, retitle the window, OSC 52). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "service/seed.h"
#include "services/services.h"
#include "wire/seed.h"

#define CHAT_OUT_MAX (8u << 20) /* SPEC 4.8: a slower reader is dropped */

typedef struct chat_conn {
  sk_seed_conn sc;
  struct chat_conn *prev, *next;
  int joined;
  uint8_t carry[SK_SEED_CHAT_KEEP_MAX]; /* a UTF-8 sequence cut by the last read */
  size_t ncarry;
} chat_conn;

static pthread_mutex_t members_lock = PTHREAD_MUTEX_INITIALIZER;
static chat_conn *members;

static void on_start(sk_seed_conn *sc) {
  chat_conn *cc = (chat_conn *)sc;
  pthread_mutex_lock(&members_lock);
  cc->next = members;
  if (members)
    members->prev = cc;
  members = cc;
  cc->joined = 1;
  pthread_mutex_unlock(&members_lock);
}

static void on_closing(sk_seed_conn *sc) {
  chat_conn *cc = (chat_conn *)sc;
  if (!cc->joined)
    return;
  pthread_mutex_lock(&members_lock);
  if (cc->prev)
    cc->prev->next = cc->next;
  else
    members = cc->next;
  if (cc->next)
    cc->next->prev = cc->prev;
  cc->joined = 0;
  pthread_mutex_unlock(&members_lock);
}

/* The read's bytes, after the last read's carry, cleaned into a new buffer
 * (freed by the caller). NULL when out of memory. */
static uint8_t *clean(chat_conn *cc, const char *p, size_t n, size_t *len) {
  size_t total = cc->ncarry + n, keep;
  uint8_t *in = malloc(total), *out = malloc(3 * total);
  if (in == NULL || out == NULL) {
    free(in);
    free(out);
    return NULL;
  }
  memcpy(in, cc->carry, cc->ncarry);
  memcpy(in + cc->ncarry, p, n);
  *len = sk__seed_chat_clean(in, total, out, &keep);
  memcpy(cc->carry, in + total - keep, keep);
  cc->ncarry = keep;
  free(in);
  return out;
}

/* Members of the same listener share its spec; they live on this thread. */
static void on_read(sk_seed_conn *sc, const char *raw, size_t nraw) {
  chat_conn *slow[64];
  int nslow = 0;
  size_t n;
  uint8_t *p = clean((chat_conn *)sc, raw, nraw, &n);
  if (p == NULL) {
    sk__seed_close(sc, 0);
    return;
  }
  pthread_mutex_lock(&members_lock);
  for (chat_conn *m = members; m != NULL; m = m->next) {
    if (&m->sc == sc || m->sc.spec != sc->spec || m->sc.closing)
      continue;
    if (sk__seed_queued(&m->sc) > CHAT_OUT_MAX) {
      if (nslow < (int)(sizeof(slow) / sizeof(slow[0])))
        slow[nslow++] = m;
      continue;
    }
    if (n > 0)
      sk__seed_write(&m->sc, p, n);
  }
  pthread_mutex_unlock(&members_lock);
  free(p);
  /* closing unlinks from the list: done outside the lock */
  for (int i = 0; i < nslow; i++) {
    sk__seed_log(&slow[i]->sc, "slow_consumer", "wire", 's', "seed/chat", NULL);
    sk__seed_close(&slow[i]->sc, 0);
  }
}

static const sk_seed_ops ops = {.name = "seed/chat",
                                .start = on_start,
                                .read = on_read,
                                .closing = on_closing,
                                .size = sizeof(chat_conn)};

static void accept_chat(sk_listener *l, int fd) {
  sk__seed_accept(l, fd, &ops);
}

const sk_wire sk__wire_seed_chat = {
    .name = "seed/chat", .accept = accept_chat, .check = sk__seed_check};
