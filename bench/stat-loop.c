/* stat() in a loop for N seconds; prints calls per second. The client RESEARCH.md used. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: stat-loop PATH SECONDS\n"); return 2; }
  double secs = atof(argv[2]), t0 = now(), t;
  long n = 0;
  struct stat st;
  do {
    for (int i = 0; i < 100; i++) {
      if (stat(argv[1], &st) != 0) { perror("stat"); return 1; }
    }
    n += 100;
    t = now();
  } while (t - t0 < secs);
  printf("%ld\n", (long)(n / (t - t0)));
  return 0;
}
