/* progress.c - the progress bar (progress.h). */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

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
  fprintf(stderr, "\r%.40s [%s] %3d%% %s / %s  %s/s  %s\033[K", p->label, bar, (int)(frac * 100),
          sdone, stotal, srate, eta);
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
