/* hmac_md5.h - HMAC-MD5, for the tutorial-compatible "seed" auth service
 * (SPEC 6) only. MD5 is broken as a hash; it is here for interoperability,
 * never for the native protocol. */
#ifndef SOCKIT_AUTH_HMAC_MD5_H
#define SOCKIT_AUTH_HMAC_MD5_H

#include <stddef.h>
#include <stdint.h>

/* out = HMAC-MD5(key, msg). Returns 0, -EINVAL or SK_EINTERNAL. */
int sk__hmac_md5(const void *key, size_t klen, const void *msg, size_t mlen, uint8_t out[16]);

#endif
