/* text.h - heads as compact JSON text, for the core's hot paths: a service
 * whose response head is fixed text (echo) is written without building a
 * head object, and only the request's "id" is copied into it as text. */
#ifndef SOCKIT_WIRE_TEXT_H
#define SOCKIT_WIRE_TEXT_H

#include <sys/types.h>

#include "sockit/frame.h"

/* The compact JSON of h's member key, exactly as sk_head_encode writes it
 * inside the object, into buf when it fits in cap. Returns its length, 0
 * when h has no such member, or a negative error. */
ssize_t sk__head_member_text(const sk_head *h, const char *key, char *buf, size_t cap);

#endif
