/* jsonl.h - `--json` results of the file commands: one JSON object per
 * line on stdout, built as an sk_head without a type. */
#ifndef SOCKIT_CLI_JSONL_H
#define SOCKIT_CLI_JSONL_H

#include "sockit/sockit.h"

/* A new result object (NULL when out of memory: nothing is printed). */
sk_head *cli_jsonl_new(void);

/* Set a string member from text that may not be UTF-8 (a local path, a
 * name): bytes JSON cannot hold are shown escaped (\xNN), as on a
 * terminal. */
void cli_jsonl_str(sk_head *h, const char *key, const char *s);

/* A failed result: "ok":false, "error": the wire code (not_found, busy,
 * ...), "connection" or "local" (a local file's errno), and "message". */
void cli_jsonl_error(sk_head *h, int rc, const char *message);

/* Bytes that are not UTF-8 (a body, a program's output) as base64. */
void cli_jsonl_base64(sk_head *h, const char *key, const uint8_t *data, size_t n);

/* A request that failed, as one error object line (cli_jsonl_error). */
void cli_print_failure(int rc, const sk_head *resp);

/* Print h as one line on stdout and free it. */
void cli_jsonl_print(sk_head *h);

#endif
