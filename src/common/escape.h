/* escape.h - untrusted text made safe to show on a terminal or in a log line.
 *
 * Text from a peer (chat bodies, nicks, room names, file names, error
 * messages) may hold bytes that a terminal obeys rather than shows: a newline
 * that forges a whole line, ESC sequences (CSI clears the screen, OSC 52
 * writes the clipboard, OSC 0 retitles the window), C1 controls (U+009B is a
 * one-character CSI), and invisible or reordering code points (U+202E turns
 * the rest of a line around, U+200B hides inside a name). These functions
 * show every such thing as a visible escape instead, as `ncat --chat` does:
 *
 *   C0 controls, DEL    \n \r \t, else \xNN        ("\x1b", "\x7f")
 *   invalid UTF-8       \xNN for each byte that is not part of a valid sequence
 *   C1, format (Cf),    \uNNNN or \U00NNNNNN       ("\u009b", "\u202e")
 *   bidi, line and paragraph separators, invisible fillers and other
 *   default-ignorable code points
 *
 * Everything else, printable UTF-8 included, passes through unchanged. Two
 * code points stay: U+200D (zero width joiner) and U+FE00..U+FE0F (variation
 * selectors), which emoji need and which cannot move or hide text.
 */
#ifndef SOCKIT_COMMON_ESCAPE_H
#define SOCKIT_COMMON_ESCAPE_H

#include <stddef.h>
#include <stdint.h>

/* Is cp a code point that must not reach a terminal as itself? */
int sk__cp_is_unsafe(uint32_t cp);

/* Does s (n bytes) hold anything sk__escape_text would change? */
int sk__text_needs_escape(const char *s, size_t n);

/* Write the escaped form of s (n bytes) into out (cap bytes, always
 * NUL-terminated when cap > 0; cut at a whole escape). Returns the length
 * the whole escaped text needs, without the NUL, as snprintf does. */
size_t sk__escape_text(char *out, size_t cap, const char *s, size_t n);

#endif
