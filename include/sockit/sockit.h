/* sockit/sockit.h - everything in libsockit, in one include.
 *
 *   sockit/error.h   one error table, sk_strerror
 *   sockit/frame.h   the frame codec and heads (usable alone)
 *   sockit/auth.h    keys and the HMAC challenge-response
 *   sockit/server.h  the server framework (services, connections)
 *   sockit/client.h  a blocking client
 */
#ifndef SOCKIT_SOCKIT_H
#define SOCKIT_SOCKIT_H

#include "sockit/version.h"
#include "sockit/error.h"
#include "sockit/frame.h"
#include "sockit/auth.h"
#include "sockit/server.h"
#include "sockit/client.h"

#endif
