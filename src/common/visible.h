/* visible.h - text from peers in log lines: every code point that
 * sk__cp_is_unsafe names (escape.h: controls, C1, format and bidi
 * characters, separators, default ignorables) is escaped, so that a peer
 * cannot forge a line, move the cursor (CSI, also the one-byte C1 CSI
 * U+009B), reverse the text that follows (U+202E) or hide characters. */
#ifndef SOCKIT_COMMON_VISIBLE_H
#define SOCKIT_COMMON_VISIBLE_H

#include <stddef.h>
#include <stdint.h>

/* s (n bytes) as a JSON string literal, quotes included: `"` and `\` and
 * every code point sk__cp_is_unsafe names escaped as \uXXXX (pairs above U+FFFF), every
 * byte that is not valid UTF-8 as \ufffd. Writes at most cap bytes and a
 * NUL (when cap > 0), never cutting an escape. Returns the bytes written,
 * without the NUL. */
size_t sk__quote_visible(char *out, size_t cap, const char *s, size_t n);
/* A JSON text (json, n bytes, as an encoder wrote it: C0 controls already
 * escaped) with every other code point sk__cp_is_unsafe names, DEL, C1,
 * format and bidi characters, spelled \uXXXX, and bytes that are not UTF-8
 * as \ufffd: it parses to the same value and shows nothing a terminal obeys.
 * Writes at most cap - 2 bytes and a NUL, never cutting an escape (6 * n + 2
 * always fits); returns the bytes written. */
size_t sk__json_visible(char *out, size_t cap, const char *json, size_t n);

#endif
