// Reading memory without trusting the address: process_vm_readv on our own
// pid faults in the kernel (EFAULT) where a plain load would crash.
#include <pthread.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

#include "heapscope.h"

namespace heapscope {

// Our pid, for process_vm_readv. getpid() is a system call every time
// (glibc no longer caches it), as costly as a small read itself; the pid
// only changes in a fork's child, where the handler clears it.
static std::atomic<pid_t> g_pid{0};

pid_t OwnPid() {
  pid_t pid = g_pid.load(std::memory_order_relaxed);
  if (pid != 0) return pid;
  static const bool registered = pthread_atfork(nullptr, nullptr, [] { g_pid.store(0); }) == 0;
  pid = getpid();
  // Without the fork handler a cached pid could outlive a fork: ask each time.
  if (registered) g_pid.store(pid, std::memory_order_relaxed);
  return pid;
}

int SafeRead(uintptr_t address, void* out, size_t length) {
  size_t got = 0;
  return ReadWhole(OwnPid(), address, static_cast<uint8_t*>(out), length, &got);
}

int ReadWhole(pid_t pid, uintptr_t address, uint8_t* out, size_t length, size_t* got) {
  size_t done = 0;
  int err = 0;
  while (done < length) {
    struct iovec local = {out + done, length - done};
    struct iovec remote = {reinterpret_cast<void*>(address + done), length - done};
    ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : EFAULT;
      break;
    }
    done += static_cast<size_t>(n);
  }
  *got = done;
  return err;
}

// readMemory(address, length, mode): mode 0 copies plainly; 1 says the range
// is private anonymous memory, whose never-touched pages are left zero
// instead of read (native/untouched.cc); 2 copies as 1 but returns null when
// it met such a page, for a caller that has not looked at the map yet.
Napi::Value Addon::ReadMemory(const Napi::CallbackInfo& info) {
  uintptr_t address = ArgAddress(info, 0);
  size_t length = ArgSize(info, 1);
  uint32_t mode = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Uint32Value() : 0;
  if (length > (64u << 20))
    ThrowCode(info.Env(), "ERR_OUT_OF_RANGE", "read longer than 64 MiB");
  if (address + length < address)
    ThrowCode(info.Env(), "EFAULT", "range wraps past the end of memory",
              EFAULT, "process_vm_readv");
  // A long range goes into memory of its own (kMappedCopy), fresh and zero:
  // the pages the read leaves untouched stay so there too.
  const bool mapped = length >= kMappedCopy;
  const size_t span = mapped ? PageSpan(length) : 0;
  Napi::Buffer<uint8_t> out;
  uint8_t* data;
  if (mapped) {
    void* p = MapForCopy(span);
    if (p == MAP_FAILED)
      ThrowCode(info.Env(), "ERR_ALLOC_FAILED", "cannot map " + std::to_string(length) + " bytes to read into", errno, "mmap");
    data = static_cast<uint8_t*>(p);
  } else {
    out = Napi::Buffer<uint8_t>::New(info.Env(), length);
    data = out.Data();
  }
  const int pagemap = mode == 0 ? -1 : OpenPagemap(OwnPid());
  size_t got = 0;
  uint64_t untouched = 0;
  int pagemapErr = 0;
  int err = ReadUntouched({OwnPid(), pagemap, address, data, length, mapped}, &got, &untouched, &pagemapErr);
  if (pagemap >= 0) close(pagemap);
  if (mapped && (err != 0 || (mode == 2 && untouched > 0))) munmap(data, span);
  if (err != 0)
    ThrowCode(info.Env(), err == EFAULT ? "EFAULT" : "ERR_READ_FAILED",
              std::string("cannot read memory at that address (") +
                  strerror(err) + ")",
              err, "process_vm_readv");
  if (mode == 2 && untouched > 0) return info.Env().Null();
  if (!mapped) return out;
  try {
    return CopyBuffer(info.Env(), data, length, span, false);
  } catch (...) {
    munmap(data, span);
    throw;
  }
}

// The two header words in front of a chunk's user pointer: prev_size and
// size (with the P, M and A flags in its low bits).
Napi::Value Addon::ChunkHeader(const Napi::CallbackInfo& info) {
  uintptr_t p = ArgAddress(info, 0);
  uint64_t words[2] = {0, 0};
  int err = p < sizeof(words) ? EFAULT : SafeRead(p - sizeof(words), words, sizeof(words));
  if (err != 0)
    ThrowCode(info.Env(), "EFAULT",
              std::string("cannot read the chunk header (") + strerror(err) + ")",
              err, "process_vm_readv");
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, Napi::BigInt::New(info.Env(), words[0]));
  out.Set(1u, Napi::BigInt::New(info.Env(), words[1]));
  return out;
}

size_t PageSpan(uint64_t length) {
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return static_cast<size_t>((length + page - 1) & ~(page - 1));
}

void* MapOwn(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  // glibc maps each mmapped chunk with these same flags, and the kernel
  // merges neighbours with equal flags into one map line. The doctor
  // follows mmapped chunks' headers from line starts, so a scratch area
  // mapped right below a chunk hid it and every chunk above it in that line
  // (the quiet child of doctor/reservation.test.ts: 1 MiB of plan scratch
  // and the copies' registry below a 40 MiB chunk, found 0 of 4), and now
  // costs this process's doctor a search of the rest of the line.
  // VM_DONTDUMP is a flag glibc never sets, and it keeps heapscope's memory
  // out of core dumps, where none of it helps.
  if (p != MAP_FAILED) madvise(p, bytes, MADV_DONTDUMP);
  return p;
}

void* MapForCopy(size_t bytes) {
  void* p = MapOwn(bytes);
  // A copy is written whole right after, so a huge page costs nothing but
  // the tail of the last. On the VM the bench last ran on a page fault cost
  // ~10 us (touching 256 MiB: 9.7 us a 4 KiB page; 0.28 us a page in huge
  // pages of memory the process had used, 6.2 us in fresh ones), and a
  // 60 MiB copy took 15,000 of them. A kernel without THP, or set to
  // "never", ignores or refuses the advice.
  constexpr size_t kHugePage = size_t{2} << 20;
  if (p != MAP_FAILED && bytes >= kHugePage) madvise(p, bytes, MADV_HUGEPAGE);
  return p;
}

}  // namespace heapscope
