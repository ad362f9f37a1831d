/* progress.h - a one-line progress bar on stderr (bytes, rate, ETA), drawn
 * only when stderr is a terminal and --quiet was not given. Used by put and
 * get; fits any long transfer that can report done/total. */
#ifndef SOCKIT_CLI_PROGRESS_H
#define SOCKIT_CLI_PROGRESS_H

#include <stdint.h>

typedef struct cli_progress {
  int on;
  const char *label;
  double t0, last; /* monotonic seconds: start, last draw */
  uint64_t base;   /* bytes already there at the start (resume) */
  int base_set;
} cli_progress;

/* Start a bar labelled label (borrowed; keep it alive). */
void cli_progress_start(cli_progress *p, const char *label, int quiet);

/* An sk_progress_fn: ctx is the cli_progress. Redraws at most 10 times a
 * second, and always at the end. */
void cli_progress_update(void *ctx, uint64_t done, uint64_t total);

/* Clear the bar's line. */
void cli_progress_end(cli_progress *p);

/* While a transfer runs: Ctrl-C (SIGINT) or SIGTERM prints, on its own
 * line, the command that resumes it ("sockit: interrupted; resume with:
 * CMD"), then the signal ends the process as usual. argv is quoted for a
 * POSIX shell. cli_resume_hint_clear() forgets it (the handler stays and
 * then only re-raises). */
void cli_resume_hint(const char *const *argv, int argc);

/* The hint's start for cc's connection: "sockit CMD ADDR [--key-file F |
 * --no-auth]" into argv (room for 6); returns the count. */
struct cli_client;
int cli_resume_argv(const struct cli_client *cc, const char *cmd, const char **argv);
void cli_resume_hint_clear(void);

/* "1.5 GB", "12 kB", "512 B" (SI units, as rates are given). */
void cli_human_bytes(double n, char *out, size_t cap);

#endif
