/* visible.h - text from peers shown to a human (log lines): every code
 * point that does not draw as itself is escaped, so that a peer cannot
 * forge a line, move the cursor (CSI, also the one-byte C1 CSI U+009B),
 * reverse the text that follows (U+202E) or hide characters. */
#ifndef SOCKIT_COMMON_VISIBLE_H
#define SOCKIT_COMMON_VISIBLE_H

#include <stddef.h>
#include <stdint.h>

/* 1 for code points shown escaped: controls and format characters (Cc, Cf),
 * separators other than the ASCII space (Zs, Zl, Zp), surrogates, private
 * use and unassigned (Cs, Co, Cn), bidi controls and default-ignorable
 * code points (U+3164, U+200B, ...). */
int sk__cp_hidden(int32_t c);

/* 1 when s (n bytes) is valid UTF-8 with no hidden code point. */
int sk__text_visible(const char *s, size_t n);

/* s (n bytes) as a JSON string literal, quotes included: `"` and `\` and
 * every hidden code point escaped as \uXXXX (pairs above U+FFFF), every
 * byte that is not valid UTF-8 as \ufffd. Writes at most cap bytes and a
 * NUL (when cap > 0), never cutting an escape. Returns the bytes written,
 * without the NUL. */
size_t sk__quote_visible(char *out, size_t cap, const char *s, size_t n);

#endif
