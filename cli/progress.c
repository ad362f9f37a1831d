/* progress.c - the progress bar (progress.h). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"

#define BAR_WIDTH 24
#define REDRAW_S 0.1

static double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void cli_human_bytes(double n, char *out, size_t cap) {
  static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  int u = 0;
  while (n >= 1000 && u < 5) {
    n /= 1000;
    u++;
  }
  snprintf(out, cap, u == 0 ? "%.0f %s" : "%.1f %s", n, units[u]);
}

void cli_progress_start(cli_progress *p, const char *label, int quiet) {
  p->on = !quiet && isatty(STDERR_FILENO);
  p->label = label;
  p->t0 = p->last = mono();
  p->base = 0;
  p->base_set = 0;
}

static void draw(cli_progress *p, uint64_t done, uint64_t total, double now) {
  char bar[BAR_WIDTH + 1], sdone[32], stotal[32], srate[32], eta[32];
  double frac = total ? (double)done / (double)total : 1.0;
  double secs = now - p->t0, rate = secs > 0 ? (double)(done - p->base) / secs : 0;
  int fill = (int)(frac * BAR_WIDTH);
  for (int i = 0; i < BAR_WIDTH; i++)
    bar[i] = i < fill ? '#' : '.';
  bar[BAR_WIDTH] = '\0';
  cli_human_bytes((double)done, sdone, sizeof(sdone));
  cli_human_bytes((double)total, stotal, sizeof(stotal));
  cli_human_bytes(rate, srate, sizeof(srate));
  if (rate > 0 && done < total) {
    long left = (long)((double)(total - done) / rate);
    snprintf(eta, sizeof(eta), "ETA %ld:%02ld", left / 60, left % 60);
  } else {
    snprintf(eta, sizeof(eta), "%s", done >= total ? "done" : "ETA --:--");
  }
  fprintf(stderr, "\r%.40s [%s] %3d%% %s / %s  %s/s  %s\033[K", cli_safe(p->label), bar,
          (int)(frac * 100), sdone, stotal, srate, eta);
  fflush(stderr);
}

void cli_progress_update(void *ctx, uint64_t done, uint64_t total) {
  cli_progress *p = ctx;
  double now;
  if (!p->base_set) { /* the first report tells where a resume started */
    p->base_set = 1;
    p->base = done;
  }
  if (!p->on)
    return;
  now = mono();
  if (now - p->last < REDRAW_S && done < total)
    return;
  p->last = now;
  draw(p, done, total, now);
}

void cli_progress_end(cli_progress *p) {
  if (p->on)
    fputs("\r\033[K", stderr);
}

/* ---- the resume hint on Ctrl-C ------------------------------------------ */

#define HINT_CAP 8192

static char hint[HINT_CAP];
static volatile sig_atomic_t hint_len;

/* Append s quoted for a POSIX shell (bare when it has only safe bytes). */
static size_t quote(char *out, size_t at, const char *s) {
  static const char safe[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-";
  int bare = s[0] != '\0' && strspn(s, safe) == strlen(s);
  if (at < HINT_CAP && !bare)
    out[at++] = '\'';
  for (; *s && at + 5 < HINT_CAP; s++) {
    if (*s == '\'' && !bare) {
      memcpy(out + at, "'\\''", 4);
      at += 4;
    } else {
      out[at++] = *s;
    }
  }
  if (at < HINT_CAP && !bare)
    out[at++] = '\'';
  return at;
}

/* Only write(2) and raise(3) here: both are async-signal-safe. */
static void on_interrupt(int sig) {
  static const char head[] = "\r\033[Ksockit: interrupted; resume with: ";
  if (hint_len > 0) {
    size_t skip = isatty(STDERR_FILENO) ? 0 : 4; /* the bar's "\r\033[K" only on a terminal */
    ssize_t rc = write(STDERR_FILENO, head + skip, sizeof(head) - 1 - skip);
    rc = write(STDERR_FILENO, hint, (size_t)hint_len);
    (void)rc;
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

static size_t hint_word(size_t at, const char *word) {
  if (at > 0 && at < HINT_CAP)
    hint[at++] = ' ';
  return quote(hint, at, word);
}

void cli_resume_hint(int argc, char **argv) {
  static int installed;
  size_t at = hint_word(0, "sockit");
  int has_resume = 0;
  hint_len = 0;
  for (int i = 0; i < argc && at + 2 < HINT_CAP; i++) {
    has_resume |= strcmp(argv[i], "--resume") == 0;
    at = hint_word(at, argv[i]);
  }
  if (!has_resume)
    at = hint_word(at, "--resume");
  if (at + 1 >= HINT_CAP)
    return; /* too long to be of use */
  hint[at++] = '\n';
  hint_len = (sig_atomic_t)at;
  if (!installed) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    installed = 1;
  }
}

void cli_resume_hint_clear(void) {
  hint_len = 0;
}
