/* test_names.c - SPEC 4.7 name validation and resolution beneath a root. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/names.h"
#include "sockit/error.h"

static int check(const char *name) {
  return sk__name_check(name, strlen(name), 0);
}

START_TEST(good_names) {
  char comp[256], deep[4097];
  memset(comp, 'c', 255);
  comp[255] = '\0';
  memset(deep, 'd', 4096);
  for (int i = 1; i < 4095; i += 2)
    deep[i] = '/';
  deep[4096] = '\0';
  ck_assert_int_eq(check("a"), 0);
  ck_assert_int_eq(check("a/b/c.txt"), 0);
  ck_assert_int_eq(check(".hidden"), 0);
  ck_assert_int_eq(check("..."), 0);
  ck_assert_int_eq(check("a..b/c."), 0);
  ck_assert_int_eq(check("sp ace/\xc3\xbc"), 0);
  ck_assert_int_eq(check(comp), 0);
  ck_assert_int_eq(check(deep), 0);
  ck_assert_int_eq(sk__name_check("", 0, 1), 0); /* list's root */
}
END_TEST

START_TEST(bad_names) {
  static const char *const bad[] = {
      "",
      "/",
      "/a",
      "a/",
      ".",
      "..",
      "./a",
      "a/.",
      "a/..",
      "../a",
      "a//b",
      "a/./b",
      "a/../b",
      "//",
      ".x.sockit-part",
      "d/.y.sockit-part",
  };
  char comp[257], big[4098];
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    ck_assert_msg(check(bad[i]) == SK_EFORBIDDEN, "accepted '%s'", bad[i]);
  memset(comp, 'c', 256);
  comp[256] = '\0';
  ck_assert_int_eq(check(comp), SK_EFORBIDDEN);
  memset(big, 'b', 4097);
  big[4097] = '\0';
  ck_assert_int_eq(check(big), SK_EFORBIDDEN);
  ck_assert_int_eq(sk__name_check("a\0b", 3, 0), SK_EFORBIDDEN); /* embedded NUL */
  ck_assert_int_eq(sk__name_check(NULL, 0, 1), SK_EFORBIDDEN);
  ck_assert_int_eq(sk__name_check("/", 1, 1), SK_EFORBIDDEN);
}
END_TEST

START_TEST(part_names) {
  char part[SK_PART_NAME_MAX], longbase[256], other[256];
  sk__name_part("f.bin", part);
  ck_assert_str_eq(part, ".f.bin.sockit-part");
  ck_assert(sk__name_is_part(part));
  ck_assert(!sk__name_is_part("f.bin"));
  ck_assert(!sk__name_is_part(".sockit-part"));
  memset(longbase, 'L', 255);
  longbase[255] = '\0';
  memcpy(other, longbase, sizeof(other));
  other[254] = 'M';
  sk__name_part(longbase, part);
  ck_assert_uint_le(strlen(part), 255);
  ck_assert(sk__name_is_part(part));
  char part2[SK_PART_NAME_MAX];
  sk__name_part(other, part2);
  ck_assert_str_ne(part, part2); /* shortened names of distinct bases differ */
}
END_TEST

static char root_path[64];

static int make_root(void) {
  snprintf(root_path, sizeof(root_path), "/tmp/sk-names-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(root_path));
  char p[128];
  snprintf(p, sizeof(p), "%s/in", root_path);
  ck_assert_int_eq(mkdir(p, 0700), 0);
  snprintf(p, sizeof(p), "%s/up", root_path);
  ck_assert_int_eq(symlink("..", p), 0);
  snprintf(p, sizeof(p), "%s/abs", root_path);
  ck_assert_int_eq(symlink("/etc", p), 0);
  int fd = open(root_path, O_RDONLY | O_DIRECTORY);
  ck_assert_int_ge(fd, 0);
  return fd;
}

static void cleanup(void) {
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root_path);
  ck_assert_int_eq(system(cmd), 0);
}

START_TEST(resolution_stays_beneath) {
  int root = make_root(), fd;
  const char *base;
  fd = sk__name_open_parent(root, "in/x", 0, &base);
  ck_assert_int_ge(fd, 0);
  ck_assert_str_eq(base, "x");
  close(fd);
  fd = sk__name_open_parent(root, "new/deeper/x", 1, &base); /* creates folders */
  ck_assert_int_ge(fd, 0);
  close(fd);
  ck_assert_int_eq(sk__name_open_parent(root, "missing/x", 0, &base), -ENOENT);
  ck_assert_int_lt(sk__name_open_parent(root, "up/x", 0, &base), 0);
  ck_assert_int_lt(sk__name_open_parent(root, "abs/x", 0, &base), 0);
  ck_assert_int_lt(sk__name_open_parent(root, "abs/new/x", 1, &base), 0);
  ck_assert_int_eq(sk__name_err(sk__name_open_parent(root, "abs/x", 0, &base)), SK_EFORBIDDEN);
  ck_assert_int_eq(sk__name_err(sk__name_open_parent(root, "abs/n/x", 1, &base)), SK_EFORBIDDEN);
  fd = sk__name_open_dir(root, "");
  ck_assert_int_ge(fd, 0);
  close(fd);
  ck_assert_int_lt(sk__name_open_dir(root, "up"), 0);
  close(root);
  cleanup();
}
END_TEST

int main(void) {
  Suite *s = suite_create("names");
  TCase *tc = tcase_create("names");
  tcase_add_test(tc, good_names);
  tcase_add_test(tc, bad_names);
  tcase_add_test(tc, part_names);
  tcase_add_test(tc, resolution_stays_beneath);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
