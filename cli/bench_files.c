/* bench_files.c - `sockit bench --mode put|get`: one large transfer through
 * the files service (SPEC 4.7) with the library's own put/get, timed from
 * the request to the server's confirmation. The transfer is verified by the
 * hash both sides agree on (the fastest both offer, unless --hash says),
 * and a get is also compared byte for byte with its source afterwards. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "common/sock.h"
#include "progress.h"

#define CHUNK (1u << 20)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Where scratch files go: tmpfs when there is one, so the disk is not
 * what gets measured. */
static const char *scratch_dir(void) {
  struct stat st;
  return stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
}

/* A source file of size pseudo-random bytes (so a hash cannot shortcut). */
static int make_source(const char *path, uint64_t size) {
  uint8_t *buf = malloc(CHUNK);
  uint64_t x = 88172645463325252ull;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), rc = 0;
  if (fd < 0 || buf == NULL) {
    rc = fd < 0 ? -errno : -ENOMEM;
    goto out;
  }
  for (uint64_t done = 0; rc == 0 && done < size; done += CHUNK) {
    size_t n = size - done < CHUNK ? (size_t)(size - done) : CHUNK;
    for (size_t i = 0; i + 8 <= CHUNK; i += 8) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      memcpy(buf + i, &x, 8);
    }
    rc = sk__write_all(fd, buf, n);
  }
out:
  if (fd >= 0)
    close(fd);
  free(buf);
  return rc;
}

/* Are two files equal byte for byte? 1 yes, 0 no, negative on error. */
static int same_file(const char *a, const char *b) {
  FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
  static uint8_t ba[CHUNK], bb[CHUNK];
  int same = fa && fb ? 1 : -ENOENT;
  while (same == 1) {
    size_t na = fread(ba, 1, CHUNK, fa), nb = fread(bb, 1, CHUNK, fb);
    if (na != nb || memcmp(ba, bb, na) != 0)
      same = 0;
    else if (na == 0)
      break;
  }
  if (fa)
    fclose(fa);
  if (fb)
    fclose(fb);
  return same;
}

static int fail(bench_result *r, int code, const char *what, int rc, const sk_xfer_result *x) {
  r->code = code;
  snprintf(r->error, sizeof(r->error), "%s: %s%s%.300s", what, sk_strerror(rc),
           x && x->message[0] ? ": " : "", x ? x->message : "");
  return code;
}

static int timed_put(const bench_opts *o, bench_result *r, sk_client *c, const char *src,
                     const char *name, cli_progress *bar) {
  sk_xfer_result x = {0};
  sk_put_opts po = {.hash = o->hash, .result = &x};
  if (bar != NULL) {
    po.progress = cli_progress_update;
    po.progress_ctx = bar;
  }
  double t0 = now_s();
  int rc = sk_client_put_file(c, src, name, &po);
  r->seconds = now_s() - t0;
  if (rc < 0)
    return fail(r, EXIT_FAIL, "put", rc, &x);
  r->body_bytes = x.total;
  snprintf(r->hash, sizeof(r->hash), "%s", x.hash[0] ? x.hash : "none");
  return EXIT_OK;
}

static int timed_get(const bench_opts *o, bench_result *r, sk_client *c, const char *name,
                     const char *src, cli_progress *bar) {
  char out[4200];
  sk_xfer_result x = {0};
  sk_get_opts go = {.hash = o->hash, .result = &x};
  if (bar != NULL) {
    go.progress = cli_progress_update;
    go.progress_ctx = bar;
  }
  snprintf(out, sizeof(out), "%s/sockit-bench-get-%ld.bin", scratch_dir(), (long)getpid());
  double t0 = now_s();
  int rc = sk_client_get_file(c, name, out, &go);
  r->seconds = now_s() - t0;
  if (rc == 0) {
    r->body_bytes = x.total;
    snprintf(r->hash, sizeof(r->hash), "%s", x.hash[0] ? x.hash : "none");
    if (same_file(src, out) != 1)
      rc = SK_EHASHMISMATCH; /* caught by our own comparison, whatever the hash said */
  }
  unlink(out);
  return rc < 0 ? fail(r, EXIT_FAIL, "get", rc, &x) : EXIT_OK;
}

/* Upload (put) or upload untimed and download (get) one file. */
int bench_files(const bench_opts *o, bench_result *r, sk_client *c) {
  char src[4200], name[128];
  cli_progress bar;
  int made = o->file == NULL, code;
  snprintf(src, sizeof(src), "%s", o->file ? o->file : "");
  if (made)
    snprintf(src, sizeof(src), "%s/sockit-bench-src-%ld.bin", scratch_dir(), (long)getpid());
  snprintf(name, sizeof(name), "sockit-bench.bin"); /* replaced run after run */
  if (made && make_source(src, o->size) < 0) {
    sk_client_close(c);
    snprintf(r->error, sizeof(r->error), "cannot write the source file %.400s", src);
    return r->code = EXIT_FAIL;
  }
  sk_client_set_timeout(c, -1); /* a transfer takes as long as it takes */
  code = EXIT_OK;
  cli_progress_start(&bar, o->mode == BENCH_PUT ? "put" : "get", o->quiet || o->json);
  if (code == EXIT_OK && o->mode == BENCH_PUT)
    code = timed_put(o, r, c, src, name, &bar);
  if (code == EXIT_OK && o->mode == BENCH_GET && (code = timed_put(o, r, c, src, name, NULL)) == 0)
    code = timed_get(o, r, c, name, src, &bar);
  cli_progress_end(&bar);
  sk_client_close(c);
  if (made)
    unlink(src);
  return r->code = code;
}
