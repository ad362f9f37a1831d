/* ratelimit.h - penalties for failed authentications per source (SPEC 4.3).
 *
 * The policy, after OpenSSH's PerSourcePenalties: max_fails wrong macs
 * within `window` seconds start a penalty of `first` seconds; once a
 * penalty has ended, each further wrong mac starts the next one at twice
 * the length of the last, up to `max`; `decay` seconds after the last
 * penalty ended with no wrong mac since, the source is forgotten. Wrong macs
 * during a penalty are not counted (the server refuses before it gets that
 * far), so a third party cannot extend a running penalty.
 *
 * A source is a key made by sk__ratelimit_source: the IPv4 address, the
 * IPv6 /64, or the uid of a Unix-socket peer. An empty or NULL key is never
 * counted or blocked (exempt peers). Thread-safe. Memory is bounded: idle
 * entries are pruned and, when the table is full, the entry touched longest
 * ago is dropped. Times are seconds on any monotonic clock, passed in by the
 * caller (the server's clock, or a test's). */
#ifndef SOCKIT_AUTH_RATELIMIT_H
#define SOCKIT_AUTH_RATELIMIT_H

#include <stddef.h>
#include <sys/socket.h>

#define SK__RATELIMIT_CAP 65536     /* default most sources remembered */
#define SK__RATELIMIT_MAX_FAILS 256 /* largest max_fails accepted */
#define SK__RATELIMIT_KEY 64        /* a source key's size, with its NUL */

typedef struct sk__ratelimit sk__ratelimit;

typedef struct sk__rl_policy {
  unsigned max_fails; /* wrong macs ... */
  double window;      /* ... within this many seconds start the first penalty */
  double first;       /* the first penalty, seconds */
  double max;         /* the longest penalty */
  double decay;       /* forgotten this long after a penalty with no fail since */
} sk__rl_policy;

/* SPEC 4.3 v2: 5 within 60 s, 5 s doubling up to 600 s, decay after 600 s. */
extern const sk__rl_policy sk__rl_spec_policy;

/* NULL policy: the SPEC's; cap 0: SK__RATELIMIT_CAP. NULL on bad arguments
 * or no memory. */
sk__ratelimit *sk__ratelimit_new(const sk__rl_policy *policy, size_t cap);
void sk__ratelimit_free(sk__ratelimit *rl);

/* Seconds of penalty left for key (> 0 while blocked), else 0. */
double sk__ratelimit_blocked(sk__ratelimit *rl, const char *key, double now);

/* Count one wrong mac from key (see the policy above). */
void sk__ratelimit_fail(sk__ratelimit *rl, const char *key, double now);

/* A right mac from key forgets the wrong macs not yet punished; a penalty
 * level reached stays until it decays. */
void sk__ratelimit_success(sk__ratelimit *rl, const char *key, double now);

/* How many sources are remembered now (after pruning), for tests. */
size_t sk__ratelimit_size(sk__ratelimit *rl, double now);

/* How many sources are in a penalty now (/metrics; walks the table). */
size_t sk__ratelimit_penalized(sk__ratelimit *rl, double now);

/* The source key of a peer: "192.0.2.1" (also for ::ffff:192.0.2.1),
 * "2001:db8:1:2::/64" (an IPv6 address's /64: one host holds them all), or
 * "uid:1000" for a Unix-socket peer (SO_PEERCRED on fd). Writes "" when
 * none can be told (then nothing is counted). Returns key. */
char *sk__ratelimit_source(const struct sockaddr *sa, int fd, char key[SK__RATELIMIT_KEY]);

#endif
