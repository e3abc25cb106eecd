// The plan executor: runs a whole list of allocator steps inside one native
// call, so no JavaScript or V8 allocation can land in the arena between
// them. Its own scratch memory comes from mmap, never from malloc, and is
// reserved before the first step.
#include <fcntl.h>
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "heapscope.h"

namespace heapscope {

namespace {

enum Op : uint64_t {
  kMalloc = 1,    // a = size
  kCalloc = 2,    // a = count, b = size
  kRealloc = 3,   // ref, a = size
  kMemalign = 4,  // a = alignment, b = size
  kFree = 5,      // ref
  kBreak = 6,
  kHeader = 7,    // ref
  kUsable = 8,    // ref
  kMallinfo = 9,
  kTrim = 10,     // a = pad
  kTouch = 11,    // ref, a = byte
  kResident = 12, // ref
  kMaps = 13,
  kStatm = 14,
  kRead = 15,     // a = address, b = length; ref bits: 1 private anonymous memory, 2 up to the break
  // The steps from a freeze to its thaw (or the plan's end) read a forked
  // child's memory, mallinfo and break: this process as it was at the freeze.
  kFreeze = 16,
  kThaw = 17,
  kPagemap = 18,  // a = address, b = length
};

constexpr size_t kInWords = 4;  // op, ref, a, b
constexpr size_t kMapsBytes = 1 << 20;
constexpr size_t kMaxSteps = 1 << 22;
// MAX_FAST_SIZE on 64-bit: mallopt(M_MXFAST) refuses more.
constexpr uint64_t kMaxFastSize = 160;
// x86_64's user address space: what a pagemap step may count at most.
constexpr uint64_t kMaxPagemapRange = uint64_t{1} << 47;

enum Status : uint64_t { kOk = 0, kFailed = 1, kSkipped = 2, kTruncated = 3 };

bool Allocates(uint64_t op) {
  return op == kMalloc || op == kCalloc || op == kRealloc || op == kMemalign;
}

bool NeedsRef(uint64_t op) {
  return op == kRealloc || op == kFree || op == kHeader || op == kUsable ||
         op == kTouch || op == kResident;
}

// Each step's record is its head word and the words its op fills, one
// record after another (the layout is lib/plan-codes.ts's RECORD_WORDS):
// a 1,000-item plan's records are 72 KB, not 512, and say which op each
// is, so that they are decoded without the plan's words (lazily, in JS).
constexpr size_t kRecordWords[] = {0, 2, 2, 2, 2, 1, 2, 4, 2, 12, 2, 1, 3, 1, 3, 3, 2, 1, 3};
static_assert(sizeof(kRecordWords) / sizeof(kRecordWords[0]) == kPagemap + 1, "a record size for every op");

// The head word: the status in bits 0 to 7, the op in 8 to 15, a read's
// anonymous flag in bit 16, errno in 32 to 63.
uint64_t Head(uint64_t op, uint64_t ref) {
  return op << 8 | (op == kRead && (ref & 1) != 0 ? uint64_t{1} << 16 : 0);
}

// What a maps or read step leaves for after the loop: whether it succeeded,
// and where its bytes are (in the texts, or in the reads' area).
struct Handover {
  bool ok;
  size_t offset, length;
};

// A ScratchArea for one plan: Done() when the call ends, however it ends.
class Scratch {
 public:
  Scratch(ScratchArea& area, size_t bytes) : area_(area), data_(area.Get(bytes)) {}
  ~Scratch() { area_.Done(); }
  uint8_t* data() const { return data_; }

 private:
  ScratchArea& area_;
  uint8_t* data_;
};

// The bytes of the read steps. Each step's range starts on a page of its
// own, so that it can become a Buffer without a copy (a walk reads [heap]
// whole: a second copy would double what a big heap costs) and be unmapped
// alone when that Buffer is collected. Ranges are handed over in order;
// what has not been handed over is unmapped with the area.
class ReadArea {
 public:
  explicit ReadArea(size_t bytes) : next_(nullptr), end_(nullptr) {
    if (bytes == 0) return;
    void* p = MapForCopy(bytes);
    if (p == MAP_FAILED) return;
    next_ = static_cast<uint8_t*>(p);
    end_ = next_ + bytes;
  }
  ~ReadArea() {
    if (next_ != end_) munmap(next_, static_cast<size_t>(end_ - next_));
  }
  bool ok() const { return next_ != nullptr; }
  // The start of the range not handed over yet.
  uint8_t* next() const { return next_; }
  // The next step's range now belongs to a Buffer (or, with `unmap`, to no one).
  void HandOver(size_t span, bool unmap) {
    if (span == 0) return;
    if (unmap) munmap(next_, span);
    next_ += span;
  }

 private:
  uint8_t* next_;
  uint8_t* end_;
};

// Reads a /proc file with raw syscalls: stdio would malloc a buffer.
ssize_t ReadProcFile(const char* path, uint8_t* out, size_t capacity, bool* full) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  size_t used = 0;
  for (;;) {
    if (used == capacity) {
      *full = true;
      break;
    }
    ssize_t n = read(fd, out + used, capacity - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return -err;
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  close(fd);
  return static_cast<ssize_t>(used);
}

// Resident pages of [p, p + length), and how many pages it spans.
int Resident(uintptr_t p, size_t length, uint64_t* resident, uint64_t* total) {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  *resident = 0;
  *total = (((p + length + page - 1) & ~(page - 1)) - (p & ~(page - 1))) / page;
  return ForEachResidentPage(p, length, [resident](uintptr_t) { ++*resident; });
}

// Every word a step uses is checked before anything runs: a plan can never
// free or read a slot that is not a live allocation of an earlier step, nor
// pass glibc a size it would take for a negative one. `consumed`: n zeroed
// bytes of scratch.
CheckedPlan CheckSteps(Napi::Env env, const uint64_t* steps, size_t n, uint8_t* consumed) {
  CheckedPlan c;
  c.steps = n;
  bool inFreeze = false;
  for (size_t i = 0; i < n; i++) {
    const uint64_t* s = steps + i * kInWords;
    const uint64_t op = s[0], ref = s[1];
    auto invalid = [&](const std::string& why) {
      ThrowCode(env, "ERR_INVALID_PLAN", "step " + std::to_string(i) + ": " + why);
    };
    if (op < kMalloc || op > kPagemap) invalid("unknown operation");
    c.recordWords += kRecordWords[op];
    if (op == kFreeze) {
      if (inFreeze) invalid("a freeze before the last one was thawed");
      inFreeze = true;
    } else if (op == kThaw) {
      if (!inFreeze) invalid("a thaw without a freeze");
      inFreeze = false;
    } else if (inFreeze && op != kRead && op != kMallinfo && op != kBreak) {
      invalid("only read, mallinfo and break steps run between a freeze and its thaw");
    }
    if (op == kMaps) c.mapsSteps++;
    if (op == kRead) {
      c.readSteps++;
      if (s[3] > kMaxBuffer) invalid("read longer than 4 GiB");
      c.readBytes += PageSpan(s[3]);
      // A read's flags: 1 anonymous, 2 to the break, 4 to the length a word gives (its offset in bits 8 to 19, the
      // least length it may give in bits 32 to 63).
      const uint64_t low = ref & 0xFFFFFFFF, atLeast = ref >> 32;
      if ((low & ~uint64_t{0xFFF07}) != 0) invalid("a read's flags are 1 (anonymous), 2 (to the break) and 4 (to a length word, at an offset below 4096)");
      if ((low & 6) == 6) invalid("a read stops at the break or at a length word, not both");
      if ((low & 4) == 0 && ((low >> 8) != 0 || atLeast != 0)) invalid("a read's length word offset or least length without its flag (4)");
      if ((low >> 8) % 8 != 0) invalid("a read's length word offset is a multiple of 8");
      if (atLeast > s[3]) invalid("a read's least length is above its length");
      c.readsPagemap = c.readsPagemap || (ref & 1) != 0;
    }
    if (op == kPagemap) {
      if (s[3] > kMaxPagemapRange) invalid("a pagemap range longer than x86_64's user address space");
      c.readsPagemap = true;
    }
    if ((op == kMalloc || op == kRealloc || op == kTrim) && s[2] > PTRDIFF_MAX)
      invalid("size above PTRDIFF_MAX");
    if ((op == kCalloc || op == kMemalign) && (s[2] > PTRDIFF_MAX || s[3] > PTRDIFF_MAX))
      invalid("size above PTRDIFF_MAX");
    if (op == kRealloc && s[2] == 0) invalid("realloc to 0 bytes; use free");
    if (op == kTouch && s[2] > 0xff) invalid("a byte is at most 255");
    // A freeze's operand: 0, or 1 + the fastbin limit its child sets.
    if (op == kFreeze && s[2] > kMaxFastSize + 1) invalid("a freeze's fastbin limit is at most 160");
    if (!NeedsRef(op)) continue;
    if (ref >= i || !Allocates(steps[ref * kInWords]))
      invalid("must refer to an earlier allocating step");
    if (consumed[ref])
      invalid("refers to step " + std::to_string(ref) + ", already freed or reallocated");
    if (op == kRealloc || op == kFree) consumed[ref] = 1;
  }
  return c;
}

}  // namespace

uint8_t* ScratchArea::Get(size_t bytes) {
  if (bytes <= size_ && data_ != nullptr) return data_;
  Drop();
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t size = (bytes + page - 1) & ~(page - 1);
  if (size == 0) size = page;
  void* p = MapOwn(size);
  if (p == MAP_FAILED) return nullptr;
  data_ = static_cast<uint8_t*>(p);
  size_ = size;
  return data_;
}

void ScratchArea::Drop() {
  if (data_ != nullptr) munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

Napi::Value Addon::RunPlan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_biguint64_array)
    ThrowCode(env, "ERR_INVALID_ARG_TYPE", "plan must be a BigUint64Array");
  bool keep = info.Length() > 1 && info[1].ToBoolean().Value();
  // An optional fourth: the first step from which the caller gives every
  // read copy back itself (CopyBuffer); none when left out.
  const bool releases = info.Length() > 3 && !info[3].IsUndefined();
  if (releases && (!info[3].IsNumber() || !WholeNumber(info[3].As<Napi::Number>().DoubleValue())))
    ThrowCode(env, "ERR_INVALID_ARG_TYPE", "the first released step must be a whole number");
  const double releasedFrom = releases ? info[3].As<Napi::Number>().DoubleValue() : -1;
  // An optional third argument: a BigUint64Array the records are written
  // into in place (the caller keeps one warm between plans), instead of
  // scratch copied into a fresh array after the steps.
  const bool given = info.Length() > 2 && !info[2].IsUndefined();
  if (given && (!info[2].IsTypedArray() ||
                info[2].As<Napi::TypedArray>().TypedArrayType() != napi_biguint64_array))
    ThrowCode(env, "ERR_INVALID_ARG_TYPE", "the records' array must be a BigUint64Array");
  auto in = info[0].As<Napi::BigUint64Array>();
  const size_t length = in.ElementLength();
  if (length % kInWords != 0)
    ThrowCode(env, "ERR_INVALID_PLAN", "plan length is not a whole number of steps");
  const size_t n = length / kInWords;
  if (n == 0) ThrowCode(env, "ERR_INVALID_PLAN", "plan has no steps");
  if (n > kMaxSteps) ThrowCode(env, "ERR_INVALID_PLAN", "plan has too many steps");

  // An optional fifth: the id of a compiled plan (planId()). Its words are
  // copied and checked on its first run and stay in heldPlan, checked, until
  // another compiled plan runs; its later runs run that copy and check
  // nothing again. Of the words given with the id (compilePlan never changes
  // them) only their number is read: words of another length are checked
  // and held instead. An id can only ever run words checked here.
  const bool compiled = info.Length() > 4 && !info[4].IsUndefined();
  if (compiled && (!info[4].IsNumber() || !WholeNumber(info[4].As<Napi::Number>().DoubleValue()) ||
                   info[4].As<Napi::Number>().DoubleValue() == 0))
    ThrowCode(env, "ERR_INVALID_ARG_TYPE", "a compiled plan's id must be a whole number above 0");
  const double id = compiled ? info[4].As<Napi::Number>().DoubleValue() : 0;
  const bool held = compiled && id == checkedPlan && n == checked.steps;
  // Another compiled plan's words replace them (no other plan writes heldPlan).
  if (compiled && !held) checkedPlan = 0;

  // A word changed after its check must never be used. A plan on a
  // SharedArrayBuffer, which another thread may rewrite, or on memory the
  // records overlap, which the steps rewrite, is copied first, then checked,
  // then run from the copy alone; so is a compiled plan, to be kept. Any
  // other plan is read where it is: no JavaScript runs until the call
  // returns, so nothing else writes it (a 4,000-step plan's copy was ~2% of
  // its run).
  const uint64_t* const source = in.Data();
  const size_t planBytes = length * sizeof(uint64_t);
  bool inPlace = !compiled && in.ArrayBuffer().IsArrayBuffer();
  if (inPlace && given) {
    auto records = info[2].As<Napi::BigUint64Array>();
    const uintptr_t a = reinterpret_cast<uintptr_t>(source), b = reinterpret_cast<uintptr_t>(records.Data());
    inPlace = a + planBytes <= b || b + records.ElementLength() * sizeof(uint64_t) <= a;
  }
  Scratch plan(compiled ? heldPlan : planCopy, (inPlace ? 0 : planBytes) + n);
  if (plan.data() == nullptr)
    ThrowCode(env, "ERR_ALLOC_FAILED", "cannot map plan scratch", errno, "mmap");
  const uint64_t* steps = inPlace ? source : reinterpret_cast<const uint64_t*>(plan.data());
  CheckedPlan c;
  if (held) {
    c = checked;
  } else {
    if (!inPlace) std::memcpy(plan.data(), source, planBytes);
    uint8_t* consumed = plan.data() + (inPlace ? 0 : planBytes);
    std::memset(consumed, 0, n);
    c = CheckSteps(env, steps, n, consumed);
    // Kept only where the area stays (ScratchArea::Done).
    if (compiled && planBytes + n <= ScratchArea::kKeep) {
      checked = c;
      checkedPlan = id;
    }
  }
  const size_t mapsSteps = c.mapsSteps, readSteps = c.readSteps, recordWords = c.recordWords;
  const uint64_t readBytes = c.readBytes;
  const bool readsPagemap = c.readsPagemap;
  if (given && info[2].As<Napi::BigUint64Array>().ElementLength() < recordWords)
    ThrowCode(env, "ERR_OUT_OF_RANGE", "the records' array is shorter than the plan's records");
  const size_t outBytes = given ? 0 : recordWords * sizeof(uint64_t);
  const size_t ptrBytes = n * sizeof(uintptr_t);
  // What the steps after the loop hand over (texts, Buffers) is taken from
  // here, never from the records: those may be a SharedArrayBuffer's.
  const size_t sideBytes = n * sizeof(Handover);
  Scratch scratch(planOut, outBytes + ptrBytes + sideBytes + mapsSteps * kMapsBytes);
  if (scratch.data() == nullptr)
    ThrowCode(env, "ERR_ALLOC_FAILED", "cannot map plan scratch", errno, "mmap");
  // Slots start zeroed (no pointer). Records need not: every step writes
  // its head word, and the fields of its op that are read.
  std::memset(scratch.data() + outBytes, 0, ptrBytes);
  ReadArea reads(readBytes);
  if (readBytes > 0 && !reads.ok())
    ThrowCode(env, "ERR_ALLOC_FAILED", "cannot map room for the plan's reads", errno, "mmap");
  uint8_t* const readBase = reads.next();
  uint8_t* read = readBase;
  uint64_t* out = given ? info[2].As<Napi::BigUint64Array>().Data() : reinterpret_cast<uint64_t*>(scratch.data());
  uintptr_t* slot = reinterpret_cast<uintptr_t*>(scratch.data() + outBytes);
  Handover* side = reinterpret_cast<Handover*>(scratch.data() + outBytes + ptrBytes);
  uint8_t* const textBase = scratch.data() + outBytes + ptrBytes + sideBytes;
  uint8_t* text = textBase;
  // The pid is cached here, not in the loop: its first lookup registers a
  // fork handler, which may malloc. Anonymous reads leave never-touched
  // pages alone (native/untouched.cc), and pagemap steps count pages there.
  const pid_t pid = OwnPid();
  const int pagemap = readsPagemap ? OpenPagemap(pid) : -1;
  PrepareMallinfo();
  // Thawed when the plan ends, however it ends.
  Frozen frozen;

  // The last freeze's step and where the reads stood then: a child that
  // ended before it measured undoes the freeze, and its steps run again
  // reading this process, as after a freeze that failed.
  size_t freezeAt = 0, freezeRecord = 0;
  uint8_t* readAtFreeze = read;
  bool mallinfoOwed = false;

  // Where the next step's record starts.
  size_t at = 0;

  // ---- From here to the end of the loop nothing may call malloc. ----
  for (size_t i = 0;; i++) {
    const uint64_t op = i < n ? steps[i * kInWords] : kThaw;
    // Frozen, a mallinfo step's record is filled once the child has
    // measured, and only a read up to the break ([heap]) goes on meanwhile.
    if (frozen.frozen() && !frozen.measured() &&
        !(op == kBreak || op == kMallinfo || (op == kRead && (steps[i * kInWords + 1] & 2) != 0) || (op == kThaw && !mallinfoOwed))) {
      const int measureErr = frozen.Measure();
      if (measureErr != 0) {
        frozen.Thaw();
        uint64_t* f = out + freezeRecord;
        f[0] = kFailed | Head(kFreeze, 0) | static_cast<uint64_t>(measureErr) << 32;
        f[1] = 0;
        read = readAtFreeze;
        mallinfoOwed = false;
        i = freezeAt;
        at = freezeRecord + kRecordWords[kFreeze];
        continue;
      }
      MallinfoSource source;
      const MallInfo2 m = frozen.Mallinfo(&source);
      for (size_t j = freezeAt + 1, k = freezeRecord + kRecordWords[kFreeze]; mallinfoOwed && j < i; k += kRecordWords[steps[j++ * kInWords]]) {
        if (steps[j * kInWords] != kMallinfo) continue;
        std::memcpy(out + k + 1, &m, sizeof(m));
        out[k + 11] = static_cast<uint64_t>(source);
      }
      mallinfoOwed = false;
    }
    if (i == n) break;
    const uint64_t* s = steps + i * kInWords;
    uint64_t* r = out + at;
    at += kRecordWords[op];
    const uint64_t head = Head(op, s[1]);
    void* target = NeedsRef(op) ? reinterpret_cast<void*>(slot[s[1]]) : nullptr;
    r[0] = kOk | head;
    if (NeedsRef(op) && target == nullptr) {
      r[0] = kSkipped | head;
      continue;
    }
    errno = 0;
    void* p = nullptr;
    int err = 0;
    switch (op) {
      case kMalloc: p = malloc(s[2]); break;
      case kCalloc: p = calloc(s[2], s[3]); break;
      case kRealloc:
        p = realloc(target, s[2]);
        if (p != nullptr) slot[s[1]] = 0;
        break;
      case kMemalign:
        err = posix_memalign(&p, s[2], s[3]);
        if (err != 0) p = nullptr;
        break;
      case kFree:
        free(target);
        slot[s[1]] = 0;
        break;
      case kBreak: r[1] = frozen.frozen() ? frozen.ProgramBreak() : reinterpret_cast<uintptr_t>(sbrk(0)); break;
      case kHeader: {
        uint64_t words[2];
        err = SafeRead(reinterpret_cast<uintptr_t>(target) - 16, words, 16);
        r[1] = words[1];
        r[2] = words[0];
        r[3] = reinterpret_cast<uintptr_t>(target) - 16;
        break;
      }
      case kUsable: r[1] = malloc_usable_size(target); break;
      case kMallinfo: {
        if (frozen.frozen() && !frozen.measured()) {
          mallinfoOwed = true;
          break;
        }
        MallinfoSource source;
        MallInfo2 m = frozen.frozen() ? frozen.Mallinfo(&source) : ReadMallinfo(&source);
        std::memcpy(r + 1, &m, sizeof(m));
        r[11] = static_cast<uint64_t>(source);
        break;
      }
      case kTrim: r[1] = static_cast<uint64_t>(malloc_trim(s[2])); break;
      case kTouch: std::memset(target, static_cast<int>(s[2]), malloc_usable_size(target)); break;
      case kResident:
        err = Resident(reinterpret_cast<uintptr_t>(target), malloc_usable_size(target), &r[1], &r[2]);
        break;
      case kMaps: {
        side[i] = {false, 0, 0};
        bool full = false;
        ssize_t got = ReadProcFile("/proc/self/maps", text, kMapsBytes, &full);
        if (got < 0) {
          err = static_cast<int>(-got);
        } else {
          side[i] = {true, static_cast<size_t>(text - textBase), static_cast<size_t>(got)};
          if (full) r[0] = kTruncated | head;
        }
        text += kMapsBytes;
        break;
      }
      case kRead: {
        // Copied through process_vm_readv: an unmapped address is EFAULT.
        // r[1]: pages left zero; r[2]: why pagemap was not read, if not.
        size_t got = 0;
        const bool anonymous = (s[1] & 1) != 0;
        uint64_t length = s[3];
        if ((s[1] & 2) != 0) {
          const uint64_t brk = frozen.frozen() ? frozen.ProgramBreak() : reinterpret_cast<uintptr_t>(sbrk(0));
          length = s[2] >= brk ? 0 : std::min<uint64_t>(length, brk - s[2]);
        }
        // To the length the word at address + offset gives (a thread heap's
        // heap_info says how much of it is writable), read as the copy is.
        const uint64_t offset = (s[1] & 0xFFFFFFFF) >> 8;
        if ((s[1] & 4) != 0 && s[2] + offset + 8 > s[2]) {
          uint64_t word = 0, none = 0;
          size_t gotWord = 0;
          int noPagemap = 0;
          UntouchedRead at = {frozen.frozen() ? frozen.pid() : pid, -1, static_cast<uintptr_t>(s[2] + offset), reinterpret_cast<uint8_t*>(&word),
                              sizeof(word), false, frozen.frozen() ? &frozen : nullptr};
          // Never below the least length the step gives: a word that says less is not trusted that far.
          if (ReadUntouched(at, &gotWord, &none, &noPagemap) == 0 && word < length) length = std::max<uint64_t>(word, s[1] >> 32);
        }
        // Frozen: the child's pagemap, which shows this process's pages as they were.
        const int map = frozen.frozen() ? frozen.pagemap() : pagemap;
        int pagemapErr = anonymous && map < 0 ? -map : 0;
        UntouchedRead from = {frozen.frozen() ? frozen.pid() : pid, anonymous ? map : -1, static_cast<uintptr_t>(s[2]), read, length, true,
                              frozen.frozen() ? &frozen : nullptr};
        r[1] = 0;  // ReadUntouched adds to it, and the records hold the last plan's words
        err = s[2] + length < s[2] ? EFAULT : ReadUntouched(from, &got, &r[1], &pagemapErr);
        r[2] = static_cast<uint64_t>(pagemapErr);
        side[i] = {err == 0, static_cast<size_t>(read - readBase), static_cast<size_t>(length)};
        read += PageSpan(s[3]);
        break;
      }
      case kFreeze:
        // r[1]: the child's pid. With a fastbin limit, the child sets it
        // (mallopt(M_MXFAST)) before it reads the break: the change is the
        // child's alone, and EINVAL when glibc refused it. A freeze that fails leaves the steps up to
        // its thaw reading this process as it goes on.
        freezeAt = i;
        freezeRecord = static_cast<size_t>(r - out);
        readAtFreeze = read;
        {
          // The first read up to the break before the thaw: the child pages it in before it measures.
          const uint64_t* toBreak = nullptr;
          for (size_t j = i + 1; j < n && steps[j * kInWords] != kThaw && toBreak == nullptr; j++) {
            if (steps[j * kInWords] == kRead && (steps[j * kInWords + 1] & 2) != 0) toBreak = steps + j * kInWords;
          }
          err = frozen.Freeze(s[2] == 0 ? -1 : static_cast<int>(s[2] - 1), toBreak == nullptr ? 0 : static_cast<uintptr_t>(toBreak[2]),
                              toBreak == nullptr ? 0 : static_cast<size_t>(toBreak[3]));
        }
        if (err == 0) r[1] = static_cast<uint64_t>(frozen.pid());
        break;
      case kThaw: frozen.Thaw(); break;
      case kPagemap: err = s[2] + s[3] < s[2] ? EFAULT : CountResident(pagemap, s[2], s[3], &r[1], &r[2]); break;
      case kStatm: {
        char buf[256];
        bool full = false;
        ssize_t got = ReadProcFile("/proc/self/statm", reinterpret_cast<uint8_t*>(buf), sizeof(buf) - 1, &full);
        if (got < 0) {
          err = static_cast<int>(-got);
        } else {
          buf[got] = 0;
          char* end = nullptr;
          r[2] = strtoull(buf, &end, 10);  // total program size, pages
          r[1] = strtoull(end, nullptr, 10);  // resident, pages
        }
        break;
      }
    }
    if (Allocates(op)) {
      slot[i] = reinterpret_cast<uintptr_t>(p);
      r[1] = reinterpret_cast<uintptr_t>(p);
      if (p == nullptr && err == 0) err = errno != 0 ? errno : ENOMEM;
    }
    if (err != 0) r[0] = kFailed | head | static_cast<uint64_t>(err) << 32;
  }
  // ---- Steps done; what follows may allocate. ----
  if (pagemap >= 0) close(pagemap);
  frozen.Thaw();

  // Kept allocations are recorded before any Node-API call, so that if one
  // fails (a worker torn down) they are still released with the addon.
  bool recorded = keep;
  for (size_t i = 0; recorded && i < n; i++) recorded = live.Insert(slot[i]);
  if (!recorded) {
    for (size_t i = n; i-- > 0;)
      if (slot[i] != 0) {
        live.Erase(slot[i]);
        free(reinterpret_cast<void*>(slot[i]));
      }
    if (keep)
      ThrowCode(env, "ERR_ALLOC_FAILED",
                "the plan ran, but there was no memory to record the allocations it kept; they were freed",
                ENOMEM);
  }
  Napi::Array kept = Napi::Array::New(env);
  for (size_t i = 0; keep && i < n; i++)
    if (slot[i] != 0) kept.Set(kept.Length(), Napi::Number::New(env, static_cast<double>(i)));

  Napi::Object result = Napi::Object::New(env);
  if (given) {
    result.Set("words", info[2]);
  } else {
    auto words = Napi::BigUint64Array::New(env, recordWords);
    std::memcpy(words.Data(), out, outBytes);
    result.Set("words", words);
  }
  Napi::Array texts = Napi::Array::New(env);
  for (size_t i = 0; mapsSteps > 0 && i < n; i++) {
    const uint64_t* s = steps + i * kInWords;
    // Set as a Napi::Value: given a Napi::String, node-addon-api's Set
    // converts it to a std::string (malloc'd, here in main_arena) and makes
    // a second string of that.
    if (s[0] == kMaps && side[i].ok) {
      const Napi::Value text = Napi::String::New(env, reinterpret_cast<const char*>(textBase + side[i].offset), side[i].length);
      texts.Set(static_cast<uint32_t>(i), text);
    }
  }
  result.Set("texts", texts);
  Napi::Array buffers = Napi::Array::New(env);
  for (size_t i = 0; readSteps > 0 && i < n; i++) {
    const uint64_t* s = steps + i * kInWords;
    if (s[0] != kRead) continue;
    const size_t span = PageSpan(s[3]);
    if (!side[i].ok || side[i].length == 0) {
      reads.HandOver(span, true);
      if (side[i].ok) buffers.Set(static_cast<uint32_t>(i), Napi::Buffer<uint8_t>::New(env, 0));
      continue;
    }
    // Steps are handed over in order: this step's range is next (the read
    // area unmaps it if no Buffer can be made).
    Napi::Buffer<uint8_t> bytes = CopyBuffer(env, reads.next(), side[i].length, span, releases && static_cast<double>(i) >= releasedFrom);
    reads.HandOver(span, false);
    buffers.Set(static_cast<uint32_t>(i), bytes);
  }
  result.Set("buffers", buffers);
  result.Set("kept", kept);
  return result;
}

Napi::Value Addon::PlanId(const Napi::CallbackInfo& info) {
  // Unique for this instance's life: 2^53 ids are never used up.
  return Napi::Number::New(info.Env(), ++lastPlanId);
}

}  // namespace heapscope
