// Copying memory without making it resident. process_vm_readv faults in
// every page it copies, so a copy of a heap would make its never-touched
// pages resident in the process being looked at. /proc/PID/pagemap says,
// without privileges, which pages are present or swapped; a page of private
// anonymous memory that is neither was never written (or was released with
// MADV_DONTNEED) and reads as zeros, so it is not read. Nothing here calls
// malloc: the plan executor reads through it between its steps.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "heapscope.h"

namespace heapscope {

namespace {

constexpr uint64_t kPresent = uint64_t{1} << 63;
constexpr uint64_t kSwapped = uint64_t{1} << 62;
// A page of a file or shared memory, and a page mapped by this process alone.
constexpr uint64_t kFilePage = uint64_t{1} << 61;
constexpr uint64_t kExclusive = uint64_t{1} << 56;
// A guard region (MADV_GUARD_INSTALL, Linux 6.13+) has no page either, but
// faults: it is read, so that the copy fails as it would have.
constexpr uint64_t kGuard = uint64_t{1} << 58;
// Entries read at a time, on the stack: 4 KiB, 2 MiB of memory.
constexpr size_t kBatch = 512;
// MADV_POPULATE_WRITE (Linux 5.14), which older headers lack.
constexpr int kMadvPopulateWrite = 23;
// Copies from this size on have their pages faulted in first, all in one
// call: process_vm_readv faulting each page of a fresh destination in turn
// took 6.4 s for 1 GiB here, 0.2 s to populate and then 3.1 s to copy.
constexpr size_t kPopulateFrom = size_t{1} << 20;

// /proc/PID followed by `file` ("/pagemap"), opened for reading; the fd or
// -errno. The path by hand: snprintf may malloc.
int OpenProcFile(pid_t pid, const char* file) {
  char digits[16];
  size_t n = 0;
  for (unsigned v = static_cast<unsigned>(pid); n == 0 || v != 0; v /= 10) digits[n++] = static_cast<char>('0' + v % 10);
  char path[40] = "/proc/";
  size_t at = 6;
  while (n > 0) path[at++] = digits[--n];
  std::memcpy(path + at, file, std::strlen(file) + 1);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

// Copies [address, address + length) of `pid` to `out`, its pages faulted
// in first when it is large; *got is the bytes copied before a failure.
int Copy(pid_t pid, uintptr_t address, uint8_t* out, size_t length, size_t* got) {
  PopulateForCopy(out, length);
  return ReadWhole(pid, address, out, length, got);
}

}  // namespace

// /proc/PID/mem, where a freeze's child is read from: process_vm_readv pins
// the pages it reads, and the kernel (5.19 on) unshares a page shared with
// a fork's parent before pinning it: each page read is copied once more, in
// the child, and the machine holds a third copy of the heap until the thaw.
// /proc/PID/mem takes no pin: a 60 MiB copy of such a child took 19 ms into
// memory already faulted in, against 35 ms. It also reads pages their
// protection forbids (FOLL_FORCE), where process_vm_readv fails: only the
// pages pagemap shows present in glibc's private anonymous memory come here,
// and glibc never takes away access to a heap page it has written. Whatever
// it does not read, process_vm_readv reads (or says why it cannot).
int CopyPages(pid_t pid, int mem, uintptr_t address, uint8_t* out, size_t length, size_t* got) {
  size_t done = 0;
  if (mem >= 0 && address < (uintptr_t{1} << 62) && length < (size_t{1} << 62)) {
    PopulateForCopy(out, length);
    while (done < length) {
      ssize_t n = pread(mem, out + done, length - done, static_cast<off_t>(address + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    if (done == length) {
      *got = length;
      return 0;
    }
  }
  size_t copied = 0;
  const int err = Copy(pid, address + done, out + done, length - done, &copied);
  *got = done + copied;
  return err;
}

namespace {

// Copies a run of present pages of a freeze's child: handed to the child
// (Frozen::Post, native/freeze.cc) while it has room, and settled
// (ReadUntouched) before the read returns.
int CopyPresent(const UntouchedRead& r, uintptr_t address, uint8_t* out, size_t length, size_t* got) {
  if (r.frozen != nullptr && r.frozen->Post(address, out, length)) {
    *got = length;
    return 0;
  }
  return CopyPages(r.pid, r.frozen != nullptr ? r.frozen->mem() : -1, address, out, length, got);
}

// Reads `count` pagemap entries from the one of page `first`; 0 or errno.
int ReadEntries(int pagemap, uint64_t first, uint64_t* entries, size_t count) {
  size_t done = 0;
  while (done < count * sizeof(uint64_t)) {
    ssize_t n = pread(pagemap, reinterpret_cast<uint8_t*>(entries) + done, count * sizeof(uint64_t) - done,
                      static_cast<off_t>(first * sizeof(uint64_t) + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return EIO;
    done += static_cast<size_t>(n);
  }
  return 0;
}

}  // namespace

void PopulateForCopy(uint8_t* out, size_t length) {
  if (length < kPopulateFrom) return;
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t from = (reinterpret_cast<uintptr_t>(out) + page - 1) & ~(page - 1);
  const uintptr_t to = (reinterpret_cast<uintptr_t>(out) + length) & ~(page - 1);
  // An optimisation only: a kernel before 5.14 refuses it (EINVAL) and the copy faults the pages in.
  if (to > from) madvise(reinterpret_cast<void*>(from), to - from, kMadvPopulateWrite);
}

int OpenPagemap(pid_t pid) { return OpenProcFile(pid, "/pagemap"); }

int OpenMem(pid_t pid) { return OpenProcFile(pid, "/mem"); }

int CountResident(int pagemap, uint64_t address, uint64_t length, uint64_t* resident, uint64_t* total) {
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uint64_t first = address / page;
  const uint64_t end = length == 0 ? first : (address + length - 1) / page + 1;
  *resident = 0;
  *total = end - first;
  if (pagemap < 0) return -pagemap;
  uint64_t entries[kBatch];
  for (uint64_t at = first; at < end;) {
    const size_t count = end - at < kBatch ? static_cast<size_t>(end - at) : kBatch;
    const int err = ReadEntries(pagemap, at, entries, count);
    if (err != 0) return err;
    for (size_t i = 0; i < count; i++) {
      *resident += (entries[i] & kPresent) != 0 && (entries[i] & (kFilePage | kExclusive)) != 0;
    }
    at += count;
  }
  return 0;
}

static int ReadRuns(const UntouchedRead& r, size_t* got, uint64_t* untouched, int* pagemapErr) {
  *got = 0;
  size_t copied = 0;
  if (r.length == 0) return 0;
  if (r.pagemap < 0) {
    int err = Copy(r.pid, r.address, r.out, r.length, &copied);
    *got = copied;
    return err;
  }
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uint64_t end = r.address + r.length;
  uint64_t entries[kBatch];
  for (uint64_t at = r.address; at < end;) {
    const uint64_t first = at / page;
    const uint64_t last = (end - 1) / page;
    const size_t count = last - first + 1 < kBatch ? static_cast<size_t>(last - first + 1) : kBatch;
    int err = ReadEntries(r.pagemap, first, entries, count);
    if (err != 0) {
      // The rest is copied whole, and the caller told why.
      *pagemapErr = err;
      err = Copy(r.pid, at, r.out + (at - r.address), end - at, &copied);
      *got = at - r.address + copied;
      return err;
    }
    // Runs of pages alike: each run of absent pages is left zero, each
    // run of the others copied in one call.
    for (size_t i = 0; i < count;) {
      const bool absent = (entries[i] & (kPresent | kSwapped | kGuard)) == 0;
      size_t j = i + 1;
      while (j < count && ((entries[j] & (kPresent | kSwapped | kGuard)) == 0) == absent) j++;
      const uint64_t from = at > (first + i) * page ? at : (first + i) * page;
      const uint64_t to = (first + j) * page < end ? (first + j) * page : end;
      uint8_t* dest = r.out + (from - r.address);
      if (absent) {
        if (!r.zeroed) std::memset(dest, 0, to - from);
        *untouched += j - i;
      } else {
        err = CopyPresent(r, from, dest, to - from, &copied);
        if (err != 0) {
          *got = from - r.address + copied;
          return err;
        }
      }
      i = j;
    }
    at = (first + count) * page < end ? (first + count) * page : end;
  }
  *got = r.length;
  return 0;
}

int ReadUntouched(const UntouchedRead& r, size_t* got, uint64_t* untouched, int* pagemapErr) {
  const int err = ReadRuns(r, got, untouched, pagemapErr);
  if (r.frozen == nullptr) return err;
  uint8_t* failedTo = nullptr;
  size_t copied = 0;
  // Every copy posted lies before where the read stopped: the first that failed is where it stops.
  const int settled = r.frozen->Settle(&failedTo, &copied);
  if (settled == 0) return err;
  *got = static_cast<size_t>(failedTo - r.out) + copied;
  return settled;
}

}  // namespace heapscope
