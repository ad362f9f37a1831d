/* fuzz_server.h - a real server for the harnesses that drive one (header
 * only): options set as `sockit serve` takes them, run on a thread. */
#ifndef SOCKIT_FUZZ_SERVER_H
#define SOCKIT_FUZZ_SERVER_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fuzz_common.h"
#include "sockit/error.h"
#include "sockit/server.h"

/* The thread that runs the server (arg: the sk_server). */
static inline void *fz_serve(void *arg) {
  const char *why = NULL;
  int rc = sk_server_run(arg, 0, &why);
  if (rc < 0)
    fprintf(stderr, "fuzz: the server did not start: %s\n", why ? why : sk_strerror(rc));
  FUZZ_CHECK(rc == 0);
  return NULL;
}

/* One option, or abort: a harness with a bad setup finds nothing. */
static inline void fz_set(sk_server *srv, const char *name, const char *value) {
  const char *why = NULL;
  if (sk_server_set(srv, name, value, &why) < 0) {
    fprintf(stderr, "fuzz: --%s %s: %s\n", name, value ? value : "", why ? why : "bad value");
    abort();
  }
}

/* A fresh folder from tmpl ("/tmp/sk-fuzz-NAME-XXXXXX") into dir, and
 * in it a key file (mode 0600) whose path goes into key. */
static inline void fz_workdir(char *dir, size_t dircap, const char *tmpl, char *key,
                              size_t keycap) {
  FILE *k;
  snprintf(dir, dircap, "%s", tmpl);
  FUZZ_CHECK(mkdtemp(dir) != NULL);
  snprintf(key, keycap, "%s/key", dir);
  FUZZ_CHECK((k = fopen(key, "w")) != NULL);
  fputs("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", k);
  fclose(k);
  chmod(key, 0600);
}

/* Run srv on a detached thread of its own. */
static inline void fz_start(sk_server *srv) {
  pthread_t t;
  FUZZ_CHECK(pthread_create(&t, NULL, fz_serve, srv) == 0);
  pthread_detach(t);
}

#endif
