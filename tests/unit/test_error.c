/* test_error.c - the error table: texts, wire names, fatal set, version. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "sockit/error.h"
#include "sockit/version.h"

/* SPEC 4.2, in its order, with the code each wire name must map to. */
static const struct {
  int code;
  const char *wire;
} spec_codes[] = {
    {SK_EBADFRAME, "bad_frame"},
    {SK_EBADREQ, "bad_request"},
    {SK_EUNKNOWNTYPE, "unknown_type"},
    {SK_EAUTHREQ, "auth_required"},
    {SK_EAUTHFAIL, "auth_failed"},
    {SK_ERATELIMIT, "rate_limited"},
    {SK_EFORBIDDEN, "forbidden"},
    {SK_ENOTFOUND, "not_found"},
    {SK_EEXISTS, "exists"},
    {SK_ETOOLARGE, "too_large"},
    {SK_EHASHMISMATCH, "hash_mismatch"},
    {SK_EIO, "io_error"},
    {SK_EBUSY, "busy"},
    {SK_ENICKTAKEN, "nick_taken"},
    {SK_ESLOWCONSUMER, "slow_consumer"},
    {SK_ETIMEOUT, "timeout"},
    {SK_EINTERNAL, "internal"},
    {SK_EUNAVAILABLE, "unavailable"}, /* SPEC 9 */
};
#define NSPEC (sizeof(spec_codes) / sizeof(spec_codes[0]))

START_TEST(strerror_sk_codes) {
  ck_assert_str_eq(sk_strerror(SK_EBADFRAME), "malformed frame");
  ck_assert_str_eq(sk_strerror(SK_EAUTHFAIL), "authentication failed (wrong key?)");
  ck_assert_str_eq(sk_strerror(SK_EREMOTE), "the server answered with an error");
  ck_assert_int_eq(SK_EBADFRAME, SK_ERR_BASE + 2);
  for (int c = SK_EFIRST_ + 1; c < SK_ELAST_; c++) {
    ck_assert_ptr_nonnull(sk_strerror(c));
    ck_assert_str_ne(sk_strerror(c), "unknown error");
  }
}
END_TEST

START_TEST(strerror_errno_and_others) {
  ck_assert_str_eq(sk_strerror(0), "ok");
  ck_assert_str_eq(sk_strerror(-ENOENT), "No such file or directory");
  ck_assert_str_eq(sk_strerror(-ECONNREFUSED), "Connection refused");
  ck_assert_ptr_nonnull(sk_strerror(-4095));
  ck_assert_str_eq(sk_strerror(SK_EFIRST_), "unknown error");
  ck_assert_str_eq(sk_strerror(SK_ELAST_), "unknown error");
  ck_assert_str_eq(sk_strerror(-5000), "unknown error");
  ck_assert_str_eq(sk_strerror(INT_MIN), "unknown error");
  ck_assert_str_eq(sk_strerror(7), "unknown error");
}
END_TEST

START_TEST(wire_names_spec) {
  for (size_t i = 0; i < NSPEC; i++) {
    ck_assert_str_eq(sk_err_wire_name(spec_codes[i].code), spec_codes[i].wire);
    ck_assert_int_eq(sk_err_from_wire(spec_codes[i].wire), spec_codes[i].code);
  }
}
END_TEST

/* Every code in the table: either its wire name maps back to it, or it has
 * none and travels as "internal". */
START_TEST(wire_round_trip_all) {
  int internal = 0;
  for (int c = SK_EFIRST_ + 1; c < SK_ELAST_; c++) {
    const char *w = sk_err_wire_name(c);
    if (sk_err_from_wire(w) == c)
      continue;
    ck_assert_str_eq(w, "internal");
    internal++;
  }
  /* PROTO BADMAC BADKEY BADADDR CLOSED USAGE REMOTE RESOLVE NOHELLO TLS TLSCERT TLSPLAIN
   * TLSWANTED */
  ck_assert_int_eq(internal, 13);
  ck_assert_int_eq(SK_ELAST_ - SK_EFIRST_ - 1, (int)NSPEC + 13);
}
END_TEST

START_TEST(wire_names_errno) {
  const int io[] = {-EIO, -ENOSPC, -EDQUOT, -EFBIG, -EROFS};
  for (size_t i = 0; i < sizeof(io) / sizeof(io[0]); i++)
    ck_assert_str_eq(sk_err_wire_name(io[i]), "io_error");
  ck_assert_str_eq(sk_err_wire_name(-ENOENT), "not_found");
  ck_assert_str_eq(sk_err_wire_name(-EEXIST), "exists");
  ck_assert_str_eq(sk_err_wire_name(-EACCES), "forbidden");
  ck_assert_str_eq(sk_err_wire_name(-EPERM), "forbidden");
  ck_assert_str_eq(sk_err_wire_name(-EINVAL), "internal");
  ck_assert_str_eq(sk_err_wire_name(-ENOMEM), "internal");
  ck_assert_str_eq(sk_err_wire_name(0), "internal");
  ck_assert_str_eq(sk_err_wire_name(SK_EPROTO), "internal");
}
END_TEST

START_TEST(from_wire_unknown) {
  ck_assert_int_eq(sk_err_from_wire("nope"), SK_EREMOTE);
  ck_assert_int_eq(sk_err_from_wire(""), SK_EREMOTE);
  ck_assert_int_eq(sk_err_from_wire(NULL), SK_EREMOTE);
  ck_assert_int_eq(sk_err_from_wire("BAD_FRAME"), SK_EREMOTE);
}
END_TEST

START_TEST(fatal_set) {
  int n = 0;
  for (int c = SK_EFIRST_ + 1; c < SK_ELAST_; c++)
    n += sk_err_is_fatal(c) != 0;
  ck_assert_int_eq(n, 5);
  ck_assert(sk_err_is_fatal(SK_EBADFRAME));
  ck_assert(sk_err_is_fatal(SK_EAUTHREQ));
  ck_assert(sk_err_is_fatal(SK_EAUTHFAIL));
  ck_assert(sk_err_is_fatal(SK_ERATELIMIT));
  ck_assert(sk_err_is_fatal(SK_ESLOWCONSUMER));
  ck_assert(!sk_err_is_fatal(SK_ETOOLARGE));
  ck_assert(!sk_err_is_fatal(SK_EUNKNOWNTYPE));
  ck_assert(!sk_err_is_fatal(0));
  ck_assert(!sk_err_is_fatal(-EIO));
}
END_TEST

START_TEST(version) {
  ck_assert_str_eq(sk_version(), SK_VERSION);
  ck_assert_str_eq(SK_VERSION, "0.1.0");
}
END_TEST

int main(void) {
  Suite *s = suite_create("error");
  TCase *tc = tcase_create("core");
  int failed;
  tcase_add_test(tc, strerror_sk_codes);
  tcase_add_test(tc, strerror_errno_and_others);
  tcase_add_test(tc, wire_names_spec);
  tcase_add_test(tc, wire_round_trip_all);
  tcase_add_test(tc, wire_names_errno);
  tcase_add_test(tc, from_wire_unknown);
  tcase_add_test(tc, fatal_set);
  tcase_add_test(tc, version);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
