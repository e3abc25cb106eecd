// What a frozen child's first look at the heap costs on this machine, for
// the README's account of walkHeap(): the bench's heap made in C (a million
// blocks of 24, 40, 24 and 120 bytes, every 16th freed), then mallinfo2()
// and one byte of every page of [heap] read, in this process and in
// children forked as walkHeap()'s freeze forks one (each of the two first
// in turn), each twice; and a fresh 4 KiB
// page faulted in, for scale. Minor faults are counted beside each time.
//
//   gcc -O2 -o fork-touch bench/c/fork-touch.c && ./fork-touch
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BLOCKS 1000000
#define FREE_EVERY 16
#define PAGE 4096UL

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static long minor_faults(void) {
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  return r.ru_minflt;
}

static char *heap_start, *heap_end;

// One byte of every page of [heap], read.
static void touch_heap(void) {
  volatile char sink;
  for (char* p = heap_start; p < heap_end; p += PAGE) sink = *p;
  (void)sink;
}

static void timed(const char* who, const char* what, void (*run)(void)) {
  const long f = minor_faults();
  const double t = now_ms();
  run();
  printf("%-6s %-22s %8.2f ms, %ld minor faults\n", who, what, now_ms() - t, minor_faults() - f);
}

static void measure(void) { (void)mallinfo2(); }

// Each first look touches pages the other would: in turn, one goes first.
static void both(const char* who, int pages_first) {
  if (pages_first) timed(who, "one byte a page", touch_heap);
  timed(who, "mallinfo2()", measure);
  timed(who, "mallinfo2() again", measure);
  if (!pages_first) timed(who, "one byte a page", touch_heap);
  timed(who, "one byte a page again", touch_heap);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  static void* blocks[BLOCKS];
  static const size_t sizes[] = {24, 40, 24, 120};
  for (int i = 0; i < BLOCKS; i++) blocks[i] = malloc(sizes[i % 4]);
  for (int i = 0; i < BLOCKS; i += FREE_EVERY) free(blocks[i]);
  heap_start = (char*)((uintptr_t)blocks[1] & ~(PAGE - 1));
  heap_end = sbrk(0);
  printf("[heap]: %lu pages\n", (unsigned long)((heap_end - heap_start) / PAGE));
  both("parent", 0);
  for (int k = 0; k < 4; k++) {
    const double t = now_ms();
    const pid_t child = fork();
    if (child == 0) {
      printf("child  started %.2f ms after the fork\n", now_ms() - t);
      both("child", k % 2);
      _exit(0);
    }
    waitpid(child, NULL, 0);
  }
  const size_t length = 40UL << 20;
  char* fresh = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (fresh == MAP_FAILED) return 1;
  const double t = now_ms();
  for (size_t i = 0; i < length; i += PAGE) fresh[i] = 1;
  printf("a fresh 4 KiB page faulted in: %.2f us each\n", (now_ms() - t) * 1e3 / (length / PAGE));
  return 0;
}
