/* version.c - the version of the library actually linked, which may differ
 * from the SK_VERSION a program was compiled against. */
#include "sockit/version.h"

const char *sk_version(void) {
  return SK_VERSION;
}
