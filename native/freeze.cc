// A copy of this process frozen at one instant, for the plan executor's
// freeze step. glibc's fork() takes every arena's lock before it copies the
// process (its malloc fork handler), so the child's memory holds the
// allocator as it stood between two operations of any thread, and stays so:
// the child only answers the break and mallinfo2(), then copies what the
// parent asks for (asked for a fastbin limit, it first sets it:
// mallopt(M_MXFAST), whose consolidation of main_arena's fastbins is done
// before the parent reads). The parent's reads copy the child's memory
// while the parent's other threads (V8's helpers free into main_arena at any
// moment) go on. mallinfo2() writes nothing but the arenas' locks, none of
// them in [heap]: the parent copies [heap] while the child measures, which
// touches every page the free lists run through and costs a fresh process
// more than the copy costs the parent (less once the child has read
// [heap]'s resident pages in order first: PageInAnonymous).
//
// A read's runs of present pages are pieces in memory the two share; once
// it has measured, the child writes them into the parent
// (process_vm_writev) from the first on, while the parent copies them
// through /proc/PID/mem from the last down, until the two meet. Reading its
// own memory, the child copies each byte once, where /proc/PID/mem copies
// each page twice: the snapshot walkHeap() takes of a [heap] of a million
// chunks took 34.5-38.1 ms so, against 43.2-46.4 ms with the parent copying
// alone (medians of 30, three runs each in turns). Where the child may not
// write into the parent (Yama's ptrace_scope 1 lets a process trace its
// descendants only; seccomp; an LSM), the parent copies each piece it could
// not, and later freezes hand their children none. Nothing here calls
// malloc in this process.
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/syscall.h>
#include <sys/uio.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "heapscope.h"

namespace heapscope {

namespace {

// A run of the child's memory to copy into this process: `length` bytes at
// `from` there, to `to` here. `result` is what the child's
// process_vm_writev gave (bytes, or -errno), kUndone until it has; for a
// piece this process took back, the bytes it copied, and `err` why not all.
struct Piece {
  uintptr_t from;
  uint8_t* to;
  uint64_t length;
  int64_t result;
  int err;
};

constexpr int64_t kUndone = INT64_MIN;

// Pieces one read may hand the child (a run is at most 2 MiB, one batch of
// pagemap entries): the rest of a bigger read this process copies itself.
constexpr uint32_t kPieces = 1024;

// What the child measured, and the pieces of the current read, in memory
// the two processes share.
struct Facts {
  MallInfo2 mallinfo;
  MallinfoSource source;
  uintptr_t programBreak;
  // mallopt(M_MXFAST)'s answer when the freeze asked for a fastbin limit: 1 set, 0 refused.
  int maxFastSet;
  // Which pieces are whose: the low half counts those the child took, from
  // the first on; the high half is where those this process has not taken
  // back (from the last down) end. Each side takes one by compare-and-swap.
  std::atomic<uint64_t> claim;
  Piece pieces[kPieces];
};

static_assert(std::atomic<uint64_t>::is_always_lock_free, "the claim word is shared with another process");

// Closes [lo, hi]: close_range where the kernel has it (5.9), else one by one
// up to the descriptor limit (Node raises it to the hard limit, often 2^19
// or 2^20; a limit above 2^20 is taken as 2^20).
void CloseRange(unsigned lo, unsigned hi) {
  if (lo > hi) return;
#ifdef SYS_close_range
  if (syscall(SYS_close_range, lo, hi, 0) == 0) return;
#endif
  const long limit = sysconf(_SC_OPEN_MAX);
  const unsigned long most = limit > 0 && limit <= (1L << 20) ? static_cast<unsigned long>(limit) : 1UL << 20;
  const unsigned last = static_cast<unsigned>(std::min<unsigned long>(hi, most - 1));
  for (unsigned fd = lo; fd <= last; fd++) close(static_cast<int>(fd));
}

// How long the child may take to close its descriptors and measure, in
// milliseconds: a child that hangs (a library's fork handler waiting on a
// lock another thread held, a stopped child) is killed, and the freeze fails.
constexpr int kReadyTimeoutMs = 10000;

// Waits for the child's next byte on `fd`: 0, ETIMEDOUT when it took
// longer than kReadyTimeoutMs, ECHILD when the child's end closed first.
int NextByte(int fd) {
  struct pollfd wait = {fd, POLLIN, 0};
  int polled;
  do polled = poll(&wait, 1, kReadyTimeoutMs);
  while (polled < 0 && errno == EINTR);
  char byte = 0;
  ssize_t n = -1;
  if (polled > 0) {
    do n = read(fd, &byte, 1);
    while (n < 0 && errno == EINTR);
  }
  return n == 1 ? 0 : polled == 0 ? ETIMEDOUT : ECHILD;
}

// Writes one byte to the socket `fd` without SIGPIPE (EPIPE instead, when
// the child ended) and without waiting: a socket too full to take it holds
// wake bytes the child has not read yet (it reads them only when it has no
// piece to take: a child stopped, or still measuring, would never empty
// it), and one is enough. 0 or errno.
int SendByte(int fd) {
  const char byte = 1;
  ssize_t n;
  do n = send(fd, &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  return n == 1 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) ? 0 : errno;
}

void CloseBoth(int fds[2]) {
  if (fds[0] >= 0) close(fds[0]);
  if (fds[1] >= 0) close(fds[1]);
}

// A number in `base` from line[*k] to `stop` (or the line's end), *k left
// past it; false when there is none or anything else comes first.
bool ParseNumber(const char* line, size_t length, size_t* k, uint64_t base, char stop, uint64_t* value) {
  const size_t begin = *k;
  for (*value = 0; *k < length && line[*k] != stop; ++*k) {
    const char c = line[*k];
    const int digit = c >= '0' && c <= '9' ? c - '0' : base == 16 && c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (digit < 0) return false;
    *value = *value * base + static_cast<uint64_t>(digit);
  }
  if (*k == begin) return false;
  ++*k;
  return true;
}

// A map line's start and end, and whether it is anonymous memory the child
// may read (readable, inode 0); false when the line does not parse.
bool ParseLine(const char* line, size_t length, uint64_t* start, uint64_t* end, bool* anonymousReadable) {
  size_t k = 0;
  uint64_t inode;
  if (!ParseNumber(line, length, &k, 16, '-', start) || !ParseNumber(line, length, &k, 16, ' ', end) || k + 5 > length) return false;
  const bool readable = line[k] == 'r';
  k += 5;
  // The offset and the device, then the inode.
  for (int field = 0; field < 2; field++) {
    while (k < length && line[k] != ' ') k++;
    k++;
  }
  if (k >= length || !ParseNumber(line, length, &k, 10, ' ', &inode)) return false;
  *anonymousReadable = readable && inode == 0;
  return true;
}

// Reads one byte of each resident page of [from, to) that lies in
// anonymous memory the child may read, as its /proc/self/maps says, in
// address order, before it measures: mallinfo2() then follows its free
// lists through pages already reached. On the bench's AMD VM, a child of a
// C program whose [heap] (57 MiB) held the bench's 62,500 free chunks took
// 5.7-6.2 ms for mallinfo2() first, against 2.2-2.6 ms reading its pages
// in order and 0.7-0.8 ms for mallinfo2() then (bench/rounds.md). A page
// that is not resident is left alone (reading it would map it, and the
// parent reads this process's pagemap for which pages were present), as
// is a file's (mincore says what its page cache holds) and one the child
// may not read (it would kill the child). Only system calls, no malloc.
void PageInAnonymous(uintptr_t from, uintptr_t to) {
  const int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  char text[16384];
  size_t have = 0;
  // Within a line longer than the buffer (a path can be), up to its end.
  bool skipping = false;
  bool past = false;
  while (!past) {
    ssize_t got;
    do got = read(fd, text + have, sizeof(text) - have);
    while (got < 0 && errno == EINTR);
    if (got <= 0) break;
    have += static_cast<size_t>(got);
    size_t line = 0;
    for (size_t k = 0; k < have && !past; k++) {
      if (text[k] != '\n') continue;
      uint64_t start, end;
      bool anonymous;
      if (!skipping && ParseLine(text + line, k - line, &start, &end, &anonymous)) {
        past = start >= to;
        if (anonymous && !past && end > from) {
          ForEachResidentPage(std::max<uintptr_t>(start, from), std::min<uintptr_t>(end, to) - std::max<uintptr_t>(start, from),
                              [](uintptr_t page) { static_cast<void>(*reinterpret_cast<volatile const uint8_t*>(page)); });
        }
      }
      skipping = false;
      line = k + 1;
    }
    if (line == 0 && have == sizeof(text)) {
      skipping = true;
      line = have;
    }
    std::memmove(text, text + line, have - line);
    have -= line;
  }
  close(fd);
}

// The child: only system calls, mallinfo2() and mallopt(), which glibc
// makes safe in a fork's child by re-initialising the arena locks it held
// across the fork.
[[noreturn]] void Child(pid_t parent, int ready[2], int release[2], Facts* facts, int maxFast, uintptr_t pageInFrom, size_t pageInLength) {
  // Gone with the thread that forked it, whatever happens to that thread.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);
  // Every descriptor but its own two ends: the release socket reads
  // end-of-file only once no other end is left open, this copy of it
  // included, and a socket or pipe this process closes meanwhile must not
  // stay open in the child (its peer would wait for the child to end).
  const unsigned keep[2] = {static_cast<unsigned>(std::min(ready[1], release[0])), static_cast<unsigned>(std::max(ready[1], release[0]))};
  if (keep[0] > 0) CloseRange(0, keep[0] - 1);
  CloseRange(keep[0] + 1, keep[1] - 1);
  CloseRange(keep[1] + 1, ~0U);
  // Set before anything is read: the parent's reads see the child's limit.
  if (maxFast >= 0) facts->maxFastSet = mallopt(M_MXFAST, maxFast);
  // Two bytes: the break is known, then mallinfo2 is.
  facts->programBreak = reinterpret_cast<uintptr_t>(sbrk(0));
  char byte = 1;
  while (write(ready[1], &byte, 1) < 0 && errno == EINTR) {
  }
  // The first read up to the break, in order, for mallinfo2() to follow free lists through.
  if (pageInFrom < facts->programBreak && pageInLength > 0) {
    PageInAnonymous(pageInFrom, pageInLength < facts->programBreak - pageInFrom ? pageInFrom + pageInLength : facts->programBreak);
  }
  facts->mallinfo = ReadMallinfo(&facts->source);
  while (write(ready[1], &byte, 1) < 0 && errno == EINTR) {
  }
  // Then the pieces the parent hands over, from the first on: a byte when
  // each is copied. Woken by a byte whenever there may be more; the parent
  // closing its end says it needs nothing more.
  bool refused = false;
  for (;;) {
    uint64_t claim = refused ? 0 : facts->claim.load(std::memory_order_acquire);
    while ((claim & 0xFFFFFFFF) < (claim >> 32) &&
           !facts->claim.compare_exchange_weak(claim, claim + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
    }
    if ((claim & 0xFFFFFFFF) < (claim >> 32)) {
      Piece& piece = facts->pieces[claim & 0xFFFFFFFF];
      struct iovec local = {reinterpret_cast<void*>(piece.from), piece.length};
      struct iovec remote = {piece.to, piece.length};
      const ssize_t n = process_vm_writev(parent, &local, 1, &remote, 1, 0);
      piece.result = n < 0 ? -static_cast<int64_t>(errno) : n;
      // Refused once, refused for every piece: the parent copies the rest.
      refused = n < 0 && errno == EPERM;
      ssize_t sent;
      do sent = write(ready[1], &byte, 1);
      while (sent < 0 && errno == EINTR);
      if (sent != 1) break;
      continue;
    }
    char wakes[64];
    ssize_t got;
    do got = read(release[0], wakes, sizeof(wakes));
    while (got < 0 && errno == EINTR);
    if (got <= 0) break;
  }
  _exit(0);
}

}  // namespace

int Frozen::Freeze(int maxFast, uintptr_t pageInFrom, size_t pageInLength) {
  if (pid_ > 0) return EBUSY;
  void* page = mmap(nullptr, sizeof(Facts), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return errno;
  int ready[2] = {-1, -1}, release[2] = {-1, -1};
  // The release end is a socket: a request sent to a child that ended is EPIPE, not SIGPIPE.
  if (pipe2(ready, O_CLOEXEC) != 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, release) != 0) {
    const int err = errno;
    CloseBoth(ready);
    CloseBoth(release);
    munmap(page, sizeof(Facts));
    return err;
  }
  // The child starts with every signal blocked: a handler of this process
  // (Node's, libuv's) must never run in it. SIGKILL still ends it.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t parent = OwnPid();
  const pid_t child = fork();
  if (child == 0) Child(parent, ready, release, static_cast<Facts*>(page), maxFast, pageInFrom, pageInLength);
  const int forkErr = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  close(ready[1]);
  close(release[0]);
  if (child < 0) {
    close(ready[0]);
    close(release[1]);
    munmap(page, sizeof(Facts));
    return forkErr;
  }
  const int readyErr = NextByte(ready[0]);
  pid_ = child;
  release_ = release[1];
  answers_ = ready[0];
  measured_ = false;
  measuredErr_ = -1;
  ended_ = false;
  writes_ = true;
  posted_ = 0;
  facts_ = page;
  // The child hung, or ended before it said where the break was.
  if (readyErr != 0) {
    Thaw();
    return readyErr;
  }
  if (maxFast >= 0 && static_cast<Facts*>(facts_)->maxFastSet != 1) {
    Thaw();
    return EINVAL;
  }
  // Reading another process, even a child, can be refused where reading
  // this one is not (Yama's ptrace_scope 2 or 3, a non-dumpable process):
  // then there is no frozen copy, and the plan's reads read this process.
  uint64_t word;
  struct iovec local = {&word, sizeof(word)};
  struct iovec remote = {facts_, sizeof(word)};
  const ssize_t got = process_vm_readv(pid_, &local, 1, &remote, 1, 0);
  if (got != static_cast<ssize_t>(sizeof(word))) {
    // ESRCH: the child has no memory left, it ended (right after its first
    // byte): ECHILD, as when Measure() finds it ended a moment later.
    const int err = got >= 0 ? EFAULT : errno == ESRCH ? ECHILD : errno;
    Thaw();
    return err;
  }
  // fork() copied the page tables of private anonymous memory: the child's
  // pagemap shows the pages this process had present or swapped, and the
  // copy leaves the others zero instead of making its destination resident.
  pagemap_ = OpenPagemap(pid_);
  mem_ = OpenMem(pid_);
  return 0;
}

int Frozen::Measure() {
  if (measured_) return 0;
  measured_ = true;
  return Measured();
}

int Frozen::Measured() {
  if (measuredErr_ < 0) measuredErr_ = NextByte(answers_);
  return measuredErr_;
}

// Set once a child was refused writing into this process (Yama, seccomp,
// an LSM): a process-wide rule, so later freezes hand their children nothing.
static std::atomic<bool> childWritesRefused{false};

bool Frozen::Post(uintptr_t from, uint8_t* to, size_t length) {
  if (pid_ <= 0 || ended_ || !writes_ || posted_ == kPieces || childWritesRefused.load(std::memory_order_relaxed)) return false;
  Facts* facts = static_cast<Facts*>(facts_);
  facts->pieces[posted_] = {from, to, length, kUndone, 0};
  posted_++;
  // Handed over: one more piece the child may take.
  facts->claim.fetch_add(uint64_t{1} << 32, std::memory_order_acq_rel);
  if (SendByte(release_) != 0) writes_ = false;
  return true;
}

int Frozen::Settle(uint8_t** failedTo, size_t* copied) {
  if (posted_ == 0) return 0;
  Facts* facts = static_cast<Facts*>(facts_);
  Piece* pieces = facts->pieces;
  // The pieces the child has not taken, this process copies itself, from
  // the last down; the child takes them from the first on once it has
  // measured mallinfo2(), and the two meet.
  uint64_t claim = facts->claim.load(std::memory_order_acquire);
  for (;;) {
    const uint64_t taken = claim & 0xFFFFFFFF, end = claim >> 32;
    if (taken >= end) break;
    if (!facts->claim.compare_exchange_weak(claim, taken | (end - 1) << 32, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    Piece& piece = pieces[end - 1];
    size_t got = 0;
    piece.err = CopyPages(pid_, mem_, piece.from, piece.to, piece.length, &got);
    piece.result = static_cast<int64_t>(got);
    claim = facts->claim.load(std::memory_order_acquire);
  }
  // A byte for each piece the child took, once it has written it (after its second byte).
  const uint32_t childs = static_cast<uint32_t>(claim & 0xFFFFFFFF);
  int err = childs > 0 && !ended_ ? Measured() : 0;
  for (uint32_t k = 0; k < childs && err == 0 && !ended_; k++) err = NextByte(answers_);
  // No answer: the child may still write, so it is ended before anything goes on.
  if (err != 0) End();
  int failed = 0;
  for (uint32_t k = 0; k < posted_; k++) {
    Piece& piece = pieces[k];
    const int64_t result = piece.result;
    const size_t done = result > 0 ? std::min(static_cast<size_t>(result), static_cast<size_t>(piece.length)) : 0;
    size_t more = 0;
    int pieceErr = k < childs ? 0 : piece.err;
    if (k < childs && done < piece.length) {
      // The child could not write here (EPERM where Yama or an LSM forbids it), or ended: this process copies the rest.
      writes_ = false;
      if (result == -EPERM) childWritesRefused.store(true, std::memory_order_relaxed);
      pieceErr = CopyPages(pid_, mem_, piece.from + done, piece.to + done, piece.length - done, &more);
    }
    if (pieceErr != 0 && failed == 0) {
      failed = pieceErr;
      *failedTo = piece.to;
      *copied = done + more;
    }
  }
  posted_ = 0;
  facts->claim.store(0, std::memory_order_release);
  return failed;
}

void Frozen::End() {
  if (ended_ || pid_ <= 0) return;
  ended_ = true;
  kill(pid_, SIGKILL);
  // Waited for, not reaped: until the thaw reaps it, its pid is no other
  // process's, and a read of it fails rather than read another.
  siginfo_t info;
  while (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
  }
}

void Frozen::Thaw() {
  if (answers_ >= 0) close(answers_);
  answers_ = -1;
  measured_ = true;
  if (pid_ <= 0) return;
  if (pagemap_ >= 0) close(pagemap_);
  if (mem_ >= 0) close(mem_);
  pagemap_ = -1;
  mem_ = -1;
  close(release_);
  // The child has nothing left to do; a stopped one would never read the end of its socket.
  End();
  int status;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  munmap(facts_, sizeof(Facts));
  pid_ = -1;
  release_ = -1;
  facts_ = nullptr;
  posted_ = 0;
}

MallInfo2 Frozen::Mallinfo(MallinfoSource* source) const {
  const Facts* facts = static_cast<const Facts*>(facts_);
  *source = facts->source;
  return facts->mallinfo;
}

uintptr_t Frozen::ProgramBreak() const { return static_cast<const Facts*>(facts_)->programBreak; }

}  // namespace heapscope
