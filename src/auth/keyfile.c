/* keyfile.c - loading, locating and creating the shared secret (SPEC 3, 4.3). */
#include <sockit/auth.h>
#include <sockit/error.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "auth/keyfile.h"
#include "common/sock.h"

static const char WHY_PERM[] = "key file is readable by group or others; run: chmod 600 FILE";
static const char WHY_SHORT[] = "key is shorter than 16 bytes; make a new one with: sockit keygen";
static const char WHY_LARGE[] = "key file is larger than 4096 bytes; is this the right file?";
static const char WHY_NOTREG[] = "key file is not a regular file";

static void set_why(const char **why, const char *text) {
  if (why)
    *why = text;
}

/* Reads until EOF or until more than SK_KEY_MAX bytes arrived, so a file
 * that grows after fstat still cannot overrun buf (SK_KEY_MAX + 1 bytes). */
static int read_all(int fd, uint8_t *buf, size_t *len) {
  size_t got = 0;

  while (got <= SK_KEY_MAX) {
    ssize_t n = read(fd, buf + got, SK_KEY_MAX + 1 - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    if (n == 0)
      break;
    got += (size_t)n;
  }
  *len = got;
  return 0;
}

/* Checks on the open descriptor, not the path, so that the file judged is
 * the file read. */
static int check_stat(int fd, const char **why) {
  struct stat st;

  if (fstat(fd, &st) < 0)
    return -errno;
  if (!S_ISREG(st.st_mode)) {
    set_why(why, WHY_NOTREG);
    return SK_EBADKEY;
  }
  if (st.st_mode & 077) {
    set_why(why, WHY_PERM);
    return -EPERM;
  }
  if (st.st_size > SK_KEY_MAX) {
    set_why(why, WHY_LARGE);
    return SK_EBADKEY;
  }
  return 0;
}

static int is_trailing_space(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int sk_key_load(const char *path, sk_key *key, const char **why) {
  uint8_t *buf = NULL;
  size_t len = 0;
  int fd = -1, rc;

  set_why(why, NULL);
  if (!path || !key)
    return -EINVAL;
  key->bytes = NULL;
  key->len = 0;
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return -errno;
  if ((rc = check_stat(fd, why)) < 0)
    goto out;
  buf = malloc(SK_KEY_MAX + 1);
  if (!buf) {
    rc = -ENOMEM;
    goto out;
  }
  if ((rc = read_all(fd, buf, &len)) < 0)
    goto out;
  if (len > SK_KEY_MAX) {
    set_why(why, WHY_LARGE);
    rc = SK_EBADKEY;
    goto out;
  }
  while (len > 0 && is_trailing_space(buf[len - 1]))
    len--;
  if (len < SK_KEY_MIN) {
    set_why(why, WHY_SHORT);
    rc = SK_EBADKEY;
    goto out;
  }
  /* An exact-size copy, so the spare buffer can be wiped right here. */
  key->bytes = malloc(len);
  if (!key->bytes) {
    rc = -ENOMEM;
    goto out;
  }
  memcpy(key->bytes, buf, len);
  key->len = len;
out:
  if (buf) {
    OPENSSL_cleanse(buf, SK_KEY_MAX + 1);
    free(buf);
  }
  if (fd >= 0)
    close(fd);
  return rc;
}

void sk_key_clear(sk_key *key) {
  if (!key)
    return;
  if (key->bytes) {
    OPENSSL_cleanse(key->bytes, key->len);
    free(key->bytes);
  }
  key->bytes = NULL;
  key->len = 0;
}

/* SPEC 3 treats an empty variable as unset, as XDG does. */
static const char *env(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

int sk_key_default_path(char *buf, size_t cap) {
  const char *v;
  int n;

  if (!buf || cap == 0)
    return -EINVAL;
  if ((v = env("SOCKIT_KEY_FILE")))
    n = snprintf(buf, cap, "%s", v);
  else if ((v = env("XDG_CONFIG_HOME")))
    n = snprintf(buf, cap, "%s/sockit/key", v);
  else if ((v = env("HOME")))
    n = snprintf(buf, cap, "%s/.config/sockit/key", v);
  else
    return -ENOENT;
  if (n < 0 || (size_t)n >= cap)
    return -ENAMETOOLONG;
  return 0;
}

/* mkdir -p of every folder above path's last component. Folders that
 * already exist keep their mode: tightening a user's ~/.config is not ours
 * to do. */
static int make_parents(const char *path) {
  char *p = strdup(path);
  int rc = 0;

  if (!p)
    return -ENOMEM;
  for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
    *s = '\0';
    if (mkdir(p, 0700) < 0 && errno != EEXIST) {
      rc = -errno;
      goto out;
    }
    *s = '/';
  }
out:
  free(p);
  return rc;
}

/* Writes, syncs and closes the new key; the caller owns fd only on error. */
static int fill_key(int fd, const char *text, size_t len) {
  int rc;

  /* open's mode passes through the umask; fchmod does not. */
  if (fchmod(fd, 0600) < 0)
    return -errno;
  if ((rc = sk__write_all(fd, text, len)) < 0)
    return rc;
  if (fsync(fd) < 0)
    return -errno;
  return 0;
}

int sk_key_generate(const char *path) {
  char text[SK_NONCE_HEX + 2];
  int fd = -1, rc;

  if (!path || !*path)
    return -EINVAL;
  if ((rc = make_parents(path)) < 0)
    return rc;
  /* A key has exactly the shape of a nonce: 32 CSPRNG bytes as hex. */
  if ((rc = sk_auth_nonce(text)) < 0)
    goto out;
  text[SK_NONCE_HEX] = '\n';
  text[SK_NONCE_HEX + 1] = '\0';
  fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOCTTY, 0600);
  if (fd < 0) {
    rc = -errno;
    goto out;
  }
  rc = fill_key(fd, text, SK_NONCE_HEX + 1);
  if (close(fd) < 0 && rc == 0)
    rc = -errno;
  /* Never leave a half-written key behind for the next run to trust. */
  if (rc < 0)
    unlink(path);
out:
  OPENSSL_cleanse(text, sizeof text);
  return rc;
}

/* Read again, only to say what is wrong: the file judged by sk_key_load
 * may have changed since, which at worst makes the message stale. */
int sk__key_describe(const char *path, int for_server, char *buf, size_t cap) {
  struct stat st;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0 && errno == ENOENT) {
    if (for_server)
      return snprintf(buf, cap,
                      "key file %s is missing: make one with `sockit keygen -o %s`, or leave "
                      "out --key-file to use (and create) the default",
                      path, path);
    return snprintf(buf, cap,
                    "no key file at %s: copy the server's key file there (or give --key-file F); "
                    "`sockit keygen` would make a new key that the server does not know",
                    path);
  }
  if (fd < 0)
    return snprintf(buf, cap, "cannot open key file %s: %s", path, sk_strerror(-errno));
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return snprintf(buf, cap, "key file %s is not a regular file", path);
  }
  if (st.st_mode & 077) {
    close(fd);
    return snprintf(buf, cap, "key file %s has mode %04o, so others can read it: run chmod 600 %s",
                    path, (unsigned)(st.st_mode & 07777), path);
  }
  if (st.st_size > SK_KEY_MAX) {
    close(fd);
    return snprintf(buf, cap,
                    "key file %s is %lld bytes, more than a key's %d: is it the right file?", path,
                    (long long)st.st_size, SK_KEY_MAX);
  }
  char key[SK_KEY_MAX];
  ssize_t n = read(fd, key, sizeof(key));
  int err = errno;
  close(fd);
  while (n > 0 && strchr(" \t\r\n", key[n - 1]) != NULL)
    n--;
  OPENSSL_cleanse(key, sizeof(key));
  if (n < 0)
    return snprintf(buf, cap, "cannot read key file %s: %s", path, sk_strerror(-err));
  return snprintf(buf, cap, "key file %s holds %zd bytes; a key needs at least %d (%s)", path, n,
                  SK_KEY_MIN,
                  for_server ? "make one with: sockit keygen" : "copy the server's key file");
}
