// A copy of this process frozen at one instant, for the plan executor's
// freeze step. glibc's fork() takes every arena's lock before it copies the
// process (its malloc fork handler), so the child's memory holds the
// allocator as it stood between two operations of any thread, and stays so:
// the child only answers the break and mallinfo2(), then waits (asked for a
// fastbin limit, it first sets it: mallopt(M_MXFAST), whose consolidation of
// main_arena's fastbins is done before the parent reads). The parent's
// reads copy the child's memory (through /proc/PID/mem, see untouched.cc)
// while the parent's other threads (V8's helpers free into main_arena at any
// moment) go on. mallinfo2() writes nothing but the arenas' locks, none of
// them in [heap]: the parent copies [heap] while the child measures, which
// touches every page the free lists run through and costs a fresh process
// more than the copy costs the parent. Nothing here calls malloc in this
// process.
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/syscall.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <csignal>

#include "heapscope.h"

namespace heapscope {

namespace {

// What the child measured, on a page the two processes share.
struct Facts {
  MallInfo2 mallinfo;
  MallinfoSource source;
  uintptr_t programBreak;
  // mallopt(M_MXFAST)'s answer when the freeze asked for a fastbin limit: 1 set, 0 refused.
  int maxFastSet;
};

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

void CloseBoth(int fds[2]) {
  if (fds[0] >= 0) close(fds[0]);
  if (fds[1] >= 0) close(fds[1]);
}

// The child: only system calls, mallinfo2() and mallopt(), which glibc
// makes safe in a fork's child by re-initialising the arena locks it held
// across the fork.
[[noreturn]] void Child(pid_t parent, int ready[2], int release[2], Facts* facts, int maxFast) {
  // Gone with the thread that forked it, whatever happens to that thread.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);
  // Every descriptor but its own two ends: the release pipe reads
  // end-of-file only once no write end is left open, this copy of it
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
  facts->mallinfo = ReadMallinfo(&facts->source);
  while (write(ready[1], &byte, 1) < 0 && errno == EINTR) {
  }
  // The parent closes its end when it has read what it needed.
  while (read(release[0], &byte, 1) < 0 && errno == EINTR) {
  }
  _exit(0);
}

}  // namespace

int Frozen::Freeze(int maxFast) {
  if (pid_ > 0) return EBUSY;
  void* page = mmap(nullptr, sizeof(Facts), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return errno;
  int ready[2] = {-1, -1}, release[2] = {-1, -1};
  if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(release, O_CLOEXEC) != 0) {
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
  if (child == 0) Child(parent, ready, release, static_cast<Facts*>(page), maxFast);
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
  measuring_ = ready[0];
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
  if (measuring_ < 0) return 0;
  const int err = NextByte(measuring_);
  close(measuring_);
  measuring_ = -1;
  return err;
}

void Frozen::Thaw() {
  if (measuring_ >= 0) close(measuring_);
  measuring_ = -1;
  if (pid_ <= 0) return;
  if (pagemap_ >= 0) close(pagemap_);
  if (mem_ >= 0) close(mem_);
  pagemap_ = -1;
  mem_ = -1;
  close(release_);
  // The child has nothing left to do; a stopped one would never read the end of its pipe.
  kill(pid_, SIGKILL);
  int status;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  munmap(facts_, sizeof(Facts));
  pid_ = -1;
  release_ = -1;
  facts_ = nullptr;
}

MallInfo2 Frozen::Mallinfo(MallinfoSource* source) const {
  const Facts* facts = static_cast<const Facts*>(facts_);
  *source = facts->source;
  return facts->mallinfo;
}

uintptr_t Frozen::ProgramBreak() const { return static_cast<const Facts*>(facts_)->programBreak; }

}  // namespace heapscope
