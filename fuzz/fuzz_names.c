/* fuzz_names.c - file names of SPEC 4.7: validation and resolution.
 *
 * Input: byte 0 (bit 0: empty_ok), then the name's bytes. sk__name_check
 * must agree with an independent reading of the rule (relative, '/'
 * separators, no empty / "." / ".." component, no NUL, at most 4096 bytes
 * and 255 per component, not a part file). An accepted name is then
 * resolved beneath a scratch root holding folders, a link to "/" and a link
 * to "..": whatever opens must be the root or a folder inside it. */
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "common/names.h"
#include "sockit/error.h"

static char root[64];
static size_t root_len;
static int root_fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  char p[128];
  snprintf(root, sizeof(root), "/tmp/sk-fuzz-names-XXXXXX");
  FUZZ_CHECK(mkdtemp(root) != NULL);
  root_len = strlen(root);
  snprintf(p, sizeof(p), "%s/a", root);
  mkdir(p, 0755);
  snprintf(p, sizeof(p), "%s/a/b", root);
  mkdir(p, 0755);
  snprintf(p, sizeof(p), "%s/out", root);
  FUZZ_CHECK(symlink("/", p) == 0);
  snprintf(p, sizeof(p), "%s/a/up", root);
  FUZZ_CHECK(symlink("../..", p) == 0);
  snprintf(p, sizeof(p), "%s/a/in", root);
  FUZZ_CHECK(symlink("b", p) == 0);
  root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  FUZZ_CHECK(root_fd >= 0);
  return 0;
}

/* The rule, written again from the SPEC, without looking at names.c. */
static int oracle(const char *name, size_t len, int empty_ok) {
  size_t start = 0;
  if (memchr(name, '\0', len) != NULL || len > SK_NAME_MAX)
    return 0;
  if (len == 0)
    return empty_ok;
  for (size_t i = 0; i <= len; i++) {
    if (i < len && name[i] != '/')
      continue;
    size_t n = i - start;
    const char *c = name + start;
    if (n == 0 || n > SK_NAME_COMP || (n == 1 && c[0] == '.') ||
        (n == 2 && c[0] == '.' && c[1] == '.'))
      return 0;
    if (i == len) { /* the last component may not be a part file */
      size_t s = strlen(SK_PART_SUFFIX);
      if (c[0] == '.' && n > s && memcmp(c + n - s, SK_PART_SUFFIX, s) == 0)
        return 0;
    }
    start = i + 1;
  }
  return 1;
}

/* Is fd the root or a folder beneath it? */
static int inside(int fd) {
  char link[64], path[PATH_MAX];
  ssize_t n;
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  n = readlink(link, path, sizeof(path) - 1);
  FUZZ_CHECK(n > 0);
  path[n] = '\0';
  return strncmp(path, root, root_len) == 0 && (path[root_len] == '\0' || path[root_len] == '/');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *name, part[SK_PART_NAME_MAX];
  const char *base = NULL;
  int empty_ok, ok, fd;

  if (size < 1 || size > SK_NAME_MAX + 64)
    return 0;
  empty_ok = data[0] & 1;
  size--;
  name = malloc(size + 1);
  FUZZ_CHECK(name != NULL);
  memcpy(name, data + 1, size);
  name[size] = '\0';

  ok = sk__name_check(name, size, empty_ok) == 0;
  FUZZ_CHECK(ok == oracle(name, size, empty_ok));
  if (ok && size > 0) {
    fd = sk__name_open_parent(root_fd, name, 0, &base);
    FUZZ_CHECK(base != NULL && base >= name && base <= name + size);
    if (fd >= 0) {
      FUZZ_CHECK(inside(fd));
      close(fd);
    }
    fd = sk__name_open_dir(root_fd, name);
    if (fd >= 0) {
      FUZZ_CHECK(inside(fd));
      close(fd);
    }
    sk__name_part(base, part);
    FUZZ_CHECK(strlen(part) < SK_PART_NAME_MAX && part[0] == '.');
    FUZZ_CHECK(sk__name_is_part(part));
    FUZZ_CHECK(strchr(part, '/') == NULL);
  }
  free(name);
  return 0;
}
