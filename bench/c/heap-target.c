// The other process of `npm run bench`'s pid rows: it mallocs COUNT
// blocks, the sizes given taken in turn, writing one byte into each (so
// every page of the heap is resident), frees every FREE_EVERY-th (so the
// heap holds free chunks in the tcache and the bins too), prints "ready"
// and waits until its stdin ends. Single-threaded: all is main_arena's.
//
// Usage: heap-target COUNT FREE_EVERY SIZE...
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: heap-target COUNT FREE_EVERY SIZE...\n");
    return 2;
  }
  size_t count = strtoull(argv[1], NULL, 10);
  size_t every = strtoull(argv[2], NULL, 10);
  size_t sizes = (size_t)argc - 3;
  char** blocks = malloc(count * sizeof *blocks);
  if (blocks == NULL) return 1;
  for (size_t i = 0; i < count; i++) {
    blocks[i] = malloc(strtoull(argv[3 + i % sizes], NULL, 10));
    if (blocks[i] == NULL) return 1;
    blocks[i][0] = (char)i;
  }
  for (size_t i = 0; i < count; i += every) free(blocks[i]);
  printf("ready %d\n", (int)getpid());
  fflush(stdout);
  char buffer[256];
  while (read(0, buffer, sizeof buffer) > 0) {
  }
  return 0;
}
