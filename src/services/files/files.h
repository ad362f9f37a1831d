/* files.h - the files service's internal pieces (SPEC 4.7).
 *
 * One files_conn per connection; at most one transfer (put or get) or one
 * small request (stat, list) is active on it, because the core runs one
 * request at a time. Every callback runs on the connection's loop thread;
 * disk work runs on libuv's thread pool and touches only its job's fields. */
#ifndef SOCKIT_FILES_FILES_H
#define SOCKIT_FILES_FILES_H

#include <stdint.h>
#include <uv.h>

#include "sockit/server.h"

typedef struct sk__put sk__put;
typedef struct sk__get sk__get;

typedef struct files_conn {
  sk_conn *c;
  sk__put *put; /* the upload in progress, NULL otherwise */
  sk__get *get; /* the download in progress, NULL otherwise */
} files_conn;

/* put.c */
int sk__put_handle(sk_conn *c, const sk_request *req);
ssize_t sk__put_body(sk_conn *c, void *state, const uint8_t *data, size_t n);
ssize_t sk__put_body_buf(sk_conn *c, void *state, uint8_t **buf);
void sk__put_body_got(sk_conn *c, void *state, size_t n);
int sk__put_end(sk_conn *c, const sk_request *req);
void sk__put_cancel(files_conn *fc); /* the connection closed */
uint64_t sk__put_limit(const sk_server *srv);

/* get.c */
int sk__get_handle(sk_conn *c, const sk_request *req);
void sk__get_drained(files_conn *fc);
void sk__get_cancel(files_conn *fc);

/* list.c: stat, list, rm and mkdir */
int sk__stat_handle(sk_conn *c, const sk_request *req);
int sk__list_handle(sk_conn *c, const sk_request *req);
int sk__rm_handle(sk_conn *c, const sk_request *req);
int sk__mkdir_handle(sk_conn *c, const sk_request *req);

/* files.c: names being uploaded, server-wide (busy for a second writer).
 * claim returns 0 or SK_EBUSY; release forgets the name. */
int sk__files_claim(const sk_server *srv, const char *name);
void sk__files_release(const sk_server *srv, const char *name);

/* files.c: read a name member and validate it; 0 or SK_EFORBIDDEN /
 * SK_EBADREQ, *msg set to a line for the client. */
int sk__files_name(const sk_head *h, int empty_ok, const char **name, const char **msg);

/* Monotonic seconds, for log durations. */
double sk__files_now(void);

#endif
