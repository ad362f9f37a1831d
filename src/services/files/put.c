/* put.c - uploads (SPEC 4.7): put + body + put_end -> put_ok.
 *
 * The native adapter of the upload job (upload.h): it reads the request,
 * feeds the body to the job (copied from the read buffer, or read straight
 * into the job's memory), passes put_end's hash on, and answers, logs and
 * counts when the job reports. The job does the disk work, the name's claim
 * and the publishing. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/service.h"
#include "services/files/files.h"
#include "common/hash.h"
#include "services/files/upload.h"
#include "sockit/error.h"

struct sk__put {
  sk_conn *c;
  files_conn *fc; /* NULL once answered or once the connection is gone */
  sk__upload *u;
  char *name;
  uint64_t total, offset;
  bool body_done, end_seen, hashed;
  char alg[16];
  double t0;
};

uint64_t sk__put_limit(const sk_server *srv) {
  return (uint64_t)sk_server_opt_int(srv, "max-file");
}

/* ---- the job's outcome --------------------------------------------------- */

static int send_ok(sk__put *p, const sk__upload_result *r) {
  sk_head *h = sk_head_new("put_ok");
  int rc = h == NULL ? -ENOMEM : 0;
  if (rc == 0) {
    sk_head_set_str(h, "name", p->name);
    sk_head_set_int(h, "total", (int64_t)p->total);
    if (r->hash != NULL)
      sk_head_set_str(h, "hash", r->hash);
    rc = sk_conn_send(p->c, h, NULL, 0);
  }
  sk_head_free(h);
  return rc;
}

/* Answer a put still attached to its connection. A failed upload's unread
 * body is discarded (the detached sink takes it all) unless it is over the
 * core's discard limit: then the connection closes, as SPEC 4.2 says. */
static void answer(sk__put *p, const sk__upload_result *r) {
  sk_conn *c = p->c;
  uint64_t left = p->total - p->offset - r->taken;
  p->fc->put = NULL;
  p->fc = NULL;
  if (r->err == 0) {
    send_ok(p, r);
  } else {
    sk_conn_error(c, r->err, r->msg);
    if (!p->body_done && left > SK_DISCARD_MAX)
      sk_conn_close(c, 0);
    else
      sk_conn_resume(c);
  }
  sk_conn_done(c);
}

static void put_done(void *owner, const sk__upload_result *r) {
  sk__put *p = owner;
  const char *result = r->err ? sk_err_wire_name(r->err) : r->cancelled ? "interrupted" : "ok";
  sk__conn_metric(p->c, SK_M_BYTES_PUT, (int64_t)r->taken);
  if (r->published)
    sk__conn_metric(p->c, SK_M_FILES_PUT, 1);
  sk_conn_log(p->c, "put", "name", 's', p->name, "bytes", 'i', (int64_t)r->taken, "duration", 'f',
              sk__files_now() - p->t0, "result", 's', result, NULL);
  if (p->fc != NULL && !sk_conn_is_closing(p->c))
    answer(p, r);
  else if (p->fc != NULL)
    p->fc->put = NULL;
  sk_conn_unref(p->c);
  free(p->name);
  free(p);
}

/* The job has room again: the connection reads again (the sink is called
 * back from here). */
static void put_resume(void *owner) {
  sk__put *p = owner;
  if (p->fc != NULL)
    sk_conn_resume(p->c);
}

/* ---- the body ------------------------------------------------------------ */

ssize_t sk__put_body(sk_conn *c, void *state, const uint8_t *data, size_t n) {
  files_conn *fc = state;
  sk__put *p = fc->put;
  if (p == NULL)
    return (ssize_t)n; /* answered already: the rest is discarded */
  if (data == NULL) {
    p->body_done = true;
    sk__upload_end(p->u);
    return 0;
  }
  return (ssize_t)sk__upload_take(p->u, data, n);
}

/* Zero-copy receive: the core reads the socket straight into the job's
 * memory, which saves the copy sk__put_body makes. */
ssize_t sk__put_body_buf(sk_conn *c, void *state, uint8_t **buf) {
  files_conn *fc = state;
  sk__put *p = fc->put;
  if (p == NULL)
    return -1; /* answered already: .body discards the rest */
  return sk__upload_lend(p->u, buf);
}

void sk__put_body_got(sk_conn *c, void *state, size_t n) {
  files_conn *fc = state;
  sk__put *p = fc->put;
  if (p == NULL) /* cannot happen: lent and told within one read */
    return;
  sk__upload_lent(p->u, n);
}

/* ---- requests ----------------------------------------------------------- */

typedef struct put_args {
  const char *name, *alg, *msg;
  int64_t total, offset, mode, mtime;
  int exclusive, has_mtime;
} put_args;

static int int_member(const sk_head *h, const char *key, int64_t *v, int64_t lo, int64_t hi) {
  int rc = sk_head_int(h, key, v);
  if (rc == -ENOENT)
    return 0;
  return rc < 0 || *v < lo || *v > hi ? SK_EBADREQ : 0;
}

static int parse(const sk_request *req, put_args *a) {
  const sk_head *h = req->head;
  int rc = sk__files_name(h, 0, &a->name, &a->msg);
  a->total = -1;
  a->mode = 0644;
  a->has_mtime = sk_head_has(h, "mtime");
  if (rc < 0)
    return rc;
  a->msg = "put needs total (0..2^53-1), offset (0..total), size = total - offset, and "
           "integer mode and mtime";
  if (sk_head_int(h, "total", &a->total) < 0 || a->total < 0 || (uint64_t)a->total > SK_SIZE_MAX ||
      int_member(h, "offset", &a->offset, 0, a->total) < 0 ||
      req->size != (uint64_t)(a->total - a->offset) ||
      int_member(h, "mode", &a->mode, 0, 07777) < 0 ||
      int_member(h, "mtime", &a->mtime, INT32_MIN * 1024LL, INT32_MAX * 1024LL) < 0)
    return SK_EBADREQ;
  if (sk_head_has(h, "exclusive") && sk_head_bool(h, "exclusive", &a->exclusive) < 0) {
    a->msg = "exclusive must be true or false";
    return SK_EBADREQ;
  }
  a->alg = sk_head_str(h, "hash");
  if (sk_head_has(h, "hash") && !sk__hash_known(a->alg)) {
    a->msg = "unknown hash: use one the hello's \"hashes\" lists";
    return SK_EBADREQ;
  }
  return 0;
}

int sk__put_handle(sk_conn *c, const sk_request *req) {
  files_conn *fc = req->state;
  const sk_server *srv = sk_conn_server(c);
  put_args a = {0};
  sk__put *p = NULL;
  int rc = parse(req, &a);

  if (rc == 0 && (uint64_t)a.total > sk__put_limit(srv)) {
    rc = SK_ETOOLARGE;
    a.msg = "the file is larger than the server's --max-file";
  }
  if (rc == 0 && ((p = calloc(1, sizeof(*p))) == NULL || (p->name = strdup(a.name)) == NULL))
    rc = -ENOMEM;
  if (rc == 0) {
    sk__upload_cfg cfg = {
        .srv = srv,
        .loop = sk_conn_uv_loop(c),
        .name = a.name,
        .total = (uint64_t)a.total,
        .offset = (uint64_t)a.offset,
        .mode = (unsigned)a.mode,
        .mtime = a.mtime,
        .has_mtime = a.has_mtime != 0,
        .publish = a.exclusive ? SK_UPLOAD_EXCLUSIVE : SK_UPLOAD_REPLACE,
        .hash_alg = a.alg,
        .owner = p,
        .resume = put_resume,
        .done = put_done,
    };
    p->c = c;
    p->fc = fc;
    p->total = cfg.total;
    p->offset = cfg.offset;
    p->t0 = sk__files_now();
    p->hashed = a.alg != NULL;
    if (a.alg != NULL)
      snprintf(p->alg, sizeof(p->alg), "%s", a.alg);
    if ((rc = sk__upload_start(&cfg, &p->u)) == SK_EBUSY)
      a.msg = "another upload of this name is in progress";
  }
  if (rc < 0) {
    if (p != NULL)
      free(p->name);
    free(p);
    sk_conn_error(c, rc, rc == -ENOMEM ? NULL : a.msg);
    return 0; /* the core discards the body; the put_end that follows is swallowed */
  }
  sk_conn_ref(c);
  fc->put = p;
  if (req->size == 0) {
    p->body_done = true;
    sk__upload_end(p->u);
  }
  return SK_ASYNC;
}

/* put_end: the client's hash for the whole file. With no upload in progress
 * (its put was refused, or failed) it is swallowed: SPEC 4.7 sends nothing
 * more for a refused put. */
int sk__put_end(sk_conn *c, const sk_request *req) {
  files_conn *fc = req->state;
  sk__put *p = fc->put;
  const char *hash = sk_head_str(req->head, "hash");
  size_t alen = strlen(p != NULL ? p->alg : "");

  if (p == NULL || p->end_seen || !p->body_done)
    return 0;
  p->end_seen = true;
  if (sk_head_has(req->head, "hash") &&
      (hash == NULL || !p->hashed || strncmp(hash, p->alg, alen) != 0 || hash[alen] != ':' ||
       strlen(hash) >= SK_HASH_HEX_MAX)) {
    sk__upload_fail(p->u, SK_EBADREQ,
                    "put_end's hash must be \"ALG:HEX\" with the put's hash algorithm");
    return 0;
  }
  sk__upload_commit(p->u, sk_head_has(req->head, "hash") ? hash : NULL);
  return 0;
}

void sk__put_cancel(files_conn *fc) {
  sk__put *p = fc->put;
  if (p == NULL)
    return;
  fc->put = NULL;
  p->fc = NULL;
  sk__upload_cancel(p->u);
}
