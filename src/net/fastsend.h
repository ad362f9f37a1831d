/* fastsend.h - sk__conn_send_text, a shortcut of the core for responses
 * whose heads are fixed text (echo, ping), is part of the service API. */
#ifndef SOCKIT_NET_FASTSEND_H
#define SOCKIT_NET_FASTSEND_H

#include "service/service.h"

#endif
