/* client_int.h - what the client's files share inside the library. */
#ifndef SOCKIT_CLIENT_INT_H
#define SOCKIT_CLIENT_INT_H

#include "sockit/auth.h"
#include "sockit/client.h"

/* The key the options name: o->key_file, else the default key file
 * (sk_key_default_path). 0, or sk_key_load's error (-ENOENT: no such file). */
int sk__client_load_key(const sk_client_opts *o, sk_key *key);

#endif
