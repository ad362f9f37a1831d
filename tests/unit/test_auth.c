/* test_auth.c - keys, macs, nonces and the failed-auth rate limit.
 *
 * The HMAC-SHA256 vectors were computed outside sockit, with both
 *   python3 -c 'import hmac,hashlib; print(hmac.new(K, M, hashlib.sha256).hexdigest())'
 * and `printf %s M | openssl dgst -sha256 -hmac K`, which agreed. The
 * HMAC-MD5 vectors are RFC 2202 section 2. */
#include "auth/hmac_md5.h"
#include "auth/ratelimit.h"

#include <sockit/auth.h>
#include <sockit/error.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET "sockit-test-secret-0123456789"
#define SN "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define CN "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define CLIENT_MAC "89e0c899e9d68458d6ddd0d5ea6091a5eec3521a607affd5465f5666237e20e3"
#define SERVER_MAC "86e6d3367038d79df27732f811fcb24512943d5a8900e1b165fa96e910726d55"

/* ---- temp dir fixture (unchecked: runs in the parent, so it cleans up
 * even after a failing test) ---- */

static char tmpdir[512];

static void tmp_setup(void) {
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/sockit-auth-XXXXXX", base && *base ? base : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  return remove(path);
}

static void tmp_teardown(void) {
  nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *tmp_path(const char *name) {
  static char buf[PATH_MAX];
  snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
  return buf;
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode) {
  int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
  ck_assert_int_eq(fchmod(fd, mode), 0);
  close(fd);
}

static sk_key test_key(void) {
  sk_key k = {(uint8_t *)SECRET, sizeof SECRET - 1};
  return k;
}

/* ---- macs ---- */

START_TEST(test_mac_vectors) {
  sk_key k = test_key();
  char out[SK_MAC_HEX + 1];

  ck_assert_int_eq(sk_auth_client_mac(&k, SN, CN, out), 0);
  ck_assert_str_eq(out, CLIENT_MAC);
  ck_assert_int_eq(sk_auth_server_mac(&k, SN, CN, out), 0);
  ck_assert_str_eq(out, SERVER_MAC);
}
END_TEST

START_TEST(test_mac_from_loaded_key) {
  const char text[] = SECRET "\r\n \t";
  sk_key k = {0};
  const char *why = "unset";
  char out[SK_MAC_HEX + 1];

  write_file(tmp_path("key"), text, sizeof text - 1, 0600);
  ck_assert_int_eq(sk_key_load(tmp_path("key"), &k, &why), 0);
  ck_assert_ptr_null(why);
  ck_assert_uint_eq(k.len, sizeof SECRET - 1);
  ck_assert_mem_eq(k.bytes, SECRET, k.len);
  ck_assert_int_eq(sk_auth_client_mac(&k, SN, CN, out), 0);
  ck_assert_str_eq(out, CLIENT_MAC);
  sk_key_clear(&k);
  ck_assert_ptr_null(k.bytes);
  ck_assert_uint_eq(k.len, 0);
  sk_key_clear(&k); /* twice is fine */
}
END_TEST

START_TEST(test_mac_bad_args) {
  sk_key k = test_key(), none = {0};
  char out[SK_MAC_HEX + 1];

  ck_assert_int_eq(sk_auth_client_mac(NULL, SN, CN, out), -EINVAL);
  ck_assert_int_eq(sk_auth_client_mac(&none, SN, CN, out), -EINVAL);
  ck_assert_int_eq(sk_auth_server_mac(&k, NULL, CN, out), -EINVAL);
  ck_assert_int_eq(sk_auth_server_mac(&k, SN, NULL, out), -EINVAL);
}
END_TEST

START_TEST(test_hmac_md5_rfc2202) {
  static const struct {
    const char *key;
    size_t klen;
    const char *msg;
    size_t mlen;
    const char *hex;
  } v[] = {
      {"\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b", 16, "Hi There", 8,
       "9294727a3638bb1c13f48ef8158bfc9d"},
      {"Jefe", 4, "what do ya want for nothing?", 28, "750c783e6ab0b503eaa86e310a5db738"},
  };
  uint8_t key[80], msg[50], out[16];
  char hex[33];

  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    ck_assert_int_eq(sk__hmac_md5(v[i].key, v[i].klen, v[i].msg, v[i].mlen, out), 0);
    for (int j = 0; j < 16; j++)
      sprintf(hex + 2 * j, "%02x", out[j]);
    ck_assert_str_eq(hex, v[i].hex);
  }
  /* Test case 3: 16 x 0xaa, 50 x 0xdd. */
  memset(key, 0xaa, 16);
  memset(msg, 0xdd, 50);
  ck_assert_int_eq(sk__hmac_md5(key, 16, msg, 50, out), 0);
  for (int j = 0; j < 16; j++)
    sprintf(hex + 2 * j, "%02x", out[j]);
  ck_assert_str_eq(hex, "56be34521d144c88dbb8c733f0e8b3f6");
  /* Test case 6: a key longer than the block is hashed first. */
  memset(key, 0xaa, 80);
  ck_assert_int_eq(
      sk__hmac_md5(key, 80, "Test Using Larger Than Block-Size Key - Hash Key First", 54, out), 0);
  for (int j = 0; j < 16; j++)
    sprintf(hex + 2 * j, "%02x", out[j]);
  ck_assert_str_eq(hex, "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd");
  /* Empty key and message (python3 hmac). */
  ck_assert_int_eq(sk__hmac_md5(NULL, 0, NULL, 0, out), 0);
  for (int j = 0; j < 16; j++)
    sprintf(hex + 2 * j, "%02x", out[j]);
  ck_assert_str_eq(hex, "74e6f7298a9c2d168935f58c001bad88");
  ck_assert_int_eq(sk__hmac_md5(NULL, 4, "x", 1, out), -EINVAL);
}
END_TEST

/* ---- nonces and hex ---- */

START_TEST(test_nonce) {
  char a[SK_NONCE_HEX + 1], b[SK_NONCE_HEX + 1];

  memset(a, 'X', sizeof a);
  ck_assert_int_eq(sk_auth_nonce(a), 0);
  ck_assert_int_eq(sk_auth_nonce(b), 0);
  ck_assert_uint_eq(strlen(a), SK_NONCE_HEX);
  ck_assert(sk_auth_is_hex64(a));
  ck_assert(sk_auth_is_hex64(b));
  ck_assert_str_ne(a, b);
}
END_TEST

START_TEST(test_mac_equal) {
  char shorter[] = CLIENT_MAC, longer[] = CLIENT_MAC "0", flipped[] = CLIENT_MAC;

  shorter[63] = '\0';
  flipped[63] ^= 1;
  ck_assert_int_eq(sk_auth_mac_equal(CLIENT_MAC, CLIENT_MAC), 1);
  ck_assert_int_eq(sk_auth_mac_equal(CLIENT_MAC, SERVER_MAC), 0);
  ck_assert_int_eq(sk_auth_mac_equal(CLIENT_MAC, flipped), 0);
  ck_assert_int_eq(sk_auth_mac_equal(CLIENT_MAC, shorter), 0);
  ck_assert_int_eq(sk_auth_mac_equal(shorter, CLIENT_MAC), 0);
  ck_assert_int_eq(sk_auth_mac_equal(CLIENT_MAC, longer), 0);
  ck_assert_int_eq(sk_auth_mac_equal(longer, longer), 0);
  ck_assert_int_eq(sk_auth_mac_equal("", ""), 0);
  ck_assert_int_eq(sk_auth_mac_equal(NULL, CLIENT_MAC), 0);
}
END_TEST

START_TEST(test_is_hex64) {
  char upper[] = SN, nonhex[] = SN;

  upper[10] = 'A';
  nonhex[63] = 'g';
  ck_assert_int_eq(sk_auth_is_hex64(SN), 1);
  ck_assert_int_eq(sk_auth_is_hex64(CN), 1);
  ck_assert_int_eq(sk_auth_is_hex64(upper), 0);
  ck_assert_int_eq(sk_auth_is_hex64(nonhex), 0);
  ck_assert_int_eq(sk_auth_is_hex64(SN "0"), 0);
  ck_assert_int_eq(sk_auth_is_hex64(&SN[1]), 0); /* 63 digits */
  ck_assert_int_eq(sk_auth_is_hex64(""), 0);
  ck_assert_int_eq(sk_auth_is_hex64(NULL), 0);
}
END_TEST

/* ---- key files ---- */

static void assert_load_fails(const char *path, int want, const char *why_has) {
  sk_key k = {0};
  const char *why = NULL;

  ck_assert_int_eq(sk_key_load(path, &k, &why), want);
  ck_assert_ptr_null(k.bytes);
  if (why_has) {
    ck_assert_ptr_nonnull(why);
    ck_assert_ptr_nonnull(strstr(why, why_has));
  }
}

START_TEST(test_key_load_modes) {
  sk_key k = {0};

  write_file(tmp_path("k644"), SECRET, strlen(SECRET), 0644);
  write_file(tmp_path("k640"), SECRET, strlen(SECRET), 0640);
  write_file(tmp_path("k604"), SECRET, strlen(SECRET), 0604);
  write_file(tmp_path("k400"), SECRET, strlen(SECRET), 0400);
  assert_load_fails(tmp_path("k644"), -EPERM, "chmod 600");
  assert_load_fails(tmp_path("k640"), -EPERM, "chmod 600");
  assert_load_fails(tmp_path("k604"), -EPERM, "chmod 600");
  /* 0400 is owner-only: accepted. */
  ck_assert_int_eq(sk_key_load(tmp_path("k400"), &k, NULL), 0);
  sk_key_clear(&k);
}
END_TEST

START_TEST(test_key_load_short) {
  sk_key k = {0};

  write_file(tmp_path("k15"), "0123456789abcde\n\n", 17, 0600);
  assert_load_fails(tmp_path("k15"), SK_EBADKEY, "sockit keygen");
  write_file(tmp_path("blank"), " \t\r\n", 4, 0600);
  assert_load_fails(tmp_path("blank"), SK_EBADKEY, "shorter than 16");
  write_file(tmp_path("k16"), "0123456789abcdef\n", 17, 0600);
  ck_assert_int_eq(sk_key_load(tmp_path("k16"), &k, NULL), 0);
  ck_assert_uint_eq(k.len, 16);
  sk_key_clear(&k);
}
END_TEST

START_TEST(test_key_load_inner_space_kept) {
  const char text[] = "  leading and inner  spaces stay \n";
  sk_key k = {0};

  write_file(tmp_path("k"), text, sizeof text - 1, 0600);
  ck_assert_int_eq(sk_key_load(tmp_path("k"), &k, NULL), 0);
  ck_assert_uint_eq(k.len, sizeof text - 3);
  ck_assert_mem_eq(k.bytes, text, k.len);
  sk_key_clear(&k);
}
END_TEST

START_TEST(test_key_load_missing_and_odd) {
  assert_load_fails(tmp_path("nope"), -ENOENT, NULL);
  ck_assert_int_eq(mkdir(tmp_path("dir"), 0700), 0);
  assert_load_fails(tmp_path("dir"), SK_EBADKEY, "regular");
  ck_assert_int_eq(sk_key_load(NULL, NULL, NULL), -EINVAL);
}
END_TEST

START_TEST(test_key_load_size) {
  static char big[SK_KEY_MAX + 1];
  sk_key k = {0};

  memset(big, 'a', sizeof big);
  write_file(tmp_path("max"), big, SK_KEY_MAX, 0600);
  ck_assert_int_eq(sk_key_load(tmp_path("max"), &k, NULL), 0);
  ck_assert_uint_eq(k.len, SK_KEY_MAX);
  sk_key_clear(&k);
  write_file(tmp_path("over"), big, SK_KEY_MAX + 1, 0600);
  assert_load_fails(tmp_path("over"), SK_EBADKEY, "4096");
}
END_TEST

START_TEST(test_key_load_symlink) {
  sk_key k = {0};
  char target[PATH_MAX];

  write_file(tmp_path("real"), SECRET "\n", strlen(SECRET) + 1, 0600);
  snprintf(target, sizeof target, "%s", tmp_path("real"));
  ck_assert_int_eq(symlink(target, tmp_path("link")), 0);
  ck_assert_int_eq(sk_key_load(tmp_path("link"), &k, NULL), 0);
  ck_assert_uint_eq(k.len, strlen(SECRET));
  sk_key_clear(&k);
}
END_TEST

/* ---- default path ---- */

START_TEST(test_default_path) {
  char buf[PATH_MAX], tiny[8];

  setenv("HOME", "/home/u", 1);
  setenv("XDG_CONFIG_HOME", "/xdg", 1);
  setenv("SOCKIT_KEY_FILE", "/etc/k", 1);
  ck_assert_int_eq(sk_key_default_path(buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "/etc/k");
  setenv("SOCKIT_KEY_FILE", "", 1);
  ck_assert_int_eq(sk_key_default_path(buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "/xdg/sockit/key");
  unsetenv("SOCKIT_KEY_FILE");
  setenv("XDG_CONFIG_HOME", "", 1);
  ck_assert_int_eq(sk_key_default_path(buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "/home/u/.config/sockit/key");
  unsetenv("XDG_CONFIG_HOME");
  ck_assert_int_eq(sk_key_default_path(buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "/home/u/.config/sockit/key");
  ck_assert_int_eq(sk_key_default_path(tiny, sizeof tiny), -ENAMETOOLONG);
  unsetenv("HOME");
  ck_assert_int_eq(sk_key_default_path(buf, sizeof buf), -ENOENT);
}
END_TEST

/* ---- keygen ---- */

START_TEST(test_keygen) {
  char path[PATH_MAX], path2[PATH_MAX], text[128];
  struct stat st;
  sk_key a = {0}, b = {0};
  int fd;

  snprintf(path, sizeof path, "%s", tmp_path("cfg/sockit/key"));
  snprintf(path2, sizeof path2, "%s", tmp_path("cfg/sockit/key2"));
  umask(0);
  ck_assert_int_eq(sk_key_generate(path), 0);
  umask(022);
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0600);
  ck_assert_int_eq(st.st_size, 65);
  ck_assert_int_eq(stat(tmp_path("cfg/sockit"), &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0700);
  ck_assert_int_eq(stat(tmp_path("cfg"), &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0700);

  fd = open(path, O_RDONLY);
  ck_assert_int_eq(read(fd, text, sizeof text), 65);
  close(fd);
  ck_assert_int_eq(text[64], '\n');
  text[64] = '\0';
  ck_assert(sk_auth_is_hex64(text));

  ck_assert_int_eq(sk_key_generate(path), -EEXIST);
  ck_assert_int_eq(sk_key_generate(path2), 0);
  ck_assert_int_eq(sk_key_load(path, &a, NULL), 0);
  ck_assert_int_eq(sk_key_load(path2, &b, NULL), 0);
  ck_assert_uint_eq(a.len, 64);
  ck_assert_mem_eq(a.bytes, text, 64);
  ck_assert(memcmp(a.bytes, b.bytes, 64) != 0);
  sk_key_clear(&a);
  sk_key_clear(&b);
}
END_TEST

START_TEST(test_keygen_bare_name) {
  char cwd[PATH_MAX];
  struct stat st;

  ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
  ck_assert_int_eq(chdir(tmpdir), 0);
  ck_assert_int_eq(sk_key_generate("bare"), 0);
  ck_assert_int_eq(stat("bare", &st), 0);
  ck_assert_int_eq(chdir(cwd), 0);
  ck_assert_int_eq(sk_key_generate(""), -EINVAL);
}
END_TEST

/* ---- rate limit ---- */

static void fail_n(sk__ratelimit *rl, const char *ip, int n, double t) {
  for (int i = 0; i < n; i++)
    sk__ratelimit_fail(rl, ip, t + i);
}

START_TEST(test_rl_fifth_bans) {
  sk__ratelimit *rl = sk__ratelimit_new(5, 60, 60);

  ck_assert_ptr_nonnull(rl);
  fail_n(rl, "10.0.0.1", 4, 100); /* t = 100..103 */
  ck_assert_int_eq(sk__ratelimit_blocked(rl, "10.0.0.1", 103.5), 0);
  sk__ratelimit_fail(rl, "10.0.0.1", 104);
  ck_assert_int_eq(sk__ratelimit_blocked(rl, "10.0.0.1", 104), 1);
  ck_assert_int_eq(sk__ratelimit_blocked(rl, "10.0.0.1", 163.9), 1);
  ck_assert_int_eq(sk__ratelimit_blocked(rl, "10.0.0.1", 164), 0);
  /* After the ban the count starts from zero. */
  fail_n(rl, "10.0.0.1", 4, 170);
  ck_assert_int_eq(sk__ratelimit_blocked(rl, "10.0.0.1", 174), 0);
  sk__ratelimit_fail(rl, "10.0.0.1", 175);
  ck_assert_int_eq(sk__ratelimit_blocked(rl, "10.0.0.1", 175), 1);
  sk__ratelimit_free(rl);
}
END_TEST

START_TEST(test_rl_window) {
  sk__ratelimit *rl = sk__ratelimit_new(5, 60, 60);

  /* Five fails, but the first and fifth are 64 s apart. */
  for (int i = 0; i < 5; i++)
    sk__ratelimit_fail(rl, "::1", 16.0 * i);
  ck_assert_int_eq(sk__ratelimit_blocked(rl, "::1", 64), 0);
  /* Exactly 60 s apart is not "within 60 s". */
  for (int i = 0; i < 5; i++)
    sk__ratelimit_fail(rl, "10.0.0.2", 15.0 * i);
  ck_assert_int_eq(sk__ratelimit_blocked(rl, "10.0.0.2", 60), 0);
  /* The window slides: 16, 32, 48, 64, 65 are five within 49 s. */
  sk__ratelimit_fail(rl, "::1", 65);
  ck_assert_int_eq(sk__ratelimit_blocked(rl, "::1", 65), 1);
  sk__ratelimit_free(rl);
}
END_TEST

START_TEST(test_rl_independent) {
  sk__ratelimit *rl = sk__ratelimit_new(5, 60, 60);

  fail_n(rl, "192.0.2.1", 5, 0);
  fail_n(rl, "192.0.2.2", 4, 0);
  ck_assert_int_eq(sk__ratelimit_blocked(rl, "192.0.2.1", 5), 1);
  ck_assert_int_eq(sk__ratelimit_blocked(rl, "192.0.2.2", 5), 0);
  ck_assert_int_eq(sk__ratelimit_blocked(rl, "192.0.2.3", 5), 0);
  ck_assert_int_eq(sk__ratelimit_blocked(rl, "2001:db8::1", 5), 0);
  /* No address (Unix peers) is never counted. */
  fail_n(rl, NULL, 10, 0);
  fail_n(rl, "", 10, 0);
  ck_assert_int_eq(sk__ratelimit_blocked(rl, NULL, 10), 0);
  ck_assert_int_eq(sk__ratelimit_blocked(rl, "", 10), 0);
  ck_assert_uint_eq(sk__ratelimit_size(rl, 10), 2);
  sk__ratelimit_free(rl);
}
END_TEST

START_TEST(test_rl_success_and_ban_fixed) {
  sk__ratelimit *rl = sk__ratelimit_new(5, 60, 60);

  fail_n(rl, "10.1.1.1", 4, 0);
  sk__ratelimit_success(rl, "10.1.1.1", 4);
  sk__ratelimit_fail(rl, "10.1.1.1", 5);
  ck_assert_int_eq(sk__ratelimit_blocked(rl, "10.1.1.1", 5), 0);
  /* Fails during a ban neither count nor extend it. */
  fail_n(rl, "10.1.1.2", 5, 0); /* banned 4..64 */
  fail_n(rl, "10.1.1.2", 50, 10);
  sk__ratelimit_success(rl, "10.1.1.2", 11);
  ck_assert_int_eq(sk__ratelimit_blocked(rl, "10.1.1.2", 63.9), 1);
  ck_assert_int_eq(sk__ratelimit_blocked(rl, "10.1.1.2", 64), 0);
  sk__ratelimit_fail(rl, "10.1.1.2", 64);
  ck_assert_int_eq(sk__ratelimit_blocked(rl, "10.1.1.2", 64), 0);
  sk__ratelimit_free(rl);
}
END_TEST

START_TEST(test_rl_bounded) {
  sk__ratelimit *rl = sk__ratelimit_new_cap(5, 60, 60, 2);

  fail_n(rl, "10.0.0.1", 5, 0); /* banned, touched at 4 */
  sk__ratelimit_fail(rl, "10.0.0.2", 5);
  sk__ratelimit_fail(rl, "10.0.0.3", 6); /* full: the oldest, .1, goes */
  ck_assert_uint_eq(sk__ratelimit_size(rl, 6), 2);
  ck_assert_int_eq(sk__ratelimit_blocked(rl, "10.0.0.1", 6), 0);
  /* Idle entries are pruned once their window has passed. */
  ck_assert_uint_eq(sk__ratelimit_size(rl, 65.5), 1);
  ck_assert_uint_eq(sk__ratelimit_size(rl, 66), 0);
  sk__ratelimit_free(rl);

  ck_assert_ptr_null(sk__ratelimit_new(0, 60, 60));
  ck_assert_ptr_null(sk__ratelimit_new(5, 0, 60));
  ck_assert_ptr_null(sk__ratelimit_new_cap(5, 60, 60, 0));
  sk__ratelimit_free(NULL);
}
END_TEST

START_TEST(test_rl_long_ip_cut) {
  sk__ratelimit *rl = sk__ratelimit_new(1, 60, 60);
  char a[200], b[200];

  memset(a, 'a', sizeof a - 1);
  a[sizeof a - 1] = '\0';
  memcpy(b, a, sizeof b);
  b[150] = 'b';
  sk__ratelimit_fail(rl, a, 0);
  ck_assert_int_eq(sk__ratelimit_blocked(rl, b, 1), 1); /* merged, not escaped */
  sk__ratelimit_free(rl);
}
END_TEST

struct worker {
  sk__ratelimit *rl;
  int id;
};

static void *hammer(void *arg) {
  struct worker *w = arg;
  char ip[32];

  for (int i = 0; i < 2000; i++) {
    snprintf(ip, sizeof ip, "10.%d.%d.%d", w->id, i / 250, i % 250);
    sk__ratelimit_fail(w->rl, ip, 1);
    sk__ratelimit_blocked(w->rl, ip, 1);
    if (i % 7 == 0)
      sk__ratelimit_success(w->rl, ip, 1);
  }
  return NULL;
}

START_TEST(test_rl_threads) {
  sk__ratelimit *rl = sk__ratelimit_new_cap(5, 60, 60, 3000);
  struct worker w[4];
  pthread_t t[4];

  for (int i = 0; i < 4; i++) {
    w[i] = (struct worker){rl, i};
    ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  /* Over-full by 8000 addresses, yet bounded; successes free some. */
  ck_assert_uint_le(sk__ratelimit_size(rl, 1), 3000);
  ck_assert_uint_gt(sk__ratelimit_size(rl, 1), 2000);
  sk__ratelimit_free(rl);
}
END_TEST

static Suite *auth_suite(void) {
  Suite *s = suite_create("auth");
  TCase *mac = tcase_create("mac"), *key = tcase_create("key"), *rl = tcase_create("ratelimit");

  tcase_add_test(mac, test_mac_vectors);
  tcase_add_test(mac, test_mac_bad_args);
  tcase_add_test(mac, test_hmac_md5_rfc2202);
  tcase_add_test(mac, test_nonce);
  tcase_add_test(mac, test_mac_equal);
  tcase_add_test(mac, test_is_hex64);
  suite_add_tcase(s, mac);

  tcase_add_unchecked_fixture(key, tmp_setup, tmp_teardown);
  tcase_add_test(key, test_mac_from_loaded_key);
  tcase_add_test(key, test_key_load_modes);
  tcase_add_test(key, test_key_load_short);
  tcase_add_test(key, test_key_load_inner_space_kept);
  tcase_add_test(key, test_key_load_missing_and_odd);
  tcase_add_test(key, test_key_load_size);
  tcase_add_test(key, test_key_load_symlink);
  tcase_add_test(key, test_default_path);
  tcase_add_test(key, test_keygen);
  tcase_add_test(key, test_keygen_bare_name);
  suite_add_tcase(s, key);

  tcase_add_test(rl, test_rl_fifth_bans);
  tcase_add_test(rl, test_rl_window);
  tcase_add_test(rl, test_rl_independent);
  tcase_add_test(rl, test_rl_success_and_ban_fixed);
  tcase_add_test(rl, test_rl_bounded);
  tcase_add_test(rl, test_rl_long_ip_cut);
  tcase_add_test(rl, test_rl_threads);
  suite_add_tcase(s, rl);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(auth_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
