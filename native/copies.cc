// The plan's read copies and the long ranges read from another process,
// handed to JavaScript as Buffers over memory from mmap. Node runs a
// Buffer's finalizer only from its event loop, so a loop that copies a big
// heap again and again without yielding held every copy (ten walks of a
// million chunks: over a GiB mapped). A caller done with a copy gives it
// back now: its ArrayBuffer is detached first, so that no view of it can
// reach the memory, then the memory is unmapped. Each copy is registered
// here by its address with an id; the finalizer unmaps only a copy still
// registered under its own id, since the address may belong to a newer copy
// by the time it runs. Nothing here calls malloc.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <mutex>

#include "heapscope.h"

namespace heapscope {

namespace {

// The registry lives in memory from mmap, mapped at its first use and kept,
// not from malloc: its entries come and go as copies are made and
// collected, and a hash map's nodes would be small blocks freed into the
// heap being measured whenever V8 collects a copy. (Not in the addon's bss
// either: 96 KiB there would give the addon a bss line in the map.) Open
// addressing over page-aligned addresses; when it is three quarters full,
// or could not be mapped, a copy goes unregistered, and its finalizer
// unmaps it (it cannot be released early, and its address cannot be reused
// before).
struct Registered {
  uintptr_t data;  // 0: empty
  size_t span;
  uint64_t id;
  // Bytes taken off V8's count of external memory while the copy lives (CopyBuffer).
  size_t uncounted;
};
constexpr size_t kSlots = 4096;
Registered* entries = nullptr;  // kSlots of them once mapped
size_t used = 0;
uint64_t nextId = 1;
// Shared by every instance (worker threads too): addresses are the process's.
std::mutex copiesMutex;

// Copies are page-aligned.
size_t Home(uintptr_t p) { return MixAddress(p, 12) & (kSlots - 1); }

// The slot holding `p`, or the empty one where it would go.
size_t Find(uintptr_t p) {
  size_t i = Home(p);
  while (entries[i].data != 0 && entries[i].data != p) i = (i + 1) & (kSlots - 1);
  return i;
}

// Backward-shift deletion keeps every probe chain unbroken.
void EraseAt(size_t i) {
  entries[i] = {0, 0, 0, 0};
  used--;
  for (size_t j = (i + 1) & (kSlots - 1); entries[j].data != 0; j = (j + 1) & (kSlots - 1)) {
    const size_t home = Home(entries[j].data);
    const bool between = i <= j ? (i < home && home <= j) : (i < home || home <= j);
    if (between) continue;
    entries[i] = entries[j];
    entries[j] = {0, 0, 0, 0};
    i = j;
  }
}

// The copy's id, or 0 when the registry is full: that copy only its
// finalizer unmaps.
uint64_t RegisterCopy(uint8_t* data, size_t span) {
  std::lock_guard<std::mutex> lock(copiesMutex);
  if (entries == nullptr) {
    void* p = MapOwn(kSlots * sizeof(Registered));
    if (p == MAP_FAILED) return 0;
    entries = static_cast<Registered*>(p);
  }
  if ((used + 1) * 4 > kSlots * 3) return 0;
  const uintptr_t p = reinterpret_cast<uintptr_t>(data);
  const size_t i = Find(p);
  if (entries[i].data == 0) used++;
  entries[i] = {p, span, nextId, 0};
  return nextId++;
}

// Whether copy `id` is still registered; it is then marked `uncounted`.
bool MarkUncounted(uint8_t* data, uint64_t id, size_t uncounted) {
  if (id == 0) return false;
  std::lock_guard<std::mutex> lock(copiesMutex);
  const size_t i = Find(reinterpret_cast<uintptr_t>(data));
  if (entries[i].data == 0 || entries[i].id != id) return false;
  entries[i].uncounted = uncounted;
  return true;
}

void UnregisterCopy(uint8_t* data, uint64_t id) {
  if (id == 0) return;
  std::lock_guard<std::mutex> lock(copiesMutex);
  const size_t i = Find(reinterpret_cast<uintptr_t>(data));
  if (entries[i].data != 0 && entries[i].id == id) EraseAt(i);
}

void FinalizeCopy(napi_env env, uint8_t* data, size_t span, uint64_t id) {
  if (id == 0) {
    munmap(data, span);
    return;
  }
  size_t uncounted;
  {
    std::lock_guard<std::mutex> lock(copiesMutex);
    const size_t i = Find(reinterpret_cast<uintptr_t>(data));
    // Released already (then the address may be a newer copy's): nothing to do.
    if (entries[i].data == 0 || entries[i].id != id) return;
    uncounted = entries[i].uncounted;
    EraseAt(i);
  }
  munmap(data, span);
  // V8 takes the whole length off its count as it frees the buffer (before or after this finalizer runs).
  int64_t total;
  if (uncounted > 0) napi_adjust_external_memory(env, static_cast<int64_t>(uncounted), &total);
}

}  // namespace

// The most a copy may hold to be left out of V8's count: V8 (11, in Node
// 20) starts collecting once its count grows 64 MiB past where it stood
// (kExternalAllocationSoftLimit), and a bigger copy gets there as its
// Buffer is made, whatever is done after: over ten walks of [heap]s of 71
// and 81 MB, 10 and 11 collections begun for that, against 10 counted.
// Taken off before its Buffer was made instead, walks of a 62 MB [heap]
// took 123.1-140.3 ms against 116.2-124.6 (three runs each in turns): V8
// moves its limit to 64 MiB above any new low of its count, so a copy taken
// off first leaves no more room than one taken off after, and one of 64
// MiB or more starts a collection either way (bench/rounds.md, 2026-12-06).
constexpr size_t kUncountedMost = size_t{64} << 20;

Napi::Buffer<uint8_t> CopyBuffer(Napi::Env env, uint8_t* data, size_t length, size_t span, bool released) {
  // Registered first: a Buffer made as a copy runs the finalizer at once.
  const uint64_t id = RegisterCopy(data, span);
  Napi::Buffer<uint8_t> buffer;
  try {
    buffer = Napi::Buffer<uint8_t>::NewOrCopy(env, data, length, [span, id](Napi::Env e, uint8_t* bytes) { FinalizeCopy(e, bytes, span, id); });
  } catch (...) {
    UnregisterCopy(data, id);
    throw;
  }
  // A copy its caller gives back itself is not counted as V8's external
  // memory: counted, a walk's copy set V8 collecting every walk, for memory
  // no collection frees. It is counted again when given back, just before
  // detaching takes its length off, or else by its finalizer.
  int64_t total;
  if (released && length < kUncountedMost && buffer.Data() == data && MarkUncounted(data, id, length)) {
    napi_adjust_external_memory(env, -static_cast<int64_t>(length), &total);
  }
  return buffer;
}

bool ReleaseCopy(Napi::Env env, Napi::Buffer<uint8_t> buffer) {
  Napi::ArrayBuffer whole = buffer.ArrayBuffer();
  // A view of part of a copy would leave the rest of it reachable.
  if (buffer.ByteOffset() != 0 || buffer.Length() != whole.ByteLength() || buffer.Length() == 0) return false;
  const uintptr_t data = reinterpret_cast<uintptr_t>(buffer.Data());
  Registered copy;
  {
    std::lock_guard<std::mutex> lock(copiesMutex);
    if (entries == nullptr) return false;
    const size_t at = Find(data);
    if (entries[at].data == 0) return false;
    copy = entries[at];
    EraseAt(at);
  }
  // Detached, every view of it reads as empty: only then is the memory
  // unmapped. (Not under the lock: detaching may finalize.) Detaching takes
  // its length off V8's count: an uncounted copy is counted again first.
  int64_t total;
  if (copy.uncounted > 0) napi_adjust_external_memory(env, static_cast<int64_t>(copy.uncounted), &total);
  if (napi_detach_arraybuffer(env, whole) != napi_ok) {
    if (copy.uncounted > 0) napi_adjust_external_memory(env, -static_cast<int64_t>(copy.uncounted), &total);
    std::lock_guard<std::mutex> lock(copiesMutex);
    const size_t at = Find(data);
    if (entries[at].data == 0) used++;
    entries[at] = copy;
    return false;
  }
  munmap(reinterpret_cast<void*>(data), copy.span);
  return true;
}

// freshBuffer(length, populate = true): `length` zero bytes from mmap, in
// huge pages where the kernel gives them, as a Buffer that is given back as
// a copy is. For the columns a walk of a big heap fills: a typed array of
// that size came from malloc, which mmapped it afresh, and each of its pages
// then cost a fault when first written (a page fault costs ~10 us on the
// machine measured: 17 MiB took ~60 ms that way, ~10 ms in huge pages
// populated at once). With `populate` false the pages are left to be
// faulted in as they are written: for columns sized for the most a region
// could hold, of which a walk writes only what it finds.
Napi::Value Addon::FreshBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const size_t length = ArgSize(info, 0);
  if (length == 0 || length > kMaxBuffer) ThrowCode(env, "ERR_OUT_OF_RANGE", "length must be from 1 to 2^32 bytes");
  const bool populate = info.Length() < 2 || info[1].IsUndefined() || info[1].ToBoolean().Value();
  const size_t span = PageSpan(length);
  void* p = MapForCopy(span);
  if (p == MAP_FAILED) ThrowCode(env, "ERR_ALLOC_FAILED", "cannot map a fresh buffer", errno, "mmap");
  uint8_t* data = static_cast<uint8_t*>(p);
  if (populate) PopulateForCopy(data, span);
  try {
    return CopyBuffer(env, data, length, span, false);
  } catch (...) {
    munmap(p, span);
    throw;
  }
}

// dropPages(arrayBuffer, from, to): hands the kernel back the whole pages of
// bytes [from, to) of a registered copy (freshBuffer's, a plan's read, a
// read of another process), which read as zero after.
// For columns sized for the most a region could hold: written as the walk
// went, in huge pages, their unwritten parts stayed resident (five walks of
// a 62 MiB heap of 26,000 chunks, held, added 20.5 MiB to the resident set,
// 8.5 MiB with this). Anything but a
// registered copy's whole memory is passed over (returns false): this never
// touches memory heapscope did not map.
Napi::Value Addon::DropPages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) ThrowCode(env, "ERR_INVALID_ARG_TYPE", "buffer must be an ArrayBuffer");
  Napi::ArrayBuffer buffer = info[0].As<Napi::ArrayBuffer>();
  const size_t from = ArgSize(info, 1);
  const size_t to = ArgSize(info, 2);
  const size_t length = buffer.ByteLength();
  if (from > to || to > length) ThrowCode(env, "ERR_OUT_OF_RANGE", "from and to must satisfy 0 <= from <= to <= the buffer's length");
  const uintptr_t data = reinterpret_cast<uintptr_t>(buffer.Data());
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t start = (data + from + page - 1) & ~(page - 1);
  const uintptr_t end = (data + to) & ~(page - 1);
  // Under the registry's lock, so that the copy cannot be given back meanwhile.
  std::lock_guard<std::mutex> lock(copiesMutex);
  if (entries == nullptr || data == 0) return Napi::Boolean::New(env, false);
  const size_t at = Find(data);
  if (entries[at].data == 0 || entries[at].span < length) return Napi::Boolean::New(env, false);
  if (start < end) madvise(reinterpret_cast<void*>(start), end - start, MADV_DONTNEED);
  return Napi::Boolean::New(env, true);
}

// releaseCopies(buffers): gives back the memory of each Buffer that is a
// whole copy a plan or a read of another process handed over and not yet
// given back; anything else is passed over. Returns how many were given back.
Napi::Value Addon::ReleaseCopies(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) ThrowCode(env, "ERR_INVALID_ARG_TYPE", "buffers must be an array");
  Napi::Array buffers = info[0].As<Napi::Array>();
  uint32_t released = 0;
  for (uint32_t i = 0; i < buffers.Length(); i++) {
    Napi::Value value = buffers.Get(i);
    if (value.IsBuffer() && ReleaseCopy(env, value.As<Napi::Buffer<uint8_t>>())) released++;
  }
  return Napi::Number::New(env, released);
}

// externalMemory(): V8's count of external memory (what
// napi_adjust_external_memory adjusts, and ArrayBuffers' lengths with it),
// by which it decides when to collect: for the tests of CopyBuffer's.
Napi::Value Addon::ExternalMemory(const Napi::CallbackInfo& info) {
  int64_t total = 0;
  napi_adjust_external_memory(info.Env(), 0, &total);
  return Napi::Number::New(info.Env(), static_cast<double>(total));
}

}  // namespace heapscope
