/* fastpath.h - jansson-free shortcuts for the common flat heads, such as
 * {"type":"echo","size":64,"id":7} (src/wire only).
 *
 * Both are strict subsets of what jansson does: they handle only input they
 * can check completely and otherwise say "not mine", and jansson decides.
 * tests/unit/test_fastpath.c checks them against jansson on random input. */
#ifndef SOCKIT_WIRE_FASTPATH_H
#define SOCKIT_WIRE_FASTPATH_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

/* Parse a compact flat object: no whitespace, keys and string values of
 * printable ASCII without escapes, integers of at most 18 digits, true,
 * false, null. Returns the object (the same json_loadb would build), or
 * NULL for anything else, including out of memory: call jansson then. */
json_t *sk__head_parse_fast(const char *s, size_t n);

/* Compact JSON of a flat object (the values above) into buf, exactly as
 * json_dumpb(JSON_COMPACT) writes it. Returns the length (written only if
 * it fits in cap), or -1 when the object is not flat or its text would pass
 * 1 KiB: call jansson then. */
ssize_t sk__head_dump_fast(const json_t *o, char *buf, size_t cap);

/* The same for one value of such an object (a string, integer, true, false
 * or null): its length, or -1 for any other value (call jansson then). */
ssize_t sk__value_dump_fast(const json_t *v, char *buf, size_t cap);

#endif
