/* fastsend.h - a shortcut of the core for services whose response heads
 * are fixed text (echo, ping): no head object is built, encoded and freed
 * per response. */
#ifndef SOCKIT_NET_FASTSEND_H
#define SOCKIT_NET_FASTSEND_H

#include <stddef.h>

#include "sockit/server.h"

/* Like sk_conn_send, with the head given as compact JSON text: a non-empty
 * object whose "size" (if any) is bn and that has no "id" member. The core
 * adds the request's "id" as sk_conn_send does, so the bytes on the wire
 * are the same as for the equal head object. */
int sk__conn_send_text(sk_conn *c, const char *head, size_t n, const void *body, size_t bn);

#endif
