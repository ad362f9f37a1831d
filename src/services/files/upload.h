/* upload.h - the upload job: one file written under the server's root, the
 * engine behind the files service's put (SPEC 4.7) and the seed wire's put
 * (SPEC 6). The job claims the name, writes the body bytes to a hidden part
 * file on libuv's pool (a clean prefix at every moment, so a put can resume),
 * hashes them if asked, and publishes the file: fsync, mode, mtime, rename,
 * fsync of the folder. Its owner (a connection's adapter) feeds it bytes
 * and learns the outcome from one callback.
 *
 * Ownership: the job owns its buffers, fds and the name's claim; it frees
 * itself after its done callback returns, whatever the outcome (published,
 * refused, failed, cancelled). The owner must stay alive until then (hold
 * a reference on its connection). Every call and callback runs on the
 * owner's loop thread. */
#ifndef SOCKIT_FILES_UPLOAD_H
#define SOCKIT_FILES_UPLOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "common/hash.h"
#include "sockit/server.h"

typedef struct sk__upload sk__upload;

/* How the finished part file takes its name. */
enum sk__upload_publish {
  SK_UPLOAD_REPLACE,   /* over an existing file of that name (not a folder) */
  SK_UPLOAD_EXCLUSIVE, /* never over anything: SK_EEXISTS */
  SK_UPLOAD_NUMBERED,  /* never over anything: a taken "a.txt" is saved as
                        * "a (1).txt", "a (2).txt", ... up to (9999); the
                        * part file is the job's own (no resume) and the
                        * claim goes just before the rename */
};

/* What became of the job, handed to done. */
typedef struct sk__upload_result {
  int err;           /* 0, or the first failure (an SK_E* code) */
  const char *msg;   /* with err: a line for the peer, or NULL */
  uint64_t taken;    /* body bytes the job took */
  bool published;    /* the file is under its name, synced */
  bool cancelled;    /* cancelled (the part file kept for a resume) */
  const char *saved; /* the name published (NUMBERED: with its number) */
  const char *hash;  /* "ALG:HEX" of the whole file when hashed, else NULL */
} sk__upload_result;

typedef struct sk__upload_cfg {
  const sk_server *srv; /* whose root, and whose set of claimed names */
  uv_loop_t *loop;      /* the owner's loop: disk work goes to its pool */
  const char *name;     /* a checked name beneath the root; copied */
  uint64_t total;       /* the file's length */
  uint64_t offset;      /* bytes already in the part file (a resume) */
  unsigned mode;        /* permission bits of the published file */
  int64_t mtime;        /* with has_mtime: the published file's mtime */
  bool has_mtime;
  enum sk__upload_publish publish;
  const char *hash_alg; /* hash the file with this algorithm, or NULL */
  void *owner;
  /* The job can take bytes again after a short take or lend (or the owner's
   * sk__upload_wait). May call back into the job. */
  void (*resume)(void *owner);
  /* The job is over; it is freed when this returns. */
  void (*done)(void *owner, const sk__upload_result *r);
} sk__upload_cfg;

/* Claim the name and start the job (the part file opens on the pool).
 * Returns 0 with *out set, SK_EBUSY when another upload of the name is in
 * progress, or -ENOMEM; on error nothing was started and done never runs. */
int sk__upload_start(const sk__upload_cfg *cfg, sk__upload **out);

/* Copy up to n body bytes into the job; returns how many it took. Fewer
 * than n (memory full, or failed): the job calls resume when it has room. */
size_t sk__upload_take(sk__upload *u, const uint8_t *data, size_t n);

/* Bytes the job would take now. */
size_t sk__upload_room(const sk__upload *u);

/* Zero-copy: lend the free end of the job's memory (*buf) for the owner to
 * read into. Returns the room (> 0), or 0 (none now: resume follows). */
ssize_t sk__upload_lend(sk__upload *u, uint8_t **buf);
/* n bytes were read into the memory lent. */
void sk__upload_lent(sk__upload *u, size_t n);

/* Ask for resume once the job has more room (after a take the owner chose
 * not to make, e.g. a read that may not fit). */
void sk__upload_wait(sk__upload *u);

/* The body has ended (every byte was given, or the rest never comes). */
void sk__upload_end(sk__upload *u);

/* Publish once every byte is written (and hashed). client_hash ("ALG:HEX"),
 * when given, must match the file's or nothing is published. */
void sk__upload_commit(sk__upload *u, const char *client_hash);

/* Fail the job: the part file is removed and done reports err (the first
 * failure wins). */
void sk__upload_fail(sk__upload *u, int err, const char *msg);

/* The owner has gone: what was taken is written and the part file is kept
 * for a resume (result "cancelled"). */
void sk__upload_cancel(sk__upload *u);

#endif
