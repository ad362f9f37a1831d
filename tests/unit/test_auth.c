/* test_auth.c - keys, macs, nonces and the failed-auth rate limit.
 *
 * The HMAC-SHA256 vectors were computed outside sockit, with both
 *   python3 -c 'import hmac,hashlib; print(hmac.new(K, M, hashlib.sha256).hexdigest())'
 * and `printf %s M | openssl dgst -sha256 -hmac K`, which agreed. The
 * HMAC-MD5 vectors are RFC 2202 section 2. The TLS PSK vectors (SPEC 8)
 * were computed with Python's hmac and hashlib, following the spec's
 * formulas literally (HMAC of HMAC, not sockit's HKDF call):
 *   prk = hmac.new(b"sockit/2 tls", S, sha256).digest()
 *   hmac.new(prk, b"psk\x01", sha256).hexdigest()
 *   "sockit/2:" + sha256(b"sockit/2 key id:" + S).hexdigest()[:16] */
#include "auth/hmac_md5.h"
#include "auth/ratelimit.h"

#include <sockit/auth.h>
#include <sockit/error.h>

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
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

static void hex_of(const uint8_t *p, size_t n, char *out) {
  for (size_t i = 0; i < n; i++)
    sprintf(out + 2 * i, "%02x", p[i]);
}

START_TEST(test_tls_psk_vectors) {
  static const struct {
    const char *secret, *psk, *identity;
  } v[] = {
      {SECRET, "df5c1f9946a491794c3d2c8b736b5aa9441045a2ba28e1d4b24e53e7d8ea278a",
       "sockit/2:a97d5af76f9eb4ab"},
      {"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
       "030659fcb3b0bed2584e8b9bed6391efa9d5d92291714cf55bfb1b1e476e5082",
       "sockit/2:c29f32e1a41c7b6f"},
  };
  for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
    sk_key k = {(uint8_t *)v[i].secret, strlen(v[i].secret)};
    sk_tls_psk p;
    char hex[2 * SK_TLS_PSK_LEN + 1];
    ck_assert_int_eq(sk_auth_tls_psk(&k, &p), 0);
    hex_of(p.psk, sizeof(p.psk), hex);
    ck_assert_str_eq(hex, v[i].psk);
    ck_assert_str_eq(p.identity, v[i].identity);
    ck_assert_uint_eq(strlen(p.identity), SK_TLS_ID_LEN);
    sk_auth_tls_psk_clear(&p);
    ck_assert_uint_eq(p.psk[0] | p.psk[31] | (uint8_t)p.identity[0], 0);
  }
}
END_TEST

START_TEST(test_tls_psk_bad_args) {
  sk_key none = {0}, k = test_key();
  sk_tls_psk p;
  ck_assert_int_eq(sk_auth_tls_psk(NULL, &p), -EINVAL);
  ck_assert_int_eq(sk_auth_tls_psk(&none, &p), -EINVAL);
  ck_assert_int_eq(sk_auth_tls_psk(&k, NULL), -EINVAL);
  sk_auth_tls_psk_clear(NULL);
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

static sk__ratelimit *spec_rl(void) {
  sk__ratelimit *rl = sk__ratelimit_new(NULL, 0);
  ck_assert_ptr_nonnull(rl);
  return rl;
}

/* issue 15 item 8: five junk macs locked a source out for 60 s, renewable
 * for ever. Now the first penalty is 5 s. */
START_TEST(test_rl_fifth_starts_a_short_penalty) {
  sk__ratelimit *rl = spec_rl();

  fail_n(rl, "10.0.0.1", 4, 100); /* t = 100..103 */
  ck_assert(sk__ratelimit_blocked(rl, "10.0.0.1", 103.5) == 0);
  sk__ratelimit_fail(rl, "10.0.0.1", 104);
  ck_assert(sk__ratelimit_blocked(rl, "10.0.0.1", 104) == 5.0);
  ck_assert(sk__ratelimit_blocked(rl, "10.0.0.1", 108.9) > 0);
  ck_assert(sk__ratelimit_blocked(rl, "10.0.0.1", 109) == 0);
  sk__ratelimit_free(rl);
}
END_TEST

/* After a penalty, each wrong mac starts the next one at twice the length,
 * up to 10 minutes: 5, 10, 20, ..., 320, 600, 600. */
START_TEST(test_rl_penalty_doubles_up_to_ten_minutes) {
  static const double expect[] = {10, 20, 40, 80, 160, 320, 600, 600, 600};
  sk__ratelimit *rl = spec_rl();
  double t = 4; /* the first penalty: 4..9 */

  fail_n(rl, "10.0.0.1", 5, 0);
  ck_assert(sk__ratelimit_blocked(rl, "10.0.0.1", 4) == 5.0);
  t = 9;
  for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
    t += 1; /* one second after the last penalty ended: one wrong mac */
    ck_assert(sk__ratelimit_blocked(rl, "10.0.0.1", t) == 0);
    sk__ratelimit_fail(rl, "10.0.0.1", t);
    ck_assert_msg(sk__ratelimit_blocked(rl, "10.0.0.1", t) == expect[i], "penalty %zu: %g", i,
                  sk__ratelimit_blocked(rl, "10.0.0.1", t));
    t += expect[i];
  }
  sk__ratelimit_free(rl);
}
END_TEST

/* Wrong macs during a penalty neither count nor extend it: a third party
 * cannot keep a source locked out by trying while it is. */
START_TEST(test_rl_fails_during_a_penalty_do_not_extend_it) {
  sk__ratelimit *rl = spec_rl();

  fail_n(rl, "10.1.1.2", 5, 0); /* 4..9 */
  for (int i = 0; i < 50; i++)
    sk__ratelimit_fail(rl, "10.1.1.2", 4 + i * 0.1);
  ck_assert(sk__ratelimit_blocked(rl, "10.1.1.2", 8.9) > 0);
  ck_assert(sk__ratelimit_blocked(rl, "10.1.1.2", 9) == 0);
  sk__ratelimit_fail(rl, "10.1.1.2", 9); /* after it: the next, doubled */
  ck_assert(sk__ratelimit_blocked(rl, "10.1.1.2", 9) == 10.0);
  sk__ratelimit_free(rl);
}
END_TEST

/* Ten quiet minutes after a penalty ended and the source starts over. */
START_TEST(test_rl_decays_after_ten_quiet_minutes) {
  sk__ratelimit *rl = spec_rl();

  fail_n(rl, "10.0.0.9", 5, 0);           /* 4..9 */
  sk__ratelimit_fail(rl, "10.0.0.9", 10); /* 10..20 */
  ck_assert(sk__ratelimit_blocked(rl, "10.0.0.9", 10) == 10.0);
  /* 599 s after the end: still remembered, the next is 20 s */
  sk__ratelimit_fail(rl, "10.0.0.9", 619);
  ck_assert(sk__ratelimit_blocked(rl, "10.0.0.9", 619) == 20.0);
  /* 600 s after that one ended (639): forgotten, five again for 5 s */
  ck_assert_uint_eq(sk__ratelimit_size(rl, 1238.9), 1);
  ck_assert_uint_eq(sk__ratelimit_size(rl, 1239), 0);
  fail_n(rl, "10.0.0.9", 4, 1239);
  ck_assert(sk__ratelimit_blocked(rl, "10.0.0.9", 1243) == 0);
  sk__ratelimit_fail(rl, "10.0.0.9", 1243);
  ck_assert(sk__ratelimit_blocked(rl, "10.0.0.9", 1243) == 5.0);
  /* also when the entry was not pruned before the fail (no size call) */
  fail_n(rl, "10.0.0.8", 5, 0);
  sk__ratelimit_fail(rl, "10.0.0.8", 9 + 600);
  ck_assert(sk__ratelimit_blocked(rl, "10.0.0.8", 609) == 0);
  sk__ratelimit_free(rl);
}
END_TEST

START_TEST(test_rl_window) {
  sk__ratelimit *rl = spec_rl();

  /* Five fails, but the first and fifth are 64 s apart. */
  for (int i = 0; i < 5; i++)
    sk__ratelimit_fail(rl, "::1", 16.0 * i);
  ck_assert(sk__ratelimit_blocked(rl, "::1", 64) == 0);
  /* Exactly 60 s apart is not "within 60 s". */
  for (int i = 0; i < 5; i++)
    sk__ratelimit_fail(rl, "10.0.0.2", 15.0 * i);
  ck_assert(sk__ratelimit_blocked(rl, "10.0.0.2", 60) == 0);
  /* The window slides: 16, 32, 48, 64, 65 are five within 49 s. */
  sk__ratelimit_fail(rl, "::1", 65);
  ck_assert(sk__ratelimit_blocked(rl, "::1", 65) > 0);
  sk__ratelimit_free(rl);
}
END_TEST

START_TEST(test_rl_independent) {
  sk__ratelimit *rl = spec_rl();

  fail_n(rl, "192.0.2.1", 5, 0);
  fail_n(rl, "192.0.2.2", 4, 0);
  ck_assert(sk__ratelimit_blocked(rl, "192.0.2.1", 5) > 0);
  ck_assert(sk__ratelimit_blocked(rl, "192.0.2.2", 5) == 0);
  ck_assert(sk__ratelimit_blocked(rl, "192.0.2.3", 5) == 0);
  ck_assert(sk__ratelimit_blocked(rl, "2001:db8::/64", 5) == 0);
  /* No key (exempt peers) is never counted. */
  fail_n(rl, NULL, 10, 0);
  fail_n(rl, "", 10, 0);
  ck_assert(sk__ratelimit_blocked(rl, NULL, 10) == 0);
  ck_assert(sk__ratelimit_blocked(rl, "", 10) == 0);
  ck_assert_uint_eq(sk__ratelimit_size(rl, 8), 2);
  sk__ratelimit_free(rl);
}
END_TEST

/* A right mac forgets the unpunished fails; a penalty level reached stays. */
START_TEST(test_rl_success) {
  sk__ratelimit *rl = spec_rl();

  fail_n(rl, "10.1.1.1", 4, 0);
  sk__ratelimit_success(rl, "10.1.1.1", 4);
  ck_assert_uint_eq(sk__ratelimit_size(rl, 4), 0);
  sk__ratelimit_fail(rl, "10.1.1.1", 5);
  ck_assert(sk__ratelimit_blocked(rl, "10.1.1.1", 5) == 0);
  fail_n(rl, "10.1.1.3", 5, 0); /* 4..9 */
  sk__ratelimit_success(rl, "10.1.1.3", 20);
  sk__ratelimit_fail(rl, "10.1.1.3", 21);
  ck_assert(sk__ratelimit_blocked(rl, "10.1.1.3", 21) == 10.0);
  sk__ratelimit_free(rl);
}
END_TEST

START_TEST(test_rl_bounded) {
  sk__ratelimit *rl = sk__ratelimit_new(NULL, 2);
  sk__rl_policy bad = sk__rl_spec_policy;

  fail_n(rl, "10.0.0.1", 5, 0); /* penalty, touched at 4 */
  sk__ratelimit_fail(rl, "10.0.0.2", 5);
  sk__ratelimit_fail(rl, "10.0.0.3", 6); /* full: the oldest, .1, goes */
  ck_assert_uint_eq(sk__ratelimit_size(rl, 6), 2);
  ck_assert(sk__ratelimit_blocked(rl, "10.0.0.1", 6) == 0);
  /* Unpunished entries are pruned once their window has passed. */
  ck_assert_uint_eq(sk__ratelimit_size(rl, 65.5), 1);
  ck_assert_uint_eq(sk__ratelimit_size(rl, 66), 0);
  sk__ratelimit_free(rl);

  bad.max_fails = 0;
  ck_assert_ptr_null(sk__ratelimit_new(&bad, 0));
  bad = sk__rl_spec_policy;
  bad.window = 0;
  ck_assert_ptr_null(sk__ratelimit_new(&bad, 0));
  bad = sk__rl_spec_policy;
  bad.max = 1; /* below first */
  ck_assert_ptr_null(sk__ratelimit_new(&bad, 0));
  sk__ratelimit_free(NULL);
}
END_TEST

START_TEST(test_rl_long_key_cut) {
  sk__rl_policy one = sk__rl_spec_policy;
  sk__ratelimit *rl;
  char a[200], b[200];

  one.max_fails = 1;
  rl = sk__ratelimit_new(&one, 0);
  memset(a, 'a', sizeof a - 1);
  a[sizeof a - 1] = '\0';
  memcpy(b, a, sizeof b);
  b[150] = 'b';
  sk__ratelimit_fail(rl, a, 0);
  ck_assert(sk__ratelimit_blocked(rl, b, 1) > 0); /* merged, not escaped */
  sk__ratelimit_free(rl);
}
END_TEST

/* Sources: IPv4 as is (mapped too), IPv6 by /64, Unix peers by uid. */
START_TEST(test_rl_source_keys) {
  char key[SK__RATELIMIT_KEY], want[32];
  struct sockaddr_in v4 = {.sin_family = AF_INET};
  struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  int sv[2];

  inet_pton(AF_INET, "192.0.2.1", &v4.sin_addr);
  ck_assert_str_eq(sk__ratelimit_source((struct sockaddr *)&v4, -1, key), "192.0.2.1");
  inet_pton(AF_INET6, "::ffff:192.0.2.1", &v6.sin6_addr);
  ck_assert_str_eq(sk__ratelimit_source((struct sockaddr *)&v6, -1, key), "192.0.2.1");
  inet_pton(AF_INET6, "2001:db8:1:2:aaaa:bbbb:cccc:dddd", &v6.sin6_addr);
  ck_assert_str_eq(sk__ratelimit_source((struct sockaddr *)&v6, -1, key), "2001:db8:1:2::/64");
  inet_pton(AF_INET6, "2001:db8:1:2::1", &v6.sin6_addr);
  ck_assert_str_eq(sk__ratelimit_source((struct sockaddr *)&v6, -1, key), "2001:db8:1:2::/64");
  inet_pton(AF_INET6, "2001:db8:1:3::1", &v6.sin6_addr);
  ck_assert_str_eq(sk__ratelimit_source((struct sockaddr *)&v6, -1, key), "2001:db8:1:3::/64");
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  snprintf(want, sizeof want, "uid:%u", (unsigned)getuid());
  ck_assert_str_eq(sk__ratelimit_source((struct sockaddr *)&un, sv[0], key), want);
  ck_assert_str_eq(sk__ratelimit_source((struct sockaddr *)&un, -1, key), "");
  close(sv[0]);
  close(sv[1]);
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
  sk__ratelimit *rl = sk__ratelimit_new(NULL, 3000);
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
  tcase_add_test(mac, test_tls_psk_vectors);
  tcase_add_test(mac, test_tls_psk_bad_args);
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

  tcase_add_test(rl, test_rl_fifth_starts_a_short_penalty);
  tcase_add_test(rl, test_rl_penalty_doubles_up_to_ten_minutes);
  tcase_add_test(rl, test_rl_fails_during_a_penalty_do_not_extend_it);
  tcase_add_test(rl, test_rl_decays_after_ten_quiet_minutes);
  tcase_add_test(rl, test_rl_window);
  tcase_add_test(rl, test_rl_independent);
  tcase_add_test(rl, test_rl_success);
  tcase_add_test(rl, test_rl_bounded);
  tcase_add_test(rl, test_rl_long_key_cut);
  tcase_add_test(rl, test_rl_source_keys);
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
