// The C baselines of `npm run bench`: each function runs one operation n
// times in a tight loop and returns the elapsed nanoseconds. bench/run.mjs
// compiles this with gcc into a temporary shared library and calls it
// through koffi, once per round, so the loop runs inside the benchmark's
// own process, against the same heap as heapscope's calls; the single
// koffi call per round is noise against n iterations.
//
// Every loop does what the addon does for the same call (the header read
// goes through process_vm_readv, like the addon's safe read), and keeps
// each result in a volatile sink so that gcc cannot drop or fold a call.
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static volatile uint64_t sink;

static uint64_t now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

// The addon's SafeRead: process_vm_readv on our own pid.
static int safe_read(uintptr_t address, void* out, size_t length) {
  struct iovec local = {out, length};
  struct iovec remote = {(void*)address, length};
  return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)length ? 0 : -1;
}

uint64_t bench_malloc_free(uint64_t size, uint64_t n) {
  uint64_t start = now();
  for (uint64_t i = 0; i < n; i++) {
    void* volatile p = malloc(size);
    free(p);
  }
  return now() - start;
}

uint64_t bench_usable_size(uint64_t n) {
  void* p = malloc(32);
  uint64_t start = now();
  for (uint64_t i = 0; i < n; i++) sink = malloc_usable_size(p);
  uint64_t elapsed = now() - start;
  free(p);
  return elapsed;
}

uint64_t bench_program_break(uint64_t n) {
  uint64_t start = now();
  for (uint64_t i = 0; i < n; i++) sink = (uintptr_t)sbrk(0);
  return now() - start;
}

uint64_t bench_mallinfo2(uint64_t n) {
  uint64_t start = now();
  for (uint64_t i = 0; i < n; i++) {
    struct mallinfo2 m = mallinfo2();
    sink = m.uordblks;
  }
  return now() - start;
}

uint64_t bench_chunk_header(uint64_t n) {
  void* p = malloc(32);
  uint64_t words[2];
  uint64_t start = now();
  for (uint64_t i = 0; i < n; i++) {
    safe_read((uintptr_t)p - 16, words, 16);
    sink = words[1];
  }
  uint64_t elapsed = now() - start;
  free(p);
  return elapsed;
}

// One item of a plan or a size sweep: malloc, read the header, ask the
// usable size, free; what runPlan does for the steps
// [malloc, header, usableSize, free] (sizes[i] for item i, cycling).
uint64_t bench_items(const uint64_t* sizes, uint64_t count, uint64_t n) {
  uint64_t words[2];
  uint64_t start = now();
  for (uint64_t i = 0; i < n; i++) {
    void* p = malloc(sizes[i % count]);
    safe_read((uintptr_t)p - 16, words, 16);
    sink = words[1] + malloc_usable_size(p);
    free(p);
  }
  return now() - start;
}

// /proc/self/maps read with raw syscalls and parsed into these records:
// the fields heapscope's MemoryRegion has before classification.
struct region {
  uint64_t start, end, offset, inode;
  char perms[5];
  char dev[12];
  const char* path;
  size_t path_length;
};

static size_t parse_maps(char* text, size_t length, struct region* out, size_t capacity) {
  size_t count = 0;
  char* p = text;
  char* end = text + length;
  while (p < end && count < capacity) {
    char* eol = memchr(p, '\n', (size_t)(end - p));
    if (eol == NULL) eol = end;
    struct region* r = &out[count++];
    r->start = strtoull(p, &p, 16);
    r->end = strtoull(p + 1, &p, 16);
    memcpy(r->perms, p + 1, 4);
    r->perms[4] = 0;
    r->offset = strtoull(p + 6, &p, 16);
    char* dev = p + 1;
    char* space = memchr(dev, ' ', (size_t)(eol - dev));
    size_t dev_length = (size_t)(space - dev) < sizeof(r->dev) - 1 ? (size_t)(space - dev) : sizeof(r->dev) - 1;
    memcpy(r->dev, dev, dev_length);
    r->dev[dev_length] = 0;
    r->inode = strtoull(space + 1, &p, 10);
    while (p < eol && *p == ' ') p++;
    r->path = p;
    r->path_length = (size_t)(eol - p);
    p = eol + 1;
  }
  return count;
}

uint64_t bench_maps(uint64_t n) {
  static char text[1 << 20];
  static struct region regions[16384];
  uint64_t start = now();
  for (uint64_t i = 0; i < n; i++) {
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    size_t used = 0;
    ssize_t got;
    while ((got = read(fd, text + used, sizeof(text) - used)) > 0) used += (size_t)got;
    close(fd);
    sink = parse_maps(text, used, regions, sizeof(regions) / sizeof(regions[0]));
  }
  return now() - start;
}

// The heap walk per chunk vs a C loop over the same snapshot: reserved for
// the heap walk, which is being written; bench/run.mjs has its row.
