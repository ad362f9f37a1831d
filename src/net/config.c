/* config.c - server options by their command-line names (sk_server_set).
 *
 * One table maps every core `sockit serve` flag to a field of sk_config, so
 * the command line, the library and the defaults cannot drift apart. A
 * service's options are declared in its own table (sk__option, service.h)
 * and kept here by name, parsed the same way (sk__server_add_options). */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/core.h"
#include "sockit/error.h"

enum opt_kind { OPT_INT, OPT_STR, OPT_FLAG, OPT_LISTEN, OPT_CIDR, OPT_SIZE, OPT_MS };
enum cidr_list { CIDR_ALLOW, CIDR_DENY, CIDR_RL_EXEMPT };

typedef struct opt {
  const char *name;
  enum opt_kind kind;
  size_t off; /* offset in sk_config */
  size_t cap; /* string capacity, or for OPT_LISTEN the listen kind */
  int64_t min, max;
  int list; /* OPT_CIDR: which list (enum cidr_list) */
} opt;

#define F(field) offsetof(sk_config, field)
#define STR(name, field)                                                                           \
  { name, OPT_STR, F(field), sizeof(((sk_config *)0)->field), 0, 0, 0 }
#define INT(name, field, lo, hi)                                                                   \
  { name, OPT_INT, F(field), 0, lo, hi, 0 }
#define SIZE(name, field, lo, hi)                                                                  \
  { name, OPT_SIZE, F(field), 0, lo, hi, 0 }
/* seconds with fractions given, milliseconds kept */
#define MS(name, field, lo, hi)                                                                    \
  { name, OPT_MS, F(field), 0, lo, hi, 0 }
#define FLAG(name, field)                                                                          \
  { name, OPT_FLAG, F(field), 0, 0, 1, 0 }

static const opt options[] = {
    {"listen", OPT_LISTEN, 0, SK_LISTEN_STREAM, 0, 0, 0},
    {"udp", OPT_LISTEN, 0, SK_LISTEN_UDP, 0, 0, 0},
    {"daytime", OPT_LISTEN, 0, SK_LISTEN_DAYTIME, 0, 0, 0},
    {"rfc868", OPT_LISTEN, 0, SK_LISTEN_RFC868, 0, 0, 0},
    {"http", OPT_LISTEN, 0, SK_LISTEN_HTTP, 0, 0, 0},
    {"allow", OPT_CIDR, 0, 0, 0, 0, CIDR_ALLOW},
    {"deny", OPT_CIDR, 0, 0, 0, 0, CIDR_DENY},
    {"rate-limit-exempt", OPT_CIDR, 0, 0, 0, 0, CIDR_RL_EXEMPT},
    STR("services", services),
    STR("root", root),
    STR("key-file", key_file),
    STR("log", log_file),
    STR("log-format", log_format),
    STR("wire", wire),
    STR("service", service),
    STR("http-metrics-token-file", http_token_file),
    STR("tls-cert", tls_cert),
    STR("tls-key", tls_key),
    FLAG("no-tls", no_tls),
    FLAG("tls", tls),
    FLAG("no-auth", no_auth),
    FLAG("wire-seed-public", wire_seed_public),
    INT("max-conns", max_conns, 1, 10000000),
    INT("idle-timeout", idle_timeout, 1, 86400 * 365),
    INT("threads", threads, 1, SK_MAX_LOOPS),
    SIZE("max-buffered", max_buffered, 64 * 1024, (int64_t)1 << 50),
};

void sk__config_defaults(sk_config *cfg) {
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  memset(cfg, 0, sizeof(*cfg));
  snprintf(cfg->log_format, sizeof(cfg->log_format), "text");
  snprintf(cfg->wire, sizeof(cfg->wire), "native");
  cfg->max_conns = 100000;
  cfg->idle_timeout = 300;
  cfg->threads = ncpu < 1 ? 1 : (ncpu > SK_MAX_LOOPS ? SK_MAX_LOOPS : ncpu);
  cfg->max_buffered = sk__budget_default();
}

static const opt *find_opt(const char *name) {
  for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++)
    if (strcmp(options[i].name, name) == 0)
      return &options[i];
  return NULL;
}

/* "16M", "1G", "4096": sizes take binary suffixes. */
static int parse_int(const char *v, int size, int64_t *out) {
  char *end;
  long long n;
  if (v == NULL || *v == '\0')
    return -EINVAL;
  errno = 0;
  n = strtoll(v, &end, 10);
  if (errno != 0 || end == v)
    return -EINVAL;
  if (size && *end != '\0') {
    int shift = *end == 'K' || *end == 'k'   ? 10
                : *end == 'M' || *end == 'm' ? 20
                : *end == 'G' || *end == 'g' ? 30
                : *end == 'T' || *end == 't' ? 40
                                             : -1;
    if (shift < 0 || end[1] != '\0' || n > (INT64_MAX >> shift))
      return -EINVAL;
    n <<= shift;
    end++;
  }
  if (*end != '\0')
    return -EINVAL;
  *out = n;
  return 0;
}

/* "1.5" seconds as 1500 ms, within [min, max] ms; checked as a double
 * first: a value outside int64_t has no defined conversion. */
static int parse_ms(const char *v, int64_t min, int64_t max, int64_t *out) {
  char *end;
  double s;
  if (v == NULL || *v == '\0')
    return -EINVAL;
  errno = 0;
  s = strtod(v, &end);
  if (errno != 0 || end == v || *end != '\0' || !(s * 1000 >= (double)min) ||
      !(s * 1000 <= (double)max))
    return -EINVAL;
  *out = (int64_t)(s * 1000 + 0.5);
  return 0;
}

static int parse_cidr(const char *v, sk_cidr *c) {
  char ip[64];
  const char *slash = strchr(v, '/');
  size_t n = slash ? (size_t)(slash - v) : strlen(v);
  long bits;
  if (n >= sizeof(ip))
    return -EINVAL;
  memcpy(ip, v, n);
  ip[n] = '\0';
  memset(c, 0, sizeof(*c));
  if (inet_pton(AF_INET, ip, c->addr) == 1)
    c->family = AF_INET;
  else if (inet_pton(AF_INET6, ip, c->addr) == 1)
    c->family = AF_INET6;
  else
    return -EINVAL;
  bits = c->family == AF_INET ? 32 : 128;
  if (slash != NULL) {
    char *end;
    long b = strtol(slash + 1, &end, 10);
    if (*end != '\0' || slash[1] == '\0' || b < 0 || b > bits)
      return -EINVAL;
    bits = b;
  }
  c->bits = (unsigned)bits;
  return 0;
}

static int add_listen(sk_config *cfg, const char *v, enum sk_listen_kind kind, const char **why) {
  sk_listen_spec *ls;
  if (cfg->nlisten >= SK_MAX_LISTENERS) {
    *why = "too many listeners";
    return -EINVAL;
  }
  ls = &cfg->listen[cfg->nlisten];
  memset(ls, 0, sizeof(*ls));
  if (sk__addr_resolve(v, SK_ADDR_BARE_PORT | SK_ADDR_PASSIVE, &ls->addr, 1, why) < 0)
    return -EINVAL;
  if (kind != SK_LISTEN_STREAM && kind != SK_LISTEN_HTTP && ls->addr.family == AF_UNIX) {
    *why = "UDP and time-protocol listeners need an IP address, not unix:";
    return -EINVAL;
  }
  snprintf(ls->text, sizeof(ls->text), "%s", v);
  ls->kind = kind;
  ls->fd = -1;
  if (kind == SK_LISTEN_STREAM) {
    snprintf(ls->wire, sizeof(ls->wire), "%s", cfg->wire);
    snprintf(ls->service, sizeof(ls->service), "%s", cfg->service);
    ls->wire_explicit = strcmp(cfg->wire, "native") != 0;
    cfg->wire_pending = 0;
  } else {
    snprintf(ls->wire, sizeof(ls->wire), kind == SK_LISTEN_HTTP ? "http" : "native");
  }
  cfg->nlisten++;
  return 0;
}

/* ---- the services' options ---------------------------------------------- */

static sk_svc_opt *find_svc_opt(const sk_server *srv, const char *name) {
  for (int i = 0; i < srv->nsvc_opts; i++)
    if (strcmp(srv->svc_opts[i].o->name, name) == 0)
      return (sk_svc_opt *)&srv->svc_opts[i];
  return NULL;
}

int sk__server_add_options(sk_server *srv, const sk_service *svc, const sk__option *opts) {
  int idx = -1;
  for (int i = 0; i < srv->nservices; i++)
    if (srv->services[i] == svc)
      idx = i;
  for (const sk__option *o = opts; o->name != NULL; o++)
    if (find_opt(o->name) != NULL || find_svc_opt(srv, o->name) != NULL)
      return -EEXIST;
  for (const sk__option *o = opts; o->name != NULL; o++) {
    if (srv->nsvc_opts >= SK_MAX_SVC_OPTIONS)
      return -ENOMEM;
    srv->svc_opts[srv->nsvc_opts++] = (sk_svc_opt){.o = o, .svc = idx, .n = o->def};
  }
  return 0;
}

static int set_svc_opt(sk_svc_opt *v, const char *value, const char **why) {
  const sk__option *o = v->o;
  int64_t n;
  switch (o->kind) {
  case SK__OPT_FLAG:
  case SK__OPT_SWITCH:
    v->n = value == NULL || strcmp(value, "0") != 0;
    return 0;
  case SK__OPT_STR: {
    char *copy;
    if (value == NULL || strlen(value) > (size_t)(o->max > 0 ? o->max : SK__OPT_STR_MAX - 1)) {
      *why = value ? "value too long" : "a value is required";
      return -EINVAL;
    }
    if ((copy = strdup(value)) == NULL)
      return -ENOMEM;
    free(v->s);
    v->s = copy;
    return 0;
  }
  case SK__OPT_INT:
  case SK__OPT_SIZE:
    if (parse_int(value, o->kind == SK__OPT_SIZE, &n) < 0 || n < o->min || n > o->max) {
      *why = "expected a number in range";
      return -EINVAL;
    }
    v->n = n;
    return 0;
  case SK__OPT_MS:
    if (parse_ms(value, o->min, o->max, &n) < 0) {
      *why = "expected seconds in range";
      return -EINVAL;
    }
    v->n = n;
    return 0;
  }
  return -EINVAL;
}

int sk__service_switch(const sk_server *srv, int svc) {
  for (int i = 0; i < srv->nsvc_opts; i++)
    if (srv->svc_opts[i].svc == svc && srv->svc_opts[i].o->kind == SK__OPT_SWITCH)
      return srv->svc_opts[i].n != 0;
  return -1;
}

const char *sk_server_option(const sk_server *srv, int i, const char **arg, const char **help) {
  const sk__option *o;
  if (i < 0 || i >= srv->nsvc_opts)
    return NULL;
  o = srv->svc_opts[i].o;
  if (arg != NULL)
    *arg = o->arg;
  if (help != NULL)
    *help = o->help;
  return o->name;
}

void sk__config_free(sk_server *srv) {
  for (int i = 0; i < srv->nsvc_opts; i++)
    free(srv->svc_opts[i].s);
}

int sk_server_set(sk_server *srv, const char *name, const char *value, const char **why) {
  const char *dummy;
  const opt *o = find_opt(name);
  sk_config *cfg = &srv->cfg;
  sk_svc_opt *v;
  char *field;
  int64_t n;

  if (why == NULL)
    why = &dummy;
  *why = NULL;
  if (o == NULL && (v = find_svc_opt(srv, name)) != NULL)
    return set_svc_opt(v, value, why);
  if (o == NULL) {
    *why = "no such option";
    return -ENOENT;
  }
  field = (char *)cfg + o->off;
  switch (o->kind) {
  case OPT_FLAG:
    *(int *)field = value == NULL || strcmp(value, "0") != 0;
    return 0;
  case OPT_STR:
    if (value == NULL || strlen(value) >= o->cap) {
      *why = value ? "value too long" : "a value is required";
      return -EINVAL;
    }
    snprintf(field, o->cap, "%s", value);
    if (strcmp(name, "wire") == 0 || strcmp(name, "service") == 0)
      cfg->wire_pending = 1;
    if (o->off == F(services))
      cfg->services_given = 1;
    return 0;
  case OPT_INT:
  case OPT_SIZE:
    if (parse_int(value, o->kind == OPT_SIZE, &n) < 0 || n < o->min || n > o->max) {
      *why = "expected a number in range";
      return -EINVAL;
    }
    *(int64_t *)field = n;
    return 0;
  case OPT_MS:
    if (parse_ms(value, o->min, o->max, &n) < 0) {
      *why = "expected seconds in range";
      return -EINVAL;
    }
    *(int64_t *)field = n;
    return 0;
  case OPT_LISTEN:
    if (value == NULL) {
      *why = "an address is required";
      return -EINVAL;
    }
    return add_listen(cfg, value, (enum sk_listen_kind)o->cap, why);
  case OPT_CIDR: {
    sk_cidr *list = o->list == CIDR_DENY        ? cfg->deny
                    : o->list == CIDR_RL_EXEMPT ? cfg->rl_exempt
                                                : cfg->allow;
    int *count = o->list == CIDR_DENY        ? &cfg->ndeny
                 : o->list == CIDR_RL_EXEMPT ? &cfg->nrl_exempt
                                             : &cfg->nallow;
    if (value == NULL || *count >= SK_MAX_CIDRS || parse_cidr(value, &list[*count]) < 0) {
      *why = "expected an address or CIDR like 10.0.0.0/8 or ::1/128";
      return -EINVAL;
    }
    (*count)++;
    return 0;
  }
  }
  return -EINVAL;
}

int64_t sk_server_opt_int(const sk_server *srv, const char *name) {
  const opt *o = find_opt(name);
  const sk_svc_opt *v;
  const char *field;
  if (o == NULL && (v = find_svc_opt(srv, name)) != NULL)
    return v->o->kind == SK__OPT_STR ? -1 : v->n;
  if (o == NULL)
    return -1;
  field = (const char *)&srv->cfg + o->off;
  if (o->kind == OPT_INT || o->kind == OPT_SIZE || o->kind == OPT_MS)
    return *(const int64_t *)field;
  if (o->kind == OPT_FLAG)
    return *(const int *)field;
  return -1;
}

const char *sk__server_opt_str(const sk_server *srv, const char *name) {
  const opt *o = find_opt(name);
  const sk_svc_opt *v;
  if (o == NULL && (v = find_svc_opt(srv, name)) != NULL)
    return v->o->kind != SK__OPT_STR ? NULL : v->s != NULL ? v->s : "";
  if (o == NULL || o->kind != OPT_STR)
    return NULL;
  return (const char *)&srv->cfg + o->off;
}

static int cidr_has(const sk_cidr *c, const uint8_t *addr) {
  unsigned full = c->bits / 8, rest = c->bits % 8;
  if (memcmp(c->addr, addr, full) != 0)
    return 0;
  if (rest == 0)
    return 1;
  uint8_t mask = (uint8_t)(0xff << (8 - rest));
  return (c->addr[full] & mask) == (addr[full] & mask);
}

int sk__cidr_match(const sk_cidr *list, int n, const struct sockaddr *sa) {
  uint8_t v4[4], v6[16];
  const uint8_t *mapped = NULL;
  if (sa->sa_family == AF_INET) {
    memcpy(v4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
  } else if (sa->sa_family == AF_INET6) {
    memcpy(v6, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    /* ::ffff:a.b.c.d also matches IPv4 rules */
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(v6, prefix, 12) == 0)
      mapped = v6 + 12;
  } else {
    return 0;
  }
  for (int i = 0; i < n; i++) {
    if (list[i].family == AF_INET && sa->sa_family == AF_INET && cidr_has(&list[i], v4))
      return 1;
    if (list[i].family == AF_INET && mapped != NULL && cidr_has(&list[i], mapped))
      return 1;
    if (list[i].family == AF_INET6 && sa->sa_family == AF_INET6 && cidr_has(&list[i], v6))
      return 1;
  }
  return 0;
}

/* --deny wins over --allow; with any --allow, everything else is denied.
 * Unix peers are local by definition and always allowed. */
int sk__peer_allowed(const sk_server *srv, const struct sockaddr *sa) {
  if (sa->sa_family == AF_UNIX)
    return 1;
  if (sk__cidr_match(srv->cfg.deny, srv->cfg.ndeny, sa))
    return 0;
  return srv->cfg.nallow == 0 || sk__cidr_match(srv->cfg.allow, srv->cfg.nallow, sa);
}

void sk__rl_source(const sk_server *srv, const struct sockaddr *sa, int fd,
                   char key[SK__RATELIMIT_KEY]) {
  if (sk__cidr_match(srv->cfg.rl_exempt, srv->cfg.nrl_exempt, sa))
    key[0] = '\0'; /* trusted: never counted, never refused */
  else
    sk__ratelimit_source(sa, fd, key);
}
