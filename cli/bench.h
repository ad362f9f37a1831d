/* bench.h - what `sockit bench` shares between its command front (bench.c)
 * and its load engine (bench_run.c). */
#ifndef SOCKIT_CLI_BENCH_H
#define SOCKIT_CLI_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "common/hist.h"
#include "sockit/client.h"

enum bench_mode { BENCH_ECHO, BENCH_RTT, BENCH_CONNS, BENCH_CHAT, BENCH_PUT, BENCH_GET };

/* How the engine's connections are protected: what a first connection
 * through the library found the server to speak (SPEC 8). */
enum bench_security { BENCH_PLAIN, BENCH_TLS_PSK, BENCH_TLS_CERT };

typedef struct bench_opts {
  const char *addr;
  int quiet, json;
  sk_client_opts client; /* key, --no-auth, TLS options: as every client command takes them */
  enum bench_security security; /* set by the probe connection before the run */
  char security_text[96];       /* "TLS 1.3 (psk), TLS_AES_128_GCM_SHA256" or "plain" */
  enum bench_mode mode;
  int conns, pipeline, threads, connect_batch;
  int senders;      /* chat: members that say messages (the first ones) */
  size_t size;      /* echo body bytes; chat message bytes */
  double duration;  /* seconds measured (echo, rtt) */
  double warmup;    /* seconds run before measuring */
  double rate;      /* requests/s over all connections; 0: closed loop */
  double hold;      /* conns: seconds over which the pings are spread */
  double timeout;   /* connect+auth phase and final drain, seconds */
  long server_pid;  /* conns: whose RSS to watch; 0: none */
  const char *file; /* put/get: the source; NULL: --size bytes made in scratch */
  const char *hash; /* put/get: NULL the fastest both sides have, or a name, or "none" */
} bench_opts;

/* What the front shows while the run goes on. */
typedef struct bench_status {
  int phase;              /* 0 connecting, 1 warming up, 2 measuring, 3 draining */
  int ready, total, lost; /* lost: ready connections that failed since */
  uint64_t done;          /* responses so far, warm-up included */
  double elapsed;         /* seconds since the traffic started (phase > 0) */
} bench_status;

typedef struct bench_result {
  sk_hist hist;                  /* latency in ns, from each request's intended send time */
  uint64_t requests, body_bytes; /* chat: deliveries (a message at one member) */
  uint64_t says;                 /* chat: messages said (and seen back by their sender) */
  double seconds, setup_s;
  int established, answered;
  long rss_before_kb, rss_after_kb; /* -1: not measured */
  int code;                         /* EXIT_OK, EXIT_FAIL or EXIT_CONN */
  int interrupted;                  /* by SIGINT: the figures cover part of the run */
  char hash[160];                   /* put/get: "ALG:HEX" agreed on, or "none" */
  char error[512];
} bench_result;

typedef void (*bench_progress_fn)(void *ctx, const bench_status *st);

/* Run the load described by o and fill r (r->code is also returned). Blocks;
 * progress runs about four times a second on the calling thread. A SIGINT
 * ends the run early with what was measured so far (code EXIT_FAIL). */
int bench_run(const bench_opts *o, bench_result *r, bench_progress_fn progress, void *ctx);

/* put/get modes (bench_files.c): one timed transfer over c (the probe's
 * connection; closed here); fills r->seconds, r->body_bytes and r->hash.
 * Returns r->code. */
int bench_files(const bench_opts *o, bench_result *r, sk_client *c);

#endif
