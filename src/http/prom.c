/* prom.c - the /metrics page: every loop's counters added up and written in
 * the Prometheus text exposition format 0.0.4 (# HELP, # TYPE, samples). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "net/core.h"

typedef struct out {
  char *p;
  size_t len, cap;
  int failed;
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...) {
  va_list ap;
  int n;
  if (o->failed)
    return;
  for (;;) {
    va_start(ap, fmt);
    n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      o->failed = 1;
      return;
    }
    if ((size_t)n < o->cap - o->len)
      break;
    size_t cap = o->cap * 2 + (size_t)n;
    char *p = realloc(o->p, cap);
    if (p == NULL) {
      o->failed = 1;
      return;
    }
    o->p = p;
    o->cap = cap;
  }
  o->len += (size_t)n;
}

static void family(out *o, const char *name, const char *type, const char *help) {
  put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped (0.0.4). */
static void put_label(out *o, const char *v) {
  for (; *v; v++) {
    if (*v == '\\' || *v == '"')
      put(o, "\\%c", *v);
    else if (*v == '\n')
      put(o, "\\n");
    else
      put(o, "%c", *v);
  }
}

static const char *type_name(const sk_server *srv, int t) {
  if (t == SK_MT_AUTH)
    return "auth";
  if (t == SK_MT_OTHER)
    return "other";
  return srv->handlers[t].h->type;
}

/* Types worth a line: every enabled handler's, and any that was counted. */
static int type_shown(const sk_server *srv, const sk__metrics *m, int t) {
  if (t < srv->nhandlers && srv->enabled[srv->handlers[t].svc] == 1)
    return 1;
  for (int k = 0; k < SK_MC_COUNT; k++)
    if (m->req[t][k] > 0)
      return 1;
  return 0;
}

static const char *code_name(int k) {
  return k == 0 ? "ok" : sk_err_wire_name(SK_EFIRST_ + k);
}

static void requests(out *o, const sk_server *srv, const sk__metrics *m) {
  family(o, "sockit_requests_total", "counter",
         "Requests answered, by request type and result code (ok or the error code).");
  for (int t = 0; t < SK_MT_COUNT; t++) {
    if (t >= srv->nhandlers && t < SK_MAX_HANDLERS)
      continue;
    if (!type_shown(srv, m, t))
      continue;
    for (int k = 0; k < SK_MC_COUNT; k++)
      if (k == 0 || m->req[t][k] > 0)
        put(o, "sockit_requests_total{type=\"%s\",code=\"%s\"} %llu\n", type_name(srv, t),
            code_name(k), (unsigned long long)m->req[t][k]);
  }
  family(o, "sockit_request_duration_seconds", "histogram",
         "Time from a request's arrival to its last answer, by request type.");
  for (int t = 0; t < SK_MT_COUNT; t++) {
    uint64_t cum = 0;
    if ((t >= srv->nhandlers && t < SK_MAX_HANDLERS) || !type_shown(srv, m, t))
      continue;
    for (int b = 0; b <= SK_MBUCKETS; b++) {
      cum += m->dur_bucket[t][b];
      if (b < SK_MBUCKETS)
        put(o, "sockit_request_duration_seconds_bucket{type=\"%s\",le=\"%g\"} %llu\n",
            type_name(srv, t), sk__metric_bucket_s[b], (unsigned long long)cum);
      else
        put(o, "sockit_request_duration_seconds_bucket{type=\"%s\",le=\"+Inf\"} %llu\n",
            type_name(srv, t), (unsigned long long)cum);
    }
    put(o, "sockit_request_duration_seconds_sum{type=\"%s\"} %.9f\n", type_name(srv, t),
        (double)m->dur_ns[t] / 1e9);
    put(o, "sockit_request_duration_seconds_count{type=\"%s\"} %llu\n", type_name(srv, t),
        (unsigned long long)cum);
  }
}

static void connections(out *o, const sk_server *srv, const sk__metrics *m) {
  static const char *const kinds[] = {"sockit_connections_open", "sockit_connections_total"};
  for (int f = 0; f < 2; f++) {
    if (f == 0)
      family(o, kinds[0], "gauge", "Stream connections open now, by listener address.");
    else
      family(o, kinds[1], "counter", "Stream connections accepted, by listener address.");
    for (int i = 0; i < srv->cfg.nlisten; i++) {
      const sk_listen_spec *ls = &srv->cfg.listen[i];
      if (ls->kind != SK_LISTEN_STREAM && ls->kind != SK_LISTEN_HTTP)
        continue;
      put(o, "%s{listener=\"", kinds[f]);
      put_label(o, ls->bound[0] ? ls->bound : ls->text);
      if (f == 0)
        put(o, "\"} %lld\n", (long long)m->conns_open[i]);
      else
        put(o, "\"} %llu\n", (unsigned long long)m->conns_total[i]);
    }
  }
}

static void scalar(out *o, const char *name, const char *type, const char *help, int64_t v) {
  family(o, name, type, help);
  put(o, "%s %lld\n", name, (long long)v);
}

static void labeled(out *o, const char *name, const char *type, const char *help, const char *label,
                    const char *const *values, const int64_t *v, int n) {
  family(o, name, type, help);
  for (int i = 0; i < n; i++)
    put(o, "%s{%s=\"%s\"} %lld\n", name, label, values[i], (long long)v[i]);
}

static void services(out *o, const sk_server *srv, const sk__metrics *m) {
  static const char *const dirs[] = {"put", "get"}, *const classes[] = {"ok", "error", "signal",
                                                                        "timeout"};
  int64_t v[SK_M_COUNT];
  for (int k = 0; k < SK_M_COUNT; k++)
    v[k] = m->m[k];
  int64_t files[2] = {v[SK_M_FILES_PUT], v[SK_M_FILES_GET]};
  int64_t bytes[2] = {v[SK_M_BYTES_PUT], v[SK_M_BYTES_GET]};
  int64_t exec[4] = {v[SK_M_EXEC_OK], v[SK_M_EXEC_ERROR], v[SK_M_EXEC_SIGNAL],
                     v[SK_M_EXEC_TIMEOUT]};

  scalar(o, "sockit_auth_failures_total", "counter",
         "Authentications that failed (a wrong mac, or a failed TLS key handshake).",
         v[SK_M_AUTH_FAILURES]);
  scalar(o, "sockit_rate_limited_total", "counter",
         "Connections refused because their source had too many failed authentications.",
         v[SK_M_RATE_LIMITED]);
  scalar(o, "sockit_rate_limited_peers", "gauge",
         "Sources (addresses, IPv6 /64s, Unix uids) in a failed-authentication penalty now.",
         (int64_t)sk__ratelimit_penalized(srv->rl, sk__now_mono()));
  scalar(o, "sockit_chat_rooms", "gauge", "Chat rooms with at least one member.",
         v[SK_G_CHAT_ROOMS]);
  scalar(o, "sockit_chat_members", "gauge", "Chat room memberships (one per member per room).",
         v[SK_G_CHAT_MEMBERS]);
  scalar(o, "sockit_chat_messages_said_total", "counter", "Chat messages said.", v[SK_M_CHAT_SAID]);
  scalar(o, "sockit_chat_messages_delivered_total", "counter",
         "Chat messages delivered to members (one per member per message).",
         v[SK_M_CHAT_DELIVERED]);
  labeled(o, "sockit_files_total", "counter",
          "Files uploaded (published) and downloaded (sent whole), by direction.", "direction",
          dirs, files, 2);
  labeled(o, "sockit_file_bytes_total", "counter",
          "File body bytes received by uploads and sent by downloads, by direction.", "direction",
          dirs, bytes, 2);
  labeled(o, "sockit_exec_runs_total", "counter",
          "Programs run by exec, by how they ended: exit code 0, another code, a signal, the "
          "timeout.",
          "class", classes, exec, 4);
  scalar(o, "sockit_tls_handshakes_total", "counter", "TLS handshakes completed.",
         v[SK_M_TLS_HANDSHAKES]);
  scalar(o, "sockit_tls_handshake_failures_total", "counter", "TLS handshakes that failed.",
         v[SK_M_TLS_FAILURES]);
  scalar(o, "sockit_redis_links_up", "gauge",
         "Connections to Redis that are up now (--chat-redis: one per event loop).",
         v[SK_G_REDIS_UP]);
  scalar(o, "sockit_redis_link_drops_total", "counter",
         "Connections to Redis that went down while up (each is retried with backoff).",
         v[SK_M_REDIS_DROPS]);
  scalar(o, "sockit_http_requests_total", "counter", "HTTP requests answered.",
         v[SK_M_HTTP_REQUESTS]);
  scalar(o, "sockit_websocket_connections_total", "counter", "WebSocket connections opened at /ws.",
         v[SK_M_WS_UPGRADES]);
}

char *sk__prom_render(const sk_server *srv, size_t *len) {
  sk__metrics *m = malloc(sizeof(*m));
  out o = {.p = malloc(16384), .cap = 16384};
  if (m == NULL || o.p == NULL) {
    free(m);
    free(o.p);
    return NULL;
  }
  o.p[0] = '\0';
  sk__metrics_sum(srv, m);
  connections(&o, srv, m);
  family(&o, "sockit_bytes_total", "counter",
         "Bytes read from and written to stream connections, by direction.");
  put(&o, "sockit_bytes_total{direction=\"in\"} %llu\n", (unsigned long long)m->bytes_in);
  put(&o, "sockit_bytes_total{direction=\"out\"} %llu\n", (unsigned long long)m->bytes_out);
  requests(&o, srv, m);
  services(&o, srv, m);
  free(m);
  if (o.failed) {
    free(o.p);
    return NULL;
  }
  *len = o.len;
  return o.p;
}
