/* chat_names.c - what a room name or a nick may be, and when two nicks are
 * the same nick to a reader (SPEC 4.8).
 *
 * A name is drawn on other members' screens, so it may hold only characters
 * that draw as themselves: Unicode's graphic characters (letters, marks,
 * numbers, punctuation, symbols) minus every space and every default-ignorable
 * code point. That refuses C0/C1 controls and DEL (Cc), format characters such
 * as U+200B and U+2064 and the bidi controls (Cf), unassigned and private-use
 * code points (Cn, Co: a reader cannot know what they look like), and fillers
 * that are letters by category but draw as nothing (U+3164, U+115F). The
 * tables are ICU's, so they follow the Unicode version ICU ships.
 *
 * Two nicks are the same nick when their UTS #39 skeletons are equal
 * (Cyrillic "аlice" and Latin "alice", "rn" and "m"): one room never holds
 * two members a reader could mistake for each other. ICU's spoof checker
 * computes the skeleton; its const functions are thread-safe, so every loop
 * shares the server's one checker. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/uchar.h>
#include <unicode/uspoof.h>
#include <unicode/utf8.h>

#include "services/chat.h"

/* Valid UTF-8 (ICU's U8_NEXT is strict: no overlongs, surrogates or values
 * past U+10FFFF); each code point passed to ok, if given. */
static int utf8_all(const uint8_t *p, size_t n, int (*ok)(UChar32)) {
  int32_t i = 0, len = (int32_t)n;
  UChar32 c;
  if (n > INT32_MAX)
    return 0;
  while (i < len) {
    U8_NEXT(p, i, len, c);
    if (c < 0 || (ok != NULL && !ok(c)))
      return 0;
  }
  return 1;
}

int chat_valid_text(const uint8_t *p, size_t n) {
  return utf8_all(p, n, NULL);
}

static int draws_as_itself(UChar32 c) {
  uint32_t gc = U_MASK(u_charType(c));
  if (gc & (U_GC_C_MASK | U_GC_Z_MASK)) /* Cc Cf Cn Co Cs, Zs Zl Zp */
    return 0;
  return !u_hasBinaryProperty(c, UCHAR_DEFAULT_IGNORABLE_CODE_POINT) &&
         !u_hasBinaryProperty(c, UCHAR_WHITE_SPACE) && !u_hasBinaryProperty(c, UCHAR_BIDI_CONTROL);
}

int chat_valid_name(const char *s, size_t len) {
  if (s == NULL || len == 0 || len > CHAT_NAME_MAX || strlen(s) != len)
    return 0;
  return utf8_all((const uint8_t *)s, len, draws_as_itself);
}

int chat_names_open(struct USpoofChecker **out) {
  UErrorCode err = U_ZERO_ERROR;
  USpoofChecker *sc = uspoof_open(&err);
  if (U_SUCCESS(err))
    uspoof_setChecks(sc, USPOOF_CONFUSABLE, &err);
  if (U_FAILURE(err)) {
    uspoof_close(sc);
    *out = NULL;
    return err == U_MEMORY_ALLOCATION_ERROR ? -ENOMEM : -ENOENT; /* ENOENT: no ICU data */
  }
  *out = sc;
  return 0;
}

void chat_names_close(struct USpoofChecker *sc) {
  if (sc != NULL)
    uspoof_close(sc);
}

char *chat_nick_skeleton(const struct USpoofChecker *sc, const char *nick) {
  UErrorCode err = U_ZERO_ERROR;
  int32_t n = uspoof_getSkeletonUTF8(sc, 0, nick, -1, NULL, 0, &err);
  char *skel;
  if (err != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(err))
    return NULL;
  if (n < 0 || (skel = malloc((size_t)n + 1)) == NULL)
    return NULL;
  err = U_ZERO_ERROR;
  uspoof_getSkeletonUTF8(sc, 0, nick, -1, skel, n + 1, &err);
  if (U_FAILURE(err)) {
    free(skel);
    return NULL;
  }
  return skel;
}
