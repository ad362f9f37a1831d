/* server.c - a server's life: options checked, key and root prepared,
 * listeners bound on every loop, loops run on their threads, then a
 * graceful stop (SPEC 3). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/sized.h"
#include "auth/keyfile.h"
#include "common/sock.h"
#include "net/core.h"
#include "sockit/error.h"
#include "tls/tls.h"

/* One notice: a path (up to PATH_MAX) and the words around it. */
#define SK_NOTICE_MAX 4608

int sk__server_create(sk_server **out) {
  sk_server *srv = calloc(1, sizeof(*srv));
  if (srv == NULL)
    return -ENOMEM;
  sk__config_defaults(&srv->cfg);
  srv->root_fd = -1;
  srv->reserve_fd = -1;
  uv_mutex_init(&srv->lock);
  uv_rwlock_init(&srv->accept_lock);
  *out = srv;
  return 0;
}

/* Does another service registered with the same origin (built-in or the
 * user's) already handle type? A user service may take over a built-in's
 * type; whether both are on at once is checked at start. */
static int type_taken(const sk_server *srv, const char *type, int builtin) {
  for (int i = 0; i < srv->nhandlers; i++)
    if ((srv->enabled[srv->handlers[i].svc] == -1) == builtin &&
        strcmp(srv->handlers[i].h->type, type) == 0)
      return 1;
  return 0;
}

int sk__server_add(sk_server *srv, const sk_service *svc, int builtin) {
  if (srv->nservices >= SK_MAX_SERVICES)
    return -ENOMEM;
  for (const sk_handler *h = svc->handlers; h && h->type; h++)
    if (type_taken(srv, h->type, builtin))
      return -EEXIST;
  for (const sk_handler *h = svc->handlers; h && h->type; h++) {
    if (srv->nhandlers >= SK_MAX_HANDLERS)
      return -ENOMEM;
    srv->handlers[srv->nhandlers++] = (sk_handler_ref){h, srv->nservices};
  }
  /* decided by --services at run: -1 a built-in, -2 the application's */
  srv->enabled[srv->nservices] = builtin ? -1 : -2;
  srv->services[srv->nservices++] = svc;
  return 0;
}

/* Where ABI 1's tables end (common/sized.h). */
#define SK__SERVICE_V1 SK__END_OF(sk_service, off_message)
#define SK__HANDLER_V1 SK__END_OF(sk_handler, body_got)

static void free_copy(sk_service *svc) {
  if (svc != NULL)
    free((void *)svc->handlers);
  free(svc);
}

/* The user's service and its handlers, copied whole: the core reads every
 * member it knows, whatever size the caller's tables have. The handlers'
 * stride is the first entry's size; the terminator has type NULL. */
static sk_service *copy_service(const sk_service *given) {
  sk_service *svc = malloc(sizeof(*svc));
  const unsigned char *h;
  sk_handler *handlers;
  size_t stride = 0, n = 0;
  const char *type;
  if (svc == NULL)
    return NULL;
  sk__sized_copy(svc, sizeof(*svc), given, SK__SERVICE_V1);
  h = (const unsigned char *)svc->handlers;
  if (h != NULL) {
    memcpy(&stride, h, sizeof(stride));
    if (stride == 0)
      stride = SK__HANDLER_V1;
    for (;; n++) {
      memcpy(&type, h + n * stride + offsetof(sk_handler, type), sizeof(type));
      if (type == NULL)
        break;
    }
  }
  if ((handlers = calloc(n + 1, sizeof(*handlers))) == NULL) {
    free(svc);
    return NULL;
  }
  for (size_t i = 0; i < n; i++)
    sk__sized_copy(&handlers[i], sizeof(handlers[i]), h + i * stride, SK__HANDLER_V1);
  svc->handlers = handlers;
  return svc;
}

int sk_server_add_service(sk_server *srv, const sk_service *given) {
  sk_service *svc;
  int rc;
  if (srv->nuser_copies >= SK_MAX_SERVICES)
    return -ENOMEM;
  if ((svc = copy_service(given)) == NULL)
    return -ENOMEM;
  if ((rc = sk__server_add(srv, svc, 0)) < 0) {
    free_copy(svc);
    return rc;
  }
  srv->user_copies[srv->nuser_copies++] = svc;
  return 0;
}

/* The enabled service's handler for type, else a disabled one's (so that
 * the core can say "forbidden" with the service's off_message), else NULL. */
const sk_handler_ref *sk__find_handler(const sk_server *srv, const char *type) {
  const sk_handler_ref *off = NULL;
  for (int i = 0; i < srv->nhandlers; i++) {
    /* the first byte rules out nearly every type without a call: a strcmp
     * per registered type was 130 instructions of each echo request */
    const char *t = srv->handlers[i].h->type;
    if (t[0] != type[0] || strcmp(t, type) != 0)
      continue;
    if (srv->enabled[srv->handlers[i].svc] == 1)
      return &srv->handlers[i];
    if (off == NULL)
      off = &srv->handlers[i];
  }
  return off;
}

/* Two services that are both on may not share a request type. */
static int check_type_clash(const sk_server *srv, const char **why) {
  static char msg[200];
  for (int i = 0; i < srv->nhandlers; i++) {
    const sk_handler_ref *a = &srv->handlers[i], *b;
    if (srv->enabled[a->svc] != 1 || (b = sk__find_handler(srv, a->h->type)) == a)
      continue;
    snprintf(msg, sizeof(msg),
             "request type '%s' is served by both '%s' and '%s': leave one "
             "out of --services",
             a->h->type, srv->services[b->svc]->name, srv->services[a->svc]->name);
    *why = msg;
    return -EEXIST;
  }
  return 0;
}

const char *sk_server_root(const sk_server *srv) {
  return srv->cfg.root;
}
int sk_server_root_fd(const sk_server *srv) {
  return srv->root_fd;
}
int sk_server_auth_enabled(const sk_server *srv) {
  return srv->auth;
}

void sk_server_stop(sk_server *srv) {
  sk__loops_stop(srv);
}

/* ---- start-up checks ---------------------------------------------------- */

static int in_list(const char *list, const char *name) {
  size_t n = strlen(name);
  for (const char *p = list; *p;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    if (len == n && strncmp(p, name, n) == 0)
      return 1;
    p += len + (comma != NULL);
  }
  return 0;
}

static int enable_services(sk_server *srv, const char **why) {
  static char msg[160];
  const char *list = srv->cfg.services;
  /* not given: every built-in without a switch of its own, and every
   * service of the application's */
  int by_default = !srv->cfg.services_given;
  /* every name the user gave must be known */
  for (const char *p = list; *p;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    int found = len == 0;
    for (int i = 0; i < srv->nservices && !found; i++)
      found = strlen(srv->services[i]->name) == len && strncmp(srv->services[i]->name, p, len) == 0;
    if (!found) {
      snprintf(msg, sizeof(msg), "unknown service '%.*s' in --services", (int)len, p);
      *why = msg;
      return -EINVAL;
    }
    p += len + (comma != NULL);
  }
  for (int i = 0; i < srv->nservices; i++) {
    const char *name = srv->services[i]->name;
    int on = sk__service_switch(srv, i);
    if (srv->enabled[i] == -2) /* the application's: on unless a list leaves it out */
      srv->enabled[i] = by_default || in_list(list, name);
    if (srv->enabled[i] >= 0)
      continue;
    if (name[0] == '\0')
      srv->enabled[i] = 1; /* the core's own types (ping, bye) */
    else if (on >= 0)      /* a switch of its own (--allow-exec) rules it */
      srv->enabled[i] = on;
    else
      srv->enabled[i] = by_default || in_list(list, name);
  }
  return check_type_clash(srv, why);
}

static int mkdir_p(const char *path, mode_t mode) {
  char buf[4096];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof(buf))
    return -ENAMETOOLONG;
  memcpy(buf, path, n + 1);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(buf, mode) < 0 && errno != EEXIST)
      return -errno;
    *p = '/';
  }
  if (mkdir(buf, mode) < 0 && errno != EEXIST)
    return -errno;
  return 0;
}

static int prepare_key(sk_server *srv, const char **why) {
  static char msg[4200];
  char path[4096];
  int rc, explicit_file = srv->cfg.key_file[0] != '\0';

  srv->auth = !srv->cfg.no_auth;
  if (!srv->auth)
    return 0;
  if (explicit_file) {
    snprintf(path, sizeof(path), "%s", srv->cfg.key_file);
  } else if ((rc = sk_key_default_path(path, sizeof(path))) < 0) {
    *why = "no key file: set HOME, or pass --key-file F (or --no-auth)";
    return rc;
  }
  if (!explicit_file && access(path, F_OK) < 0 && errno == ENOENT) {
    rc = sk_key_generate(path);
    if (rc < 0 && rc != -EEXIST) {
      snprintf(msg, sizeof(msg), "cannot create key file %s: %s", path, sk_strerror(rc));
      *why = msg;
      return rc;
    }
    if (rc == 0)
      sk__notice(srv, SK_NOTICE_INFO,
                 "created key file %s (mode 0600); clients of this user use it "
                 "by default, copy it to other users or machines",
                 path);
  }
  rc = sk_key_load(path, &srv->key, why);
  if (rc < 0) {
    sk__key_describe(path, 1, msg, sizeof(msg));
    *why = msg;
  }
  return rc;
}

/* The TLS context: keyed by the secret, or a certificate; none with
 * --no-tls, or with --no-auth and no certificate (nothing to key it with). */
static int prepare_tls(sk_server *srv, const char **why) {
  sk_config *cfg = &srv->cfg;
  sk__tls_opts o = {.server = 1};
  if (cfg->no_tls) {
    if (cfg->tls || cfg->tls_cert[0] != '\0') {
      *why = "--no-tls cannot be combined with --tls or --tls-cert";
      return -EINVAL;
    }
    return 0;
  }
  if (cfg->tls_key[0] != '\0' && cfg->tls_cert[0] == '\0') {
    *why = "--tls-key needs --tls-cert";
    return -EINVAL;
  }
  if (cfg->tls_cert[0] != '\0') {
    o.cert_file = cfg->tls_cert;
    o.key_file = cfg->tls_key[0] != '\0' ? cfg->tls_key : cfg->tls_cert;
  } else if (srv->auth) {
    o.key = &srv->key;
  } else if (cfg->tls) {
    *why = "--tls with --no-auth needs a certificate (--tls-cert F --tls-key F)";
    return -EINVAL;
  } else {
    return 0;
  }
  srv->tls = sk__tls_new(&o, why);
  if (srv->tls == NULL)
    return -EINVAL;
  if (sk__tls_pin(srv->tls) != NULL)
    sk__notice(srv, SK_NOTICE_INFO, "TLS certificate pin %s (clients: --tls-pin %s)",
               sk__tls_pin(srv->tls), sk__tls_pin(srv->tls));
  return 0;
}

/* The file root, made when the first service or wire that keeps files
 * there asks (files, exec's working directory, the seed put): a server
 * that serves none of them leaves the disk alone. */
int sk__server_root_open(sk_server *srv, const char **why) {
  static char msg[4200];
  sk_config *cfg = &srv->cfg;
  int rc;
  if (srv->root_fd >= 0)
    return 0;
  if (cfg->root[0] == '\0') {
    const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    if (xdg != NULL && xdg[0] != '\0')
      snprintf(cfg->root, sizeof(cfg->root), "%s/sockit/files", xdg);
    else if (home != NULL && home[0] != '\0')
      snprintf(cfg->root, sizeof(cfg->root), "%s/.local/share/sockit/files", home);
    else {
      *why = "no file root: set HOME or pass --root DIR";
      return -ENOENT;
    }
  }
  rc = mkdir_p(cfg->root, 0700);
  if (rc == 0) {
    srv->root_fd = open(cfg->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    rc = srv->root_fd < 0 ? -errno : 0;
  }
  if (rc < 0) {
    snprintf(msg, sizeof(msg), "file root %s: %s", cfg->root, sk_strerror(rc));
    *why = msg;
  }
  return rc;
}

/* ---- listeners ---------------------------------------------------------- */

static const sk_listen_open_fn other_openers[] = {
    [SK_LISTEN_UDP] = sk__udp_open,
    [SK_LISTEN_DAYTIME] = sk__daytime_open,
    [SK_LISTEN_RFC868] = sk__rfc868_open,
};

/* A seed listener's Unix socket is for its owner only (SPEC 6: the seed
 * formats carry no authentication). Changed after bind and before listen,
 * so that no one can connect while the file still has the umask's mode. */
static int seed_unix_private(const sk_listen_spec *ls) {
  const char *path = ((const struct sockaddr_un *)&ls->addr.ss)->sun_path;
  if (ls->addr.family != AF_UNIX || strcmp(ls->wire, "seed") != 0 || path[0] == '\0')
    return 0;
  return chmod(path, 0600);
}

int sk__stream_socket(sk_listen_spec *ls, int reuseport) {
  int fd = sk__sock_bind(&ls->addr.ss, ls->addr.len, SOCK_STREAM,
                         SK_SOCK_V6ONLY | (reuseport ? SK_SOCK_REUSEPORT : 0)),
      rc;
  if (fd < 0)
    return fd;
  if (seed_unix_private(ls) < 0) {
    rc = -errno;
    close(fd);
    return rc;
  }
  if (ls->fd < 0) { /* learn the real port once, so the other loops share it */
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &len);
    if (ls->addr.family != AF_UNIX)
      memcpy(&ls->addr.ss, &ss, len);
    sk__addr_format((struct sockaddr *)&ls->addr.ss, ls->addr.len, ls->bound, sizeof(ls->bound));
    ls->fd = fd;
  }
  return fd;
}

static int open_stream(sk_loop *loop, sk_listen_spec *ls, const sk_wire *wire) {
  sk_listener *l = calloc(1, sizeof(*l));
  int fd;
  if (l == NULL)
    return -ENOMEM;
  l->spec = ls;
  l->wire = wire;
  fd = sk__stream_socket(ls, loop->srv->nloops > 1);
  if (fd < 0) {
    free(l);
    return fd;
  }
  return sk__listener_start(loop, l, fd);
}

static int open_listener(sk_server *srv, sk_listen_spec *ls, const char **why) {
  static char msg[400];
  int rc = 0;
  if (ls->kind == SK_LISTEN_STREAM || ls->kind == SK_LISTEN_HTTP) {
    const sk_wire *wire =
        ls->kind == SK_LISTEN_HTTP ? &sk__wire_http : sk__wire_find(srv, ls->wire, ls->service);
    if (wire == NULL) {
      snprintf(msg, sizeof(msg), "unknown --wire %s --service %s", ls->wire, ls->service);
      *why = msg;
      return -EINVAL;
    }
    if (wire->check != NULL && (rc = wire->check(srv, ls, why)) < 0)
      return rc;
    if (ls->addr.family == AF_UNIX &&
        (rc = sk__sock_clear_stale(&ls->addr.ss, ls->addr.len, SOCK_STREAM)) < 0)
      goto fail;
    /* TCP: one SO_REUSEPORT socket per loop; Unix and other wires: accepted
     * on loop 0 (a seed chat broker must see all its members on one loop) */
    int n = ls->addr.family == AF_UNIX || !wire->per_loop ? 1 : srv->nloops;
    for (int i = 0; i < n && rc == 0; i++)
      rc = open_stream(&srv->loops[i], ls, wire);
  } else {
    rc = other_openers[ls->kind](srv, ls, why);
    if (rc < 0 && *why != NULL)
      return rc;
  }
  if (rc == 0)
    return 0;
fail:
  snprintf(msg, sizeof(msg), "cannot listen on %s: %s", ls->text, sk_strerror(rc));
  *why = msg;
  return rc;
}

static int is_loopback(const sk_addr *a) {
  if (a->family == AF_INET)
    return (ntohl(((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr) >> 24) == 127;
  if (a->family == AF_INET6)
    return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
  return 1; /* Unix sockets: file permissions guard them */
}

/* Plain native listeners that others can reach: said once, at start. */
static void warn_plain(const sk_server *srv) {
  const sk_config *cfg = &srv->cfg;
  for (int i = 0; i < cfg->nlisten; i++) {
    const sk_listen_spec *ls = &cfg->listen[i];
    if (ls->kind == SK_LISTEN_STREAM && strcmp(ls->wire, "native") == 0 && !ls->tls &&
        !is_loopback(&ls->addr)) {
      sk__notice(srv, SK_NOTICE_WARNING,
                 "%s is not encrypted (%s): the traffic is readable by anyone on the path",
                 ls->text, cfg->no_tls ? "--no-tls" : "--no-auth without --tls-cert");
    }
  }
}

/* What a listener serves, for its start-up line: nothing for the native
 * protocol (the services are in the hello), else the protocol's name. */
static void listener_label(const sk_listen_spec *ls, char *buf, size_t cap) {
  switch (ls->kind) {
  case SK_LISTEN_UDP:
    snprintf(buf, cap, " (udp)");
    break;
  case SK_LISTEN_HTTP:
    snprintf(buf, cap, ls->tls ? " (https)" : " (http)");
    break;
  case SK_LISTEN_DAYTIME:
    snprintf(buf, cap, " (daytime)");
    break;
  case SK_LISTEN_RFC868:
    snprintf(buf, cap, " (rfc868)");
    break;
  default:
    if (strcmp(ls->wire, "native") != 0)
      snprintf(buf, cap, " (seed wire: %s)", ls->service);
    else
      buf[0] = '\0';
  }
}

static int open_listeners(sk_server *srv, const char **why) {
  sk_config *cfg = &srv->cfg;
  int rc, nframed = 0;
  for (int i = 0; i < cfg->nlisten; i++)
    nframed += cfg->listen[i].kind != SK_LISTEN_HTTP;
  /* --http alone still serves the native protocol on the default address */
  if (nframed == 0 && (rc = sk_server_set(srv, "listen", "127.0.0.1:8080", why)) < 0)
    return rc;
  if (cfg->wire_pending) { /* `-l ADDR --wire seed --service NAME` names the -l before */
    for (int i = cfg->nlisten - 1; i >= 0; i--) {
      sk_listen_spec *ls = &cfg->listen[i];
      if (ls->kind != SK_LISTEN_STREAM)
        continue;
      if (!ls->wire_explicit) {
        snprintf(ls->wire, sizeof(ls->wire), "%s", cfg->wire);
        snprintf(ls->service, sizeof(ls->service), "%s", cfg->service);
      }
      break;
    }
  }
  for (int i = 0; i < cfg->nlisten; i++) {
    sk_listen_spec *ls = &cfg->listen[i];
    ls->tls = srv->tls != NULL && ls->kind == SK_LISTEN_STREAM && strcmp(ls->wire, "native") == 0 &&
              (ls->addr.family != AF_UNIX || cfg->tls);
    /* HTTPS only with a certificate: browsers know no TLS keyed by a secret */
    if (ls->kind == SK_LISTEN_HTTP)
      ls->tls = srv->tls != NULL && cfg->tls_cert[0] != '\0';
  }
  for (int i = 0; i < cfg->nlisten; i++)
    if ((rc = open_listener(srv, &cfg->listen[i], why)) < 0)
      return rc;
  warn_plain(srv);
  for (int i = 0; i < cfg->nlisten; i++) {
    char what[64];
    listener_label(&cfg->listen[i], what, sizeof(what));
    sk__notice(srv, SK_NOTICE_INFO, "listening on %s%s", cfg->listen[i].bound, what);
  }
  return 0;
}

/* ---- running ------------------------------------------------------------ */

static void loop_thread(void *arg) {
  sk__loop_run(arg);
}

static int prepare(sk_server *srv, const char **why) {
  int rc;
  if ((rc = enable_services(srv, why)) < 0 || (rc = prepare_key(srv, why)) < 0 ||
      (rc = prepare_tls(srv, why)) < 0)
    return rc;
  if (srv->cfg.log_file[0] != '\0' &&
      (rc = sk__log_open(&srv->log, srv->cfg.log_file, strcmp(srv->cfg.log_format, "json") == 0)) <
          0) {
    *why = "cannot open the --log file";
    return rc;
  }
  if (strcmp(srv->cfg.log_format, "json") != 0 && strcmp(srv->cfg.log_format, "text") != 0) {
    *why = "--log-format must be text or json";
    return -EINVAL;
  }
  srv->rl = sk__ratelimit_new(NULL, 0); /* SPEC 4.3's policy */
  if (srv->rl == NULL)
    return -ENOMEM;
  if ((rc = sk__accept_prepare(srv)) < 0) {
    *why = "cannot open a reserve descriptor for the fd limit";
    return rc;
  }
  srv->nloops = (int)srv->cfg.threads;
  srv->loops = calloc((size_t)srv->nloops, sizeof(*srv->loops));
  if (srv->loops == NULL)
    return -ENOMEM;
  for (int i = 0; i < srv->nloops; i++) {
    if ((rc = sk__loop_init(&srv->loops[i], srv, i, &sk__conn_loop_ops)) < 0)
      return rc;
    srv->nloops_ready = i + 1;
  }
  for (int i = 0; i < srv->nservices; i++) {
    if (srv->enabled[i] != 1 || srv->services[i]->start == NULL)
      continue;
    if ((rc = srv->services[i]->start(srv)) < 0) {
      *why = srv->start_why ? srv->start_why : "a service failed to start";
      return rc;
    }
    srv->started[i] = 1;
  }
  return open_listeners(srv, why);
}

/* Every service that started is stopped, once, after the loops are gone. */
static void stop_services(sk_server *srv) {
  for (int i = 0; i < srv->nservices; i++)
    if (srv->started[i] && srv->services[i]->stop)
      srv->services[i]->stop(srv);
  memset(srv->started, 0, sizeof(srv->started));
}

/* What the loops and services hold, once no loop runs any more. */
static void release_loops(sk_server *srv) {
  for (int i = 0; i < srv->nloops_ready; i++)
    sk__loop_fini(&srv->loops[i]);
  stop_services(srv);
}

int sk__server_start(sk_server *srv, int handle_signals, const char **why) {
  int rc;
  if (srv->process & SK_PROCESS_SIGNALS) {
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* a file over RLIMIT_FSIZE is an io_error, not a crash */
  }
  if ((rc = prepare(srv, why)) < 0) { /* close what was opened: each loop stops at once */
    sk_server_stop(srv);
    for (int i = 0; i < srv->nloops_ready; i++)
      sk__loop_run(&srv->loops[i]);
    release_loops(srv);
    return rc;
  }
  if (handle_signals)
    sk__loop_handle_signals(&srv->loops[0]);
  for (int i = 1; i < srv->nloops; i++)
    uv_thread_create(&srv->loops[i].thread, loop_thread, &srv->loops[i]);
  return 0;
}

void sk__server_finish(sk_server *srv) {
  for (int i = 1; i < srv->nloops; i++)
    uv_thread_join(&srv->loops[i].thread);
  release_loops(srv);
}

int sk_server_run(sk_server *srv, int handle_signals, const char **why) {
  const char *dummy;
  int rc;
  if (why == NULL)
    why = &dummy;
  *why = NULL;
  if ((rc = sk__server_start(srv, handle_signals, why)) < 0)
    return rc;
  sk__loop_run(&srv->loops[0]);
  sk__server_finish(srv);
  return 0;
}

void sk_server_on_notice(sk_server *srv, sk_notice_fn fn, void *ctx) {
  srv->notice = fn;
  srv->notice_ctx = ctx;
}

void sk_server_set_process(sk_server *srv, unsigned flags) {
  srv->process = flags;
}

void sk_server_set_clock(sk_server *srv, sk_clock_fn fn, void *ctx) {
  srv->clock = fn;
  srv->clock_ctx = ctx;
}

void sk__notice(const sk_server *srv, sk_notice_level level, const char *fmt, ...) {
  char text[SK_NOTICE_MAX];
  va_list ap;
  if (srv->notice == NULL)
    return;
  va_start(ap, fmt);
  vsnprintf(text, sizeof(text), fmt, ap);
  va_end(ap);
  srv->notice(srv->notice_ctx, level, text);
}

int sk_server_reopen_log(sk_server *srv) {
  return srv == NULL ? -EINVAL : sk__log_reopen(srv->log);
}

void sk_server_free(sk_server *srv) {
  if (srv == NULL)
    return;
  for (int i = 0; i < srv->cfg.nlisten; i++) {
    sk_listen_spec *ls = &srv->cfg.listen[i];
    if (ls->addr.family == AF_UNIX && ls->fd >= 0)
      unlink(((struct sockaddr_un *)&ls->addr.ss)->sun_path);
  }
  sk__config_free(srv);
  sk_key_clear(&srv->key);
  sk__tls_free(srv->tls);
  if (srv->root_fd >= 0)
    close(srv->root_fd);
  if (srv->reserve_fd >= 0)
    close(srv->reserve_fd);
  sk__log_close(srv->log);
  if (srv->rl)
    sk__ratelimit_free(srv->rl);
  free(srv->loops);
  for (int i = 0; i < srv->nuser_copies; i++)
    free_copy(srv->user_copies[i]);
  uv_mutex_destroy(&srv->lock);
  uv_rwlock_destroy(&srv->accept_lock);
  free(srv);
}
