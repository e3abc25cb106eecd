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
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static volatile uint64_t sink;

static uint64_t now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

// The addon's SafeRead: process_vm_readv on our own pid, asked once (the
// addon keeps it too; getpid() is a system call each time).
static int safe_read(uintptr_t address, void* out, size_t length) {
  static pid_t pid;
  if (pid == 0) pid = getpid();
  struct iovec local = {out, length};
  struct iovec remote = {(void*)address, length};
  return process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)length ? 0 : -1;
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

// With `change`, a 64 MiB block (always mmapped: above glibc's largest
// dynamic threshold) is made or freed before each read, untimed, as the
// bench does before each maps() of its changed row: the kernel takes
// longer to print a map just after a mapping changed, C or not.
uint64_t bench_maps(uint64_t n, int change) {
  static char text[1 << 20];
  static struct region regions[16384];
  static void* big;
  uint64_t total = 0;
  for (uint64_t i = 0; i < n; i++) {
    if (change) {
      if (big == NULL) {
        big = malloc(64 << 20);
      } else {
        free(big);
        big = NULL;
      }
    }
    uint64_t start = now();
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    size_t used = 0;
    ssize_t got;
    while ((got = read(fd, text + used, sizeof(text) - used)) > 0) used += (size_t)got;
    close(fd);
    sink = parse_maps(text, used, regions, sizeof(regions) / sizeof(regions[0]));
    total += now() - start;
  }
  free(big);
  big = NULL;
  return total;
}

// The heap walk's C twin: the same pass walkSnapshot makes over a copy of
// [heap] (lib/walk/chunk.ts), with the same checks (size word sane, size a
// multiple of 16 and at least 32, inside the region, a clear P bit backed by
// an in-use predecessor and a matching prev_size), counting the chunks and
// summing sizes by state, n times. out: chunks, free chunks, free bytes,
// bytes of chunks that look in use, top size (0 when the walk stopped).
uint64_t bench_walk(const uint8_t* bytes, uint64_t start, uint64_t end, uint64_t n, uint64_t* out) {
  uint64_t t0 = now();
  for (uint64_t round = 0; round < n; round++) {
    uint64_t chunks = 0, free_count = 0, free_bytes = 0, used_bytes = 0, top = 0;
    uint64_t off = start, prev_size = 0;
    int prev_free_checked = 0;
    while (off + 16 <= end) {
      uint64_t word, stored_prev;
      memcpy(&stored_prev, bytes + off, 8);
      memcpy(&word, bytes + off + 8, 8);
      uint64_t size = word & ~(uint64_t)7;
      if ((word >> 32) >= 0x200000 || size < 32 || (size & 15) != 0 || (word & 2) != 0 || (word & 4) != 0 ||
          off + size > end)
        break;
      if ((word & 1) == 0) {
        // The chunk before is free: count it as such, once, if prev_size agrees.
        if (chunks == 0 || prev_free_checked || stored_prev != prev_size) break;
        free_count++;
        free_bytes += prev_size;
        used_bytes -= prev_size;
        prev_free_checked = 1;
      } else {
        prev_free_checked = 0;
      }
      chunks++;
      if (off + size == end) {
        if ((word & 1) == 0) break;
        top = size;
        off += size;
        break;
      }
      used_bytes += size;
      prev_size = size;
      off += size;
    }
    out[0] = chunks;
    out[1] = free_count;
    out[2] = free_bytes;
    out[3] = used_bytes;
    out[4] = top;
  }
  return now() - t0;
}

// Blocks a fill keeps until its release, their pointers in memory from
// mmap, not malloc, so that the heap holds only the blocks.
struct kept {
  void** blocks;
  uint64_t count;
  size_t span;
};

static int keep_room(struct kept* k, uint64_t count) {
  k->span = (size_t)count * sizeof(void*);
  k->blocks = mmap(NULL, k->span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (k->blocks == MAP_FAILED) {
    k->blocks = NULL;
    return 0;
  }
  k->count = count;
  return 1;
}

static void release_kept(struct kept* k) {
  if (k->blocks == NULL) return;
  for (uint64_t i = 0; i < k->count; i++) free(k->blocks[i]);
  munmap(k->blocks, k->span);
  k->blocks = NULL;
}

// A heap for the whole walks made without a handle of heapscope's: n blocks
// of sizes[i % count] bytes, every free_every-th freed, the rest kept until
// bench_release_heap(). Returns the blocks kept.
static struct kept walk_heap;

uint64_t bench_fill_heap(const uint64_t* sizes, uint64_t count, uint64_t n, uint64_t free_every) {
  if (!keep_room(&walk_heap, n)) return 0;
  void** blocks = walk_heap.blocks;
  uint64_t live = 0;
  for (uint64_t i = 0; i < n; i++) blocks[i] = malloc(sizes[i % count]);
  for (uint64_t i = 0; i < n; i++) {
    if (i % free_every == 0) {
      free(blocks[i]);
      blocks[i] = NULL;
    } else if (blocks[i] != NULL) {
      live++;
    }
  }
  return live;
}

void bench_release_heap(void) { release_kept(&walk_heap); }

// A heap whose bins hold long lists, for the bins' decode: n rounds of a
// 500-byte block (a small bin's chunk of 512 bytes), a 1100-byte block (a
// large bin's 1120) and a 40-byte block (a fastbin's 48), each of the first
// two followed by a 24-byte block kept in use, so that no freed block
// coalesces. The 500- and 1100-byte blocks are freed (the first 7 500-byte
// ones into the tcache, the rest into the unsorted bin: a 1120-byte chunk is
// above the tcache's largest, 1040), then 4000-byte blocks are asked for
// until every freed chunk has been sorted into its bin (each malloc sorts at
// most 10,000), and then the 40-byte blocks are freed into their fastbin (a
// request that large consolidates the fastbins first). The next request of
// 1024 bytes or more, by anyone, consolidates that fastbin too: its chunks
// then lie in the 48-byte small bin: bench/c/bins-target.c, a process of its
// own, makes these lists for the bench. Returns the blocks freed.
static struct kept bins_heap;

uint64_t bench_fill_bins(uint64_t n) {
  const uint64_t sorts = (2 * n) / 10000 + 2;
  if (!keep_room(&bins_heap, 6 * n + sorts)) return 0;
  void** blocks = bins_heap.blocks;
  static const size_t sizes[6] = {500, 24, 1100, 24, 40, 24};
  for (uint64_t i = 0; i < 6 * n; i++) blocks[i] = malloc(sizes[i % 6]);
  uint64_t freed = 0;
  for (uint64_t i = 0; i < 6 * n; i += 6) {
    free(blocks[i]);
    free(blocks[i + 2]);
    blocks[i] = blocks[i + 2] = NULL;
    freed += 2;
  }
  for (uint64_t k = 0; k < sorts; k++) blocks[6 * n + k] = malloc(4000);
  for (uint64_t i = 4; i < 6 * n; i += 6) {
    free(blocks[i]);
    blocks[i] = NULL;
    freed++;
  }
  return freed;
}


// The C twin of the bins' decode (lib/allocator/bin-walk.ts): main_arena's
// lists followed through a copy of [heap] (`bytes`, copied from `base`), n
// times, with the checks the decode makes of each chunk: 16-byte aligned,
// inside the copy, no more chunks than system_mem holds of the list's
// smallest size, no NON_MAIN_ARENA bit, a size the list may hold; a
// fastbin's chunk not met before in its list (the decode keeps a set), its
// fd revealed where safe-linking mangles it; a regular bin's chunk whose bk
// is the chunk before, whose next chunk has P clear and prev_size its size,
// a large bin's sizes never growing and the nextsize links of each size's
// first chunk read. `lists`: nlists rows of kind (0 fastbin, 1 regular, 2
// large), head (a fastbin's first chunk; a regular bin's fd), header (where
// a regular list ends: bin_at), min and max chunk size. out[0]: the chunks
// of every list. Returns the elapsed nanoseconds.
#define SEEN_SLOTS (1u << 20)
static uint64_t seen_keys[SEEN_SLOTS];
static uint32_t seen_marks[SEEN_SLOTS];
static uint32_t seen_mark;

static int seen_before(uint64_t p) {
  uint32_t slot = (uint32_t)((p >> 4) * 0x9e3779b97f4a7c15ull >> 44);
  while (seen_marks[slot] == seen_mark) {
    if (seen_keys[slot] == p) return 1;
    slot = (slot + 1) & (SEEN_SLOTS - 1);
  }
  seen_marks[slot] = seen_mark;
  seen_keys[slot] = p;
  return 0;
}

// Offsets compared, not ends: an address near 2^64 plus a few bytes would wrap past the check.
static int inside(uint64_t base, uint64_t length, uint64_t address, uint64_t bytes) {
  return address >= base && length >= bytes && address - base <= length - bytes;
}

static int word_at(const uint8_t* bytes, uint64_t base, uint64_t length, uint64_t address, uint64_t* out) {
  if (!inside(base, length, address, 8)) return 0;
  memcpy(out, bytes + (address - base), 8);
  return 1;
}

uint64_t bench_bins(const uint8_t* bytes, uint64_t base, uint64_t length, const uint64_t* lists, uint64_t nlists,
                    uint64_t system_mem, int64_t safe_linking, uint64_t n, uint64_t* out) {
  uint64_t t0 = now();
  for (uint64_t round = 0; round < n; round++) {
    uint64_t total = 0;
    for (uint64_t l = 0; l < nlists; l++) {
      const uint64_t* list = lists + 5 * l;
      const uint64_t kind = list[0], header = list[2], min = list[3], max = list[4];
      const uint64_t cap = system_mem / min;
      uint64_t p = list[1], prev = header, last_size = 0, count = 0;
      seen_mark++;
      while (kind == 0 ? p != 0 : p != header) {
        uint64_t word, fd, bk, prev_size, after;
        if (p % 16 != 0 || !inside(base, length, p, 32) || count >= cap) break;
        if (!word_at(bytes, base, length, p + 8, &word) || (word & 4) != 0) break;
        const uint64_t size = word & ~(uint64_t)7;
        if (size < min || size > max || size % 16 != 0 || size > system_mem) break;
        if (!word_at(bytes, base, length, p + 16, &fd)) break;
        if (kind == 0) {
          // (The set holds half its slots at most: a list that long is beyond any the bench makes.)
          if (count >= SEEN_SLOTS / 2 || seen_before(p)) break;
          count++;
          p = safe_linking ? fd ^ ((p + 16) >> 12) : fd;
          continue;
        }
        if (!word_at(bytes, base, length, p + 24, &bk) || bk != prev) break;
        if (size > length || !word_at(bytes, base, length, p + size, &prev_size) || !word_at(bytes, base, length, p + size + 8, &after) ||
            (after & 1) != 0 || prev_size != size)
          break;
        if (kind == 2) {
          uint64_t fd_nextsize = 0, bk_nextsize = 0;
          if (last_size != 0 && size > last_size) break;
          if (size != last_size) {
            if (!word_at(bytes, base, length, p + 32, &fd_nextsize) || !word_at(bytes, base, length, p + 40, &bk_nextsize)) break;
            sink = fd_nextsize ^ bk_nextsize;
          }
        }
        count++;
        last_size = size;
        prev = p;
        p = fd;
      }
      total += count;
    }
    out[0] = total;
  }
  return now() - t0;
}

// The read a header copy makes of another process's heap (lib/remote/
// header-snapshot.ts): the range in windows of `window` bytes, each read
// with one process_vm_readv into the same buffer, mapped once before the
// clock starts and written through once, so that no read takes a page
// fault. Returns the elapsed nanoseconds; *got is the bytes read.
uint64_t bench_read_remote_windows(int64_t pid, uint64_t address, uint64_t length, uint64_t window, uint64_t* got) {
  *got = 0;
  void* buffer = mmap(NULL, window, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buffer == MAP_FAILED) return 0;
  memset(buffer, 0, window);
  uint64_t t0 = now();
  for (uint64_t at = 0; at < length; at += window) {
    uint64_t n = length - at < window ? length - at : window;
    struct iovec local = {buffer, n};
    struct iovec remote = {(void*)(uintptr_t)(address + at), n};
    ssize_t r = process_vm_readv((pid_t)pid, &local, 1, &remote, 1, 0);
    if (r < 0) break;
    *got += (uint64_t)r;
    sink += ((volatile unsigned char*)buffer)[0];
  }
  uint64_t elapsed = now() - t0;
  munmap(buffer, window);
  return elapsed;
}
