/* metric.h - the names of what the server counts (SPEC 10's /metrics), for
 * the core and for services (sk__conn_metric, sk__server_metric in
 * service/service.h). The per-loop counters are src/net/metrics.h's. */
#ifndef SOCKIT_SERVICE_METRIC_H
#define SOCKIT_SERVICE_METRIC_H

/* Scalar counters and gauges. The names and help texts are in metrics.c. */
enum sk_metric {
  SK_M_AUTH_FAILURES,  /* wrong macs */
  SK_M_RATE_LIMITED,   /* connections refused as rate_limited */
  SK_M_CHAT_SAID,      /* say requests accepted */
  SK_M_CHAT_DELIVERED, /* msg frames queued to members */
  SK_M_FILES_PUT,      /* uploads published */
  SK_M_FILES_GET,      /* downloads sent whole */
  SK_M_BYTES_PUT,      /* upload body bytes received */
  SK_M_BYTES_GET,      /* download body bytes queued */
  SK_M_EXEC_OK,        /* exec runs by exit class: exit code 0 */
  SK_M_EXEC_ERROR,     /* exit code != 0 (127: did not start) */
  SK_M_EXEC_SIGNAL,    /* ended by a signal */
  SK_M_EXEC_TIMEOUT,   /* killed at the timeout */
  SK_M_TLS_HANDSHAKES, /* TLS handshakes completed */
  SK_M_TLS_FAILURES,   /* TLS handshakes failed */
  SK_M_HTTP_REQUESTS,  /* HTTP requests answered (any status) */
  SK_M_WS_UPGRADES,    /* WebSocket connections opened at /ws */
  SK_G_CHAT_ROOMS,     /* gauge: rooms with members */
  SK_G_CHAT_MEMBERS,   /* gauge: room memberships */
  SK_G_REDIS_UP,       /* gauge: Redis links up (--chat-redis: one per loop) */
  SK_M_REDIS_DROPS,    /* Redis links that went down while up */
  SK_M_COUNT
};

#endif
