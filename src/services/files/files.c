/* files.c - the files service table (SPEC 4.7): put / put_end, get, stat,
 * list, rm and mkdir, the hashes offered in hello, and the server-wide set of names
 * being uploaded. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "service/service.h"
#include "services/files/files.h"
#include "common/hash.h"
#include "common/names.h"
#include "services/services.h"
#include "sockit/error.h"

/* Names being written, across every loop of every server in the process. A
 * short list: one entry per upload in progress. */
typedef struct busy_name {
  struct busy_name *next;
  const sk_server *srv;
  char name[];
} busy_name;

static pthread_mutex_t busy_lock = PTHREAD_MUTEX_INITIALIZER;
static busy_name *busy;

int sk__files_claim(const sk_server *srv, const char *name) {
  size_t n = strlen(name) + 1;
  busy_name *b;
  int rc = 0;
  pthread_mutex_lock(&busy_lock);
  for (b = busy; b != NULL; b = b->next)
    if (b->srv == srv && strcmp(b->name, name) == 0)
      break;
  if (b != NULL) {
    rc = SK_EBUSY;
  } else if ((b = malloc(sizeof(*b) + n)) == NULL) {
    rc = -ENOMEM;
  } else {
    b->srv = srv;
    memcpy(b->name, name, n);
    b->next = busy;
    busy = b;
  }
  pthread_mutex_unlock(&busy_lock);
  return rc;
}

void sk__files_release(const sk_server *srv, const char *name) {
  pthread_mutex_lock(&busy_lock);
  for (busy_name **pp = &busy; *pp != NULL; pp = &(*pp)->next) {
    if ((*pp)->srv == srv && strcmp((*pp)->name, name) == 0) {
      busy_name *b = *pp;
      *pp = b->next;
      free(b);
      break;
    }
  }
  pthread_mutex_unlock(&busy_lock);
}

int sk__files_name(const sk_head *h, int empty_ok, const char **name, const char **msg) {
  *name = sk_head_str(h, "name");
  if (*name == NULL && empty_ok && !sk_head_has(h, "name")) {
    *name = "";
    return 0;
  }
  if (*name == NULL) {
    *msg = "name must be a string";
    return SK_EBADREQ;
  }
  if (sk__name_check(*name, sk_head_strlen(h, "name"), empty_ok) < 0) {
    *msg = "bad name: relative '/'-separated path, no empty, '.' or '..' component, no NUL, "
           "at most 4096 bytes and 255 per component";
    return SK_EFORBIDDEN;
  }
  return 0;
}

double sk__files_now(void) {
  return (double)uv_hrtime() / 1e9;
}

static int setup(sk_conn *c, void **state) {
  files_conn *fc = calloc(1, sizeof(*fc));
  if (fc == NULL)
    return -ENOMEM;
  fc->c = c;
  *state = fc;
  return 0;
}

/* The connection is gone: a transfer still running lets go of it and frees
 * itself once its disk work is over (an upload keeps its part file). */
static void finish(sk_conn *c, void *state) {
  files_conn *fc = state;
  sk__put_cancel(fc);
  sk__get_cancel(fc);
  free(fc);
}

static void drained(sk_conn *c, void *state) {
  sk__get_drained(state);
}

static void hello(const sk_server *srv, sk_head *h) {
  size_t n;
  const char *const *names = sk__hash_names(&n);
  sk_head_set_strv(h, "hashes", names, n);
}

/* The root is made only on a server that serves files. */
static int files_start(sk_server *srv) {
  const char *why = NULL;
  int rc = sk__server_root_open(srv, &why);
  if (rc < 0)
    sk__service_failed(srv, why);
  return rc;
}

const sk__option sk__files_options[] = {
    {.name = "max-file",
     .kind = SK__OPT_SIZE,
     .def = (int64_t)SK_SIZE_MAX,
     .max = (int64_t)SK_SIZE_MAX,
     .arg = "B",
     .help = "upload size limit (default none)"},
    {0},
};

static const sk_handler handlers[] = {
    {.type = "put",
     .handle = sk__put_handle,
     .body = sk__put_body,
     .flags = SK_H_STREAM,
     .limit = sk__put_limit,
     .body_buf = sk__put_body_buf,
     .body_got = sk__put_body_got},
    {.type = "put_end", .handle = sk__put_end, .flags = SK_H_FOLLOW},
    {.type = "get", .handle = sk__get_handle},
    {.type = "stat", .handle = sk__stat_handle},
    {.type = "list", .handle = sk__list_handle},
    {.type = "rm", .handle = sk__rm_handle},
    {.type = "mkdir", .handle = sk__mkdir_handle},
    {0},
};

const sk_service sk__svc_files = {.name = "files",
                                  .handlers = handlers,
                                  .setup = setup,
                                  .finish = finish,
                                  .drained = drained,
                                  .hello = hello,
                                  .start = files_start};
