/* udp.h - datagram listeners (SPEC 5): the service side of them is
 * service/dgram.h. */
#ifndef SOCKIT_NET_UDP_H
#define SOCKIT_NET_UDP_H

#include "net/core.h"
#include "service/dgram.h"

#define SK_UDP_SENDQ (8u << 20) /* pushes are dropped above this much unsent */
#define SK_UDP_REPLAY_MAX 65536 /* (ts, n) remembered per minute; past it: dropped */

#endif
