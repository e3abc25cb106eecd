// The process whose lists `npm run bench`'s bins row decodes: main_arena's
// small, large and fastbin lists made by bench_fill_bins (baseline.c, linked
// in), then "ready" and a wait until its stdin ends. Single-threaded and
// quiet, it makes the same heap in every run: the row's C twin, whose time
// goes in following the lists through memory, times the same lists each
// run. Nothing here asks for 1024 bytes or more after the fill (printf's
// buffer would, and consolidate the fastbin): the line goes out by write().
//
// Usage: bins-target ROUNDS
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

uint64_t bench_fill_bins(uint64_t n);

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  if (bench_fill_bins(strtoull(argv[1], NULL, 10)) == 0) return 1;
  char line[32];
  const int length = snprintf(line, sizeof line, "ready %d\n", (int)getpid());
  if (length <= 0 || write(1, line, (size_t)length) != length) return 1;
  char buffer[256];
  while (read(0, buffer, sizeof buffer) > 0) {
  }
  return 0;
}
