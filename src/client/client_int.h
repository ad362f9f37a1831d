/* client_int.h - what the client's files share inside the library. */
#ifndef SOCKIT_CLIENT_INT_H
#define SOCKIT_CLIENT_INT_H

#include "common/sized.h"
#include "sockit/auth.h"
#include "sockit/client.h"

/* Where ABI 1's option structs end (common/sized.h): the calls copy a
 * caller's struct into a whole one of their own with sk__sized_copy. */
/* (the TLS members came in the same release as size: ABI 1 has them) */
#define SK__CLIENT_OPTS_V1 SK__END_OF(sk_client_opts, tls_pin)
#define SK__PUT_OPTS_V1 SK__END_OF(sk_put_opts, result)
#define SK__GET_OPTS_V1 SK__END_OF(sk_get_opts, result)

/* The key the options name: o->key_file, else the default key file
 * (sk_key_default_path). 0, or sk_key_load's error (-ENOENT: no such file). */
int sk__client_load_key(const sk_client_opts *o, sk_key *key);

/* Tell o->on_step (when there is one) that step s starts (err 0) or failed. */
void sk__client_step(const sk_client_opts *o, sk_client_step s, int err, const char *detail);

#endif
