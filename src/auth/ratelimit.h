/* ratelimit.h - failed authentications per source address (SPEC 4.3).
 *
 * Keyed by the IP as text without the port ("127.0.0.1", "::1"). Unix-socket
 * peers have no IP: pass NULL or "" and nothing is ever counted or blocked.
 * Thread-safe. Memory is bounded: idle entries are pruned and, when the table
 * is full, the entry touched longest ago is dropped. Times are seconds on any
 * monotonic clock, passed in so that tests can use a fake one.
 */
#ifndef SOCKIT_AUTH_RATELIMIT_H
#define SOCKIT_AUTH_RATELIMIT_H

#include <stddef.h>

#define SK__RATELIMIT_CAP 65536     /* default most addresses remembered */
#define SK__RATELIMIT_MAX_FAILS 256 /* largest max_fails accepted */

typedef struct sk__ratelimit sk__ratelimit;

/* max_fails wrong macs within window_s seconds start a ban of ban_s seconds
 * (SPEC: 5, 60, 60). NULL on bad arguments or no memory. */
sk__ratelimit *sk__ratelimit_new(unsigned max_fails, double window_s, double ban_s);

/* The same with a chosen capacity (at least 1), for tests and tuning. */
sk__ratelimit *sk__ratelimit_new_cap(unsigned max_fails, double window_s, double ban_s, size_t cap);

void sk__ratelimit_free(sk__ratelimit *rl);

/* 1 while ip is banned, else 0. */
int sk__ratelimit_blocked(sk__ratelimit *rl, const char *ip, double now);

/* Count one wrong mac from ip. Fails during a ban are not counted: the
 * server never gets that far with a banned address, and a ban that could be
 * extended forever by a third party would lock the real user out. */
void sk__ratelimit_fail(sk__ratelimit *rl, const char *ip, double now);

/* A right mac from ip forgets its earlier fails (not a running ban). */
void sk__ratelimit_success(sk__ratelimit *rl, const char *ip, double now);

/* How many addresses are remembered now (after pruning), for tests. */
size_t sk__ratelimit_size(sk__ratelimit *rl, double now);

#endif
