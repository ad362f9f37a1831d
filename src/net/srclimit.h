/* srclimit.h - how many answers a datagram source may get per second.
 *
 * A datagram's sender address can be forged, so every answer to an address
 * that has not proven it receives there (a --no-auth UDP peer before its
 * cookie, any daytime or RFC 868 client) may land on a victim. Each source
 * (an IPv4 address, an IPv6 /64) gets a token bucket: `rate` answers a
 * second, bursts of `burst`. The table has a fixed number of slots; a slot
 * whose bucket has refilled is free again, and when every slot a source may
 * use is held by a source still spending, the answer is refused: under a
 * flood of forged sources the server answers less, never more.
 * One thread only (the UDP loop): no lock. The struct is here only so that
 * its owner can hold it inline (listeners are freed with a plain free()):
 * touch it through the functions.
 */
#ifndef SOCKIT_NET_SRCLIMIT_H
#define SOCKIT_NET_SRCLIMIT_H

#include <stdint.h>
#include <sys/socket.h>

#define SK_SRCLIMIT_RATE 10  /* answers per second per source */
#define SK_SRCLIMIT_BURST 20 /* answers at once */

#define SK_SRCLIMIT_SLOTS 4096 /* sources remembered at once */

typedef struct sk__srclimit_bucket {
  uint8_t key[9]; /* family tag + 4 (IPv4) or 8 (IPv6 /64) bytes; [0] == 0: free */
  uint32_t milli; /* answers left, in thousandths */
  uint64_t last;  /* ms of the last refill */
} sk__srclimit_bucket;

typedef struct sk__srclimit {
  uint32_t rate, burst; /* per second; at once */
  uint64_t seed;
  sk__srclimit_bucket slots[SK_SRCLIMIT_SLOTS];
} sk__srclimit;

/* Start l (zeroed or not) empty. */
void sk__srclimit_init(sk__srclimit *l, unsigned rate, unsigned burst);

/* May sa be answered now (now_ms: a monotonic clock)? 1 and one answer is
 * spent, or 0. */
int sk__srclimit_take(sk__srclimit *l, const struct sockaddr *sa, uint64_t now_ms);

#endif
