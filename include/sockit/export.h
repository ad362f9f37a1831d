/* sockit/export.h - SK_API, the mark of a function in libsockit's ABI.
 *
 * libsockit is compiled with -fvisibility=hidden: a function is exported
 * from libsockit.so only when its declaration in a header of include/sockit/
 * begins with SK_API. So:
 *   - every public function is declared `SK_API type name(...);` there;
 *     a new public function without SK_API is not exported, and programs
 *     linking the shared library fail to link;
 *   - internal functions (sk__*, and everything under src/) never carry it
 *     and stay hidden, however they are named.
 * The ctest `exported_symbols` (scripts/check-exports.py) compares
 * `nm -D --defined-only libsockit.so` with the declarations in these headers
 * and names every function declared without SK_API, declared but not
 * exported, or exported but declared nowhere.
 */
#ifndef SOCKIT_EXPORT_H
#define SOCKIT_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define SK_API __attribute__((visibility("default")))
#else
#define SK_API
#endif

#endif
