/* put.c - seed put: the tutorial's large-file upload.
 *
 *   struct.pack('i', len(head)) + json.dumps(head) + filesize bytes
 *
 * The seed adapter of the upload job (services/files/upload.h), which the
 * files service's put uses too: the file is saved under --root by the base
 * name of "filename" only, the name is claimed against other uploads of it
 * (a native put of the same name at the same time is refused, or refuses
 * this one), the bytes go to a hidden part file that is fsynced and
 * published, with an fsync of the folder, only when all filesize bytes
 * arrived; an upload cut short leaves nothing. Publishing never replaces a
 * file (SPEC 6 v2: anyone who reaches a seed listener may upload): a taken
 * name is saved as "a (1).txt", "a (2).txt", ... for "a.txt". Then the
 * connection closes, as the tutorial's server does after one file.
 *
 * Reading pauses while the job could not take a whole read (the job says
 * when it has room again); disk work never blocks the loop. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/seed.h"
#include "services/files/upload.h"
#include "services/services.h"
#include "sockit/error.h"
#include "wire/seed.h"

#define PUT_MODE 0600 /* the tutorial's uploads are the server user's alone */

enum put_phase { PH_LEN, PH_HEAD, PH_BODY, PH_DONE };

typedef struct put_conn {
  sk_seed_conn sc;
  enum put_phase phase;
  uint8_t len[4];
  size_t nlen;
  char *head; /* head_len bytes, allocated once the length is checked */
  uint32_t head_len, nhead;
  sk_seed_put_head ph;
  sk__upload *job; /* from the head's end until the job reports */
  uint64_t received;
  int failed;
} put_conn;

/* Log the failure once, stop the job (its part file goes) and close. */
static void fail(put_conn *pc, const char *why, int err) {
  if (!pc->failed)
    sk__seed_log(&pc->sc, "put", "wire", 's', "seed/put", "name", 's', pc->ph.name, "bytes", 'i',
                 (int64_t)pc->received, "result", 's', why, "error", 's', sk_strerror(err), NULL);
  pc->failed = 1;
  if (pc->job != NULL)
    sk__upload_fail(pc->job, err, NULL);
  sk__seed_close(&pc->sc, 0);
}

/* Room for the next read: the rest of the file, at most a read buffer. */
static size_t next_read(const put_conn *pc) {
  uint64_t left = pc->ph.size - pc->received;
  return left < SK_SEED_RBUF ? (size_t)left : SK_SEED_RBUF;
}

static void job_resume(void *owner) {
  put_conn *pc = owner;
  if (pc->failed || pc->phase != PH_BODY || pc->received == pc->ph.size)
    return;
  if (sk__upload_room(pc->job) >= next_read(pc))
    sk__seed_resume(&pc->sc);
  else
    sk__upload_wait(pc->job);
}

/* The job is over: say so in the log and close. sk__seed_drop comes last
 * because it may free pc. */
static void job_done(void *owner, const sk__upload_result *r) {
  put_conn *pc = owner;
  pc->job = NULL;
  if (r->published) {
    sk__seed_log(&pc->sc, "put", "wire", 's', "seed/put", "name", 's', r->saved, "bytes", 'i',
                 (int64_t)r->taken, "result", 's', "ok", NULL);
    pc->phase = PH_DONE;
    sk__seed_close(&pc->sc, 1);
  } else {
    fail(pc, "io_error", r->err ? r->err : SK_EIO);
  }
  sk__seed_drop(&pc->sc);
}

/* Take up to want - *have bytes into dst; returns how many were taken. */
static size_t gather(void *dst, size_t *have, size_t want, const char *p, size_t n) {
  size_t k = want - *have < n ? want - *have : n;
  memcpy((char *)dst + *have, p, k);
  *have += k;
  return k;
}

static void head_done(put_conn *pc) {
  sk_server *srv = pc->sc.srv;
  int rc = sk__seed_put_head_parse(pc->head, pc->head_len,
                                   (uint64_t)sk_server_opt_int(srv, "max-file"), &pc->ph);
  sk__upload_cfg cfg = {.srv = srv,
                        .loop = pc->sc.uv,
                        .name = pc->ph.name,
                        .total = pc->ph.size,
                        .mode = PUT_MODE,
                        .publish = SK_UPLOAD_NUMBERED,
                        .owner = pc,
                        .resume = job_resume,
                        .done = job_done};
  free(pc->head);
  pc->head = NULL;
  if (rc < 0) {
    fail(pc, "bad_head", rc);
    return;
  }
  if ((rc = sk__upload_start(&cfg, &pc->job)) < 0) {
    fail(pc, rc == SK_EBUSY ? "busy" : "internal", rc);
    return;
  }
  sk__seed_hold(&pc->sc); /* until job_done */
  pc->phase = PH_BODY;
  sk__upload_commit(pc->job, NULL); /* publish as soon as every byte is written */
  if (pc->ph.size == 0) {
    sk__seed_pause(&pc->sc);
    sk__upload_end(pc->job);
  }
}

/* The length prefix and the head; returns the bytes taken. */
static size_t take_head(put_conn *pc, const char *p, size_t n) {
  size_t k;
  if (pc->phase == PH_LEN) {
    k = gather(pc->len, &pc->nlen, 4, p, n);
    if (pc->nlen < 4)
      return k;
    int rc = sk__seed_head_len(pc->len, &pc->head_len);
    if (rc < 0 || (pc->head = malloc(pc->head_len)) == NULL)
      fail(pc, "bad_head", rc < 0 ? rc : -ENOMEM);
    else
      pc->phase = PH_HEAD;
    return k;
  }
  size_t have = pc->nhead;
  k = gather(pc->head, &have, pc->head_len, p, n);
  pc->nhead = (uint32_t)have;
  if (pc->nhead == pc->head_len)
    head_done(pc);
  return k;
}

/* Body bytes into the job. Reading pauses while the job could not take a
 * whole read; its resume callback starts it again. */
static void take_body(put_conn *pc, const char *p, size_t n) {
  uint64_t left = pc->ph.size - pc->received;
  size_t want = n < left ? n : (size_t)left, took;
  took = sk__upload_take(pc->job, (const uint8_t *)p, want);
  pc->received += took;
  if (took < want) { /* cannot happen while the pause rule holds */
    fail(pc, "internal", SK_EINTERNAL);
    return;
  }
  if (pc->received == pc->ph.size) {
    sk__seed_pause(&pc->sc); /* done reading: the job publishes and closes */
    sk__upload_end(pc->job);
  } else if (sk__upload_room(pc->job) < next_read(pc)) {
    sk__seed_pause(&pc->sc);
    sk__upload_wait(pc->job);
  }
}

static void on_read(sk_seed_conn *sc, const char *p, size_t n) {
  put_conn *pc = (put_conn *)sc;
  while (n > 0 && !pc->failed && (pc->phase == PH_LEN || pc->phase == PH_HEAD)) {
    size_t k = take_head(pc, p, n);
    p += k;
    n -= k;
  }
  /* bytes after the file's end are ignored: one file per connection */
  if (n > 0 && !pc->failed && pc->phase == PH_BODY && pc->received < pc->ph.size)
    take_body(pc, p, n);
}

static void on_eof(sk_seed_conn *sc) {
  put_conn *pc = (put_conn *)sc;
  if (pc->phase == PH_BODY && pc->received == pc->ph.size)
    return; /* all there: the job closes the connection */
  if (pc->phase != PH_LEN || pc->nlen > 0)
    fail(pc, "incomplete", SK_ECLOSED);
  sk__seed_close(sc, 0);
}

static void on_closing(sk_seed_conn *sc) {
  put_conn *pc = (put_conn *)sc;
  if (pc->phase != PH_DONE && !pc->failed && pc->phase != PH_LEN)
    fail(pc, "incomplete", SK_ECLOSED);
}

static void on_free(sk_seed_conn *sc) {
  put_conn *pc = (put_conn *)sc;
  free(pc->head);
}

/* A graceful stop lets a running upload finish (up to the stop deadline). */
static int busy(sk_seed_conn *sc) {
  put_conn *pc = (put_conn *)sc;
  return pc->phase == PH_BODY && !pc->failed;
}

static const sk_seed_ops ops = {.name = "seed/put",
                                .read = on_read,
                                .eof = on_eof,
                                .closing = on_closing,
                                .free = on_free,
                                .busy = busy,
                                .size = sizeof(put_conn)};

static void accept_put(sk_listener *l, int fd) {
  sk__seed_accept(l, fd, &ops);
}

/* Uploads land in the file root, made here when files is not served. */
static int check_put(sk_server *srv, const sk_listen_spec *ls, const char **why) {
  int rc = sk__server_root_open(srv, why);
  return rc < 0 ? rc : sk__seed_check(srv, ls, why);
}

const sk_wire sk__wire_seed_put = {.name = "seed/put", .accept = accept_put, .check = check_put};
