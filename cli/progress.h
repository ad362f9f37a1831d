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

/* While transfers run: Ctrl-C (SIGINT) or SIGTERM prints, on its own
 * line, the command that resumes them ("sockit: interrupted; resume with:
 * sockit CMD ARGS... --resume": the command as it was typed, quoted for a
 * POSIX shell, with --resume added), then the signal ends the process as
 * usual. argv is the command's (argv[0] is CMD). cli_resume_hint_clear()
 * forgets it (the handler stays and then only re-raises). */
void cli_resume_hint(int argc, char **argv);
void cli_resume_hint_clear(void);

/* "1.5 GB", "12 kB", "512 B" (SI units, as rates are given). */
void cli_human_bytes(double n, char *out, size_t cap);

#endif
