// Shared declarations of the heapscope addon. The native layer only calls
// glibc and copies facts out; every interpretation happens in TypeScript.
#pragma once

#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include <napi.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <new>

#include "live-set.h"

namespace heapscope {

// glibc's struct mallinfo2 (2.33+), declared here so the addon also builds
// against older headers; the function itself is looked up at run time.
struct MallInfo2 {
  size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks,
      fordblks, keepcost;
};

// Runs an entry point's body so that no C++ exception leaves it: a
// Napi::Error (a coded error, or a Node-API call that failed) is thrown
// into JavaScript here, std::bad_alloc becomes ERR_ALLOC_FAILED, anything
// else ERR_INTERNAL. While a worker is torn down nothing can be thrown
// into JavaScript any more; the error is then dropped, since no one is left
// to see it, instead of escaping into Node, which would abort the process.
void Rethrow(const Napi::Error& error) noexcept;
void ThrowNow(Napi::Env env, const char* code, const char* message, int err = 0) noexcept;

template <typename Body>
Napi::Value Guard(Napi::Env env, Body body) noexcept {
  try {
    return body();
  } catch (const Napi::Error& error) {
    Rethrow(error);
  } catch (const std::bad_alloc&) {
    ThrowNow(env, "ERR_ALLOC_FAILED", "out of memory", ENOMEM);
  } catch (...) {
    ThrowNow(env, "ERR_INTERNAL", "an unexpected C++ exception in heapscope's native code");
  }
  return Napi::Value();
}

// Anonymous memory from mmap, never from malloc, kept from one plan to the
// next: a fresh mapping's pages fault in on first touch and its munmap
// flushes every thread's TLB, which cost a /proc/self/maps read three times
// the read itself. An area above kKeep bytes is unmapped when the plan ends.
class ScratchArea {
 public:
  static constexpr size_t kKeep = size_t{8} << 20;
  ScratchArea() = default;
  ScratchArea(const ScratchArea&) = delete;
  ScratchArea& operator=(const ScratchArea&) = delete;
  ~ScratchArea() { Drop(); }
  // At least `bytes` bytes, their contents undefined; nullptr when mmap failed.
  uint8_t* Get(size_t bytes);
  // Ends a plan's use: keeps the area for the next one unless it is big.
  void Done() {
    if (size_ > kKeep) Drop();
  }

 private:
  void Drop();
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// What a plan's check found, besides that every word it uses is sound.
struct CheckedPlan {
  size_t steps = 0, mapsSteps = 0, readSteps = 0, recordWords = 0;
  uint64_t readBytes = 0;
  bool readsPagemap = false;
};

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports);
  ~Addon();

  // Every pointer this instance handed out and has not freed. free and
  // realloc refuse anything else, so glibc never sees a foreign pointer.
  LiveSet live;
  // The plan executor's copy of the plan when it needs one, and which steps
  // it consumed; its records, slots and maps texts.
  ScratchArea planCopy, planOut;
  // The last compiled plan run: its words, checked (heldPlan), its id from
  // planId() (0 for none) and what its check found.
  ScratchArea heldPlan;
  double checkedPlan = 0;
  CheckedPlan checked;
  double lastPlanId = 0;

 private:
  // Each method is registered through Entry: none is reachable unguarded.
  // A plain Node-API callback whose data is this instance, so that a call
  // costs no instance-data lookup on top of Node-API's own.
  template <Napi::Value (Addon::*Method)(const Napi::CallbackInfo&)>
  static napi_value Entry(napi_env env, napi_callback_info cb) noexcept {
    return Guard(env, [&] {
      Napi::CallbackInfo info(env, cb);
      return (static_cast<Addon*>(info.Data())->*Method)(info);
    });
  }

  // malloc, free and usableSize, the calls made most often, in the C API
  // alone when their one argument is a whole number: no CallbackInfo and
  // no wrapper per value (7–11 ns of a call here). Anything else, and every
  // refusal, goes through Entry to the checked method, which says what is
  // wrong. programBreak, which takes nothing, the same way.
  static napi_value QuickMalloc(napi_env env, napi_callback_info cb) noexcept;
  static napi_value QuickFree(napi_env env, napi_callback_info cb) noexcept;
  static napi_value QuickUsableSize(napi_env env, napi_callback_info cb) noexcept;
  static napi_value QuickProgramBreak(napi_env env, napi_callback_info cb) noexcept;

  Napi::Value Malloc(const Napi::CallbackInfo& info);
  Napi::Value Calloc(const Napi::CallbackInfo& info);
  Napi::Value Realloc(const Napi::CallbackInfo& info);
  Napi::Value Memalign(const Napi::CallbackInfo& info);
  Napi::Value Free(const Napi::CallbackInfo& info);
  Napi::Value UsableSize(const Napi::CallbackInfo& info);
  Napi::Value IsLive(const Napi::CallbackInfo& info);
  Napi::Value LiveCount(const Napi::CallbackInfo& info);
  Napi::Value ReadMemory(const Napi::CallbackInfo& info);
  Napi::Value WriteAllocation(const Napi::CallbackInfo& info);
  Napi::Value FillAllocation(const Napi::CallbackInfo& info);
  Napi::Value ChunkHeader(const Napi::CallbackInfo& info);
  Napi::Value ProgramBreak(const Napi::CallbackInfo& info);
  Napi::Value Mallinfo(const Napi::CallbackInfo& info);
  Napi::Value Mallopt(const Napi::CallbackInfo& info);
  Napi::Value MallocTrim(const Napi::CallbackInfo& info);
  Napi::Value MallocInfo(const Napi::CallbackInfo& info);
  Napi::Value GlibcVersion(const Napi::CallbackInfo& info);
  Napi::Value PageSize(const Napi::CallbackInfo& info);
  Napi::Value FileStat(const Napi::CallbackInfo& info);
  Napi::Value RunPlan(const Napi::CallbackInfo& info);
  Napi::Value PlanId(const Napi::CallbackInfo& info);
  Napi::Value Addresses(const Napi::CallbackInfo& info);
  Napi::Value LoadedImages(const Napi::CallbackInfo& info);
  Napi::Value ReadRemote(const Napi::CallbackInfo& info);
  Napi::Value ReleaseCopies(const Napi::CallbackInfo& info);
  Napi::Value FreshBuffer(const Napi::CallbackInfo& info);
  Napi::Value ExternalMemory(const Napi::CallbackInfo& info);
  Napi::Value DropPages(const Napi::CallbackInfo& info);
};

// Errors carry a stable `code` (and `errno`/`syscall` when the kernel or
// glibc reported one); TypeScript documents and re-exports the codes.
[[noreturn]] void ThrowCode(Napi::Env env, const char* code,
                            const std::string& message, int err = 0,
                            const char* syscall = nullptr);

// The largest integer a double holds exactly (2^53 - 1). User addresses on
// x86_64 are below 2^47, so pointers cross to JavaScript as numbers.
constexpr uint64_t kMaxExact = (uint64_t{1} << 53) - 1;

// Whether a number argument is an address or a size: whole, 0 to kMaxExact.
inline bool WholeNumber(double d) {
  return d >= 0 && d <= static_cast<double>(kMaxExact) && d == static_cast<double>(static_cast<uint64_t>(d));
}

// A number (a whole number up to 2^53 - 1) or a bigint, as 64 bits.
uintptr_t ArgAddress(const Napi::CallbackInfo& info, size_t i);
size_t ArgSize(const Napi::CallbackInfo& info, size_t i);
// A bigint, for addresses that may lie anywhere (probes, the break).
Napi::BigInt Address(Napi::Env env, uintptr_t value);
// A number; ERR_INTERNAL above 2^53 - 1 (no pointer malloc returns is).
Napi::Value Exact(Napi::Env env, uint64_t value);

// Reads through process_vm_readv on our own pid: an unmapped or unreadable
// address comes back as EFAULT instead of a SIGSEGV. Returns 0 or errno.
int SafeRead(uintptr_t address, void* out, size_t length);

// Copies [address, address + length) of `pid` into `out` in as many
// process_vm_readv calls as it takes: one copies at most 2 GiB − 4 KiB
// (the kernel's MAX_RW_COUNT) and returns short, as it does at a page it
// cannot read. 0, or the errno that stopped it (EFAULT at such a page);
// *got is the bytes copied before it. Does not malloc.
int ReadWhole(pid_t pid, uintptr_t address, uint8_t* out, size_t length, size_t* got);

// The most one Buffer holds in Node 20 (buffer.constants.MAX_LENGTH), the
// smallest of the Node versions heapscope supports: a plan's read, a fresh
// buffer.
constexpr uint64_t kMaxBuffer = uint64_t{1} << 32;

// `length` rounded up to whole pages: what a copy of it maps.
size_t PageSpan(uint64_t length);

// Private anonymous memory of heapscope's own (mmap's result, MAP_FAILED
// when it failed), marked so the kernel never merges it into one map line
// with a neighbour glibc mapped. Does not malloc.
void* MapOwn(size_t bytes);

// MapOwn memory for a copy of `bytes`, in transparent huge pages where the
// kernel has them for regions that ask (its "madvise" mode).
void* MapForCopy(size_t bytes);

// A range this long or longer is copied into memory of its own from mmap
// (MapForCopy, CopyBuffer), never into a block from malloc: glibc maps a
// block of 128 KiB or more on its own, and freeing it, when V8 collects its
// Buffer, raises mp_.mmap_threshold to its size in the heap being measured
// (a 1 MiB readMemory() moved it to 1 MiB + 4 KiB). Registered, such a copy
// can also be given back before Node collects it: a snapshot copies heaps
// twice. Shorter ones (chunk headers, a libc's data) come from calloc: a
// page and a mapping each would cost more than the bytes.
constexpr size_t kMappedCopy = size_t{64} << 10;

// A plan's read copy, or a long range read from another process (a whole
// span from mmap), handed over as a Buffer of its first `length` bytes:
// registered, so that releaseCopies can unmap it before its finalizer runs;
// the finalizer unmaps it unless it was released (native/copies.cc). Where
// no Buffer can be made, the error is rethrown and the memory is still the
// caller's to unmap. `released`: its caller gives it back itself
// (releaseCopies), and V8 does not count it as external memory meanwhile.
Napi::Buffer<uint8_t> CopyBuffer(Napi::Env env, uint8_t* data, size_t length, size_t span, bool released);
// Gives a registered copy back now (its ArrayBuffer detached, its memory
// unmapped); false for anything else: a view of part of one, a Buffer that
// is no registered copy, one given back already.
bool ReleaseCopy(Napi::Env env, Napi::Buffer<uint8_t> buffer);

// This process's pid, asked of the kernel once (and again after a fork).
pid_t OwnPid();

// One copy that leaves never-touched pages alone (native/untouched.cc):
// [address, address + length) of `pid` into `out`, the pages /proc/PID/pagemap
// (open as `pagemap`) shows neither present nor swapped left zero instead of
// read. Only for private anonymous memory, where such a page reads as zeros.
// `zeroed`: `out` is already zero (fresh mmap), so those pages of it stay
// untouched too. `pagemap` < 0: a plain copy. `frozen`: the freeze whose
// child `pid` is, which copies the pages pagemap shows, or null.
class Frozen;
struct UntouchedRead {
  pid_t pid;
  int pagemap;
  uintptr_t address;
  uint8_t* out;
  size_t length;
  bool zeroed;
  Frozen* frozen = nullptr;
};

// /proc/PID/mem opened for reading, or -errno. Does not malloc.
int OpenMem(pid_t pid);

// /proc/PID/pagemap opened for reading, or -errno. Does not malloc.
int OpenPagemap(pid_t pid);

// Copies [address, address + length) of a freeze's child `pid` through its
// /proc/PID/mem when `mem` is open, else (or for what that did not read)
// through process_vm_readv; 0 or errno, *got the bytes copied before it.
// Does not malloc.
int CopyPages(pid_t pid, int mem, uintptr_t address, uint8_t* out, size_t length, size_t* got);

// Faults in the pages of a large copy's destination in one call (they are
// about to be written whole), where the kernel allows it. Does not malloc.
void PopulateForCopy(uint8_t* out, size_t length);

// Returns 0 or the errno that stopped the copy (EFAULT for one cut short);
// *got is the bytes copied before it, *untouched counts the pages left zero.
// A pagemap that cannot be read sets *pagemapErr and the rest is copied
// plainly. Does not malloc.
int ReadUntouched(const UntouchedRead& read, size_t* got, uint64_t* untouched, int* pagemapErr);

// Calls visit(page address) for each page of [p, p + length) that
// mincore() says is resident, in address order; 0, or the errno of the
// first window mincore refused. The vector is 4096 pages at a time, on the
// stack: no malloc.
template <typename Visit>
int ForEachResidentPage(uintptr_t p, size_t length, Visit visit) {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t end = (p + length + page - 1) & ~(page - 1);
  unsigned char vec[4096];
  for (uintptr_t at = p & ~(page - 1); at < end;) {
    const size_t pages = (end - at) / page < sizeof(vec) ? (end - at) / page : sizeof(vec);
    if (mincore(reinterpret_cast<void*>(at), pages * page, vec) != 0) return errno;
    for (size_t i = 0; i < pages; i++) {
      if (vec[i] & 1) visit(at + i * page);
    }
    at += pages * page;
  }
  return 0;
}

// Counts the pages of [address, address + length), whole pages, that
// /proc/PID/pagemap (open as `pagemap`) shows resident as RSS counts them:
// present, and either the process's alone or a file's or shared memory's
// page (not the shared zero page, which a read of never-written memory
// maps). Returns 0 or errno. Does not malloc.
int CountResident(int pagemap, uint64_t address, uint64_t length, uint64_t* resident, uint64_t* total);

// Which call answered a mallinfo read. The values are what a plan's
// mallinfo step records (lib/plan.ts decodes them).
enum class MallinfoSource : uint64_t { kMallinfo = 1, kMallinfo2 = 2 };

// mallinfo2 when glibc has it (2.33+), else mallinfo widened.
MallInfo2 ReadMallinfo(MallinfoSource* source);

// Looks up mallinfo2 and mallinfo (dlsym may malloc) before a plan's steps,
// where nothing may.
void PrepareMallinfo();

// A child forked to hold this process's memory as it stood at one instant
// (native/freeze.cc): the plan executor's freeze and thaw steps. Neither
// calls malloc in this process.
class Frozen {
 public:
  Frozen() = default;
  Frozen(const Frozen&) = delete;
  Frozen& operator=(const Frozen&) = delete;
  ~Frozen() { Thaw(); }
  // Forks the child and waits until it has read the break; 0 or errno.
  // A `maxFast` of 0 or more is set in the child first (mallopt(M_MXFAST)),
  // which glibc refusing makes the freeze fail with EINVAL. With
  // `pageInLength`, the child reads the resident pages of [pageInFrom,
  // pageInFrom + pageInLength), up to its break, in order before it
  // measures (native/freeze.cc, PageInAnonymous).
  int Freeze(int maxFast = -1, uintptr_t pageInFrom = 0, size_t pageInLength = 0);
  // Waits until the child has measured mallinfo2() (it locks each arena
  // meanwhile); 0, at once when it had, or errno: the caller then thaws.
  int Measure();
  bool measured() const { return measured_; }
  // Lets the child exit and reaps it; nothing when there is none.
  void Thaw();
  bool frozen() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // The child's /proc/PID/pagemap, open for reading, or -errno.
  int pagemap() const { return pagemap_; }
  // The child's /proc/PID/mem, open for reading, or -errno.
  int mem() const { return mem_; }
  // Hands the child [from, from + length) of its memory to write to `to`
  // in this process (process_vm_writev), without waiting; false, for the
  // caller to copy those bytes itself, when the child cannot take it (it
  // ended, it could not write before, this read has handed it kPieces, or a
  // child of this process was refused writing into it).
  bool Post(uintptr_t from, uint8_t* to, size_t length);
  // Waits for every copy posted; one the child could not make whole is
  // copied here (/proc/PID/mem, then process_vm_readv). 0, or the errno of
  // the first that failed, with *failedTo where its bytes were to go and
  // *copied how many of them were.
  int Settle(uint8_t** failedTo, size_t* copied);
  // What the child measured as it began: mallinfo2() (once Measure() has
  // said 0) and the program break.
  MallInfo2 Mallinfo(MallinfoSource* source) const;
  uintptr_t ProgramBreak() const;

 private:
  pid_t pid_ = -1;
  int release_ = -1;
  int pagemap_ = -1;
  int mem_ = -1;
  // The pipe's end the child's second byte, then its answers, come through.
  int answers_ = -1;
  bool measured_ = true;
  // What reading the child's second byte gave (0, or errno), or -1 before it was read.
  int measuredErr_ = -1;
  int Measured();
  // Pieces of the current read handed to the child (native/freeze.cc).
  uint32_t posted_ = 0;
  // False once a piece came back unwritten or short, or the child could not be woken.
  bool writes_ = true;
  // The child was killed before the thaw (it did not answer); the thaw reaps it.
  bool ended_ = false;
  void End();
  void* facts_ = nullptr;
};

}  // namespace heapscope
