// Copies ranges of another process's memory in one call, so that a
// snapshot of a running process is as close to one instant as the kernel
// allows: one process_vm_readv over every plain range, then (only if that
// one stopped short) each unfinished range alone, to learn its own errno;
// then each range of private anonymous memory, without reading the pages
// that were never touched, so that copying them does not make them resident.
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "heapscope.h"

namespace heapscope {

// All the ranges at most 4 GiB: a bound on what one call may allocate. No
// bound of its own on one range: main_arena's [heap] may be of any size, and
// a snapshot copies it twice in one call (so up to 2 GiB of [heap]).
static constexpr size_t kMaxTotal = size_t{4} << 30;
static constexpr size_t kMaxRanges = 1024;  // IOV_MAX

[[noreturn]] static void ThrowProcess(Napi::Env env, int err, pid_t pid) {
  std::string who = "process " + std::to_string(pid);
  if (err == ESRCH)
    ThrowCode(env, "ERR_PROCESS_EXITED", who + " does not exist (it exited)", err, "process_vm_readv");
  if (err == EPERM || err == EACCES)
    ThrowCode(env, "ERR_PERMISSION", "not allowed to read the memory of " + who + " (" + strerror(err) + ")",
              err, "process_vm_readv");
  ThrowCode(env, "ERR_READ_FAILED", "cannot read the memory of " + who + " (" + strerror(err) + ")", err,
            "process_vm_readv");
}

// Whether a failure concerns the process rather than one range.
static bool ProcessWide(int err) { return err == ESRCH || err == EPERM || err == EACCES; }

// The plain read of `count` ranges into `local`: one process_vm_readv over
// them all; the kernel stops at the first range it cannot finish (or at
// 2 GiB − 4 KiB in all), so the ones before it are whole and each one after
// is read alone, to learn its own errno (EFAULT for a read cut short).
// Throws for a process-wide failure.
static void ReadPlain(Napi::Env env, pid_t pid, const struct iovec* local, const struct iovec* remote, size_t count,
                      size_t* got, int* errs) {
  ssize_t n = count == 0 ? 0 : process_vm_readv(pid, local, count, remote, count, 0);
  if (n < 0 && ProcessWide(errno)) ThrowProcess(env, errno, pid);
  size_t done = n < 0 ? 0 : static_cast<size_t>(n);
  size_t k = 0;
  for (; k < count && done >= local[k].iov_len; k++) {
    got[k] = local[k].iov_len;
    errs[k] = 0;
    done -= local[k].iov_len;
  }
  for (; k < count; k++) {
    got[k] = 0;
    errs[k] = 0;
    if (local[k].iov_len == 0) continue;
    const int err = ReadWhole(pid, reinterpret_cast<uintptr_t>(remote[k].iov_base), static_cast<uint8_t*>(local[k].iov_base),
                              local[k].iov_len, &got[k]);
    if (ProcessWide(err)) ThrowProcess(env, err, pid);
    errs[k] = err;
  }
}

// readRemote's packed form (below): no allocation, no result.
static Napi::Value ReadPacked(const Napi::CallbackInfo& info, pid_t pid, const Napi::BigUint64Array& words, size_t count) {
  Napi::Env env = info.Env();
  if (!info[4].IsTypedArray() || info[4].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
      info[4].As<Napi::Int32Array>().ElementLength() != count)
    ThrowCode(env, "ERR_INVALID_ARG_TYPE", "argument 4 must be an Int32Array with an element per range");
  if (!info[2].IsUndefined()) ThrowCode(env, "ERR_INVALID_ARG_TYPE", "argument 2 must be undefined with argument 4");
  if (!info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    ThrowCode(env, "ERR_INVALID_ARG_TYPE", "argument 3 must be a Uint8Array");
  Napi::Uint8Array into = info[3].As<Napi::Uint8Array>();
  Napi::Int32Array errnos = info[4].As<Napi::Int32Array>();
  struct iovec local[kMaxRanges], remote[kMaxRanges];
  size_t got[kMaxRanges];
  int errs[kMaxRanges];
  size_t at = 0;
  for (size_t i = 0; i < count; i++) {
    const uint64_t address = words[2 * i], length = words[2 * i + 1];
    if (address + length < address) ThrowCode(env, "ERR_OUT_OF_RANGE", "range " + std::to_string(i) + " wraps");
    if (length > into.ElementLength() - at)
      ThrowCode(env, "ERR_OUT_OF_RANGE", "argument 3 holds " + std::to_string(into.ElementLength()) + " bytes, fewer than the ranges");
    local[i] = {into.Data() + at, static_cast<size_t>(length)};
    remote[i] = {reinterpret_cast<void*>(address), static_cast<size_t>(length)};
    at += static_cast<size_t>(length);
  }
  ReadPlain(env, pid, local, remote, count, got, errs);
  for (size_t i = 0; i < count; i++) errnos[i] = errs[i];
  return env.Undefined();
}

// readRemote(pid, ranges, anonymous): `ranges` is a BigUint64Array of
// address, length pairs; `anonymous`, if given, a Uint8Array with a byte per
// range, 1 for private anonymous memory: such a range is copied on its own,
// its never-touched pages left zero (native/untouched.cc). Returns
// { buffers, errnos, lengths, untouched, pagemapErrno }: per range the copy
// (a Buffer of the bytes read, undefined when none), the errno that stopped
// it (0 when complete), the bytes read (short of the length: a partial read)
// and the pages left zero; and why /proc/PID/pagemap was not read (0: it was,
// or no range needed it).
// With `into` (a Uint8Array at least as long as all the ranges together),
// the ranges are read into it one after another instead, and `buffers` is
// empty: a caller that reads a big region a window at a time reuses one
// array whose pages are already there, where a fresh Buffer per window
// would take a page fault per page, and many small ranges need no Buffer each.
// With `into` and `errnos` too (an Int32Array with an element per range),
// and no `anonymous`, each range's errno is written there and nothing is
// returned: for a few small ranges (the first pages of a map's ELF images)
// the result's arrays and Buffers took longer than the read.
Napi::Value Addon::ReadRemote(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber())
    ThrowCode(env, "ERR_INVALID_ARG_TYPE", "argument 0 must be a pid (a number)");
  double pidValue = info[0].As<Napi::Number>().DoubleValue();
  if (!(pidValue >= 1 && pidValue <= std::numeric_limits<pid_t>::max()) || pidValue != static_cast<pid_t>(pidValue))
    ThrowCode(env, "ERR_OUT_OF_RANGE", "pid must be a positive integer");
  pid_t pid = static_cast<pid_t>(pidValue);
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_biguint64_array)
    ThrowCode(env, "ERR_INVALID_ARG_TYPE", "argument 1 must be a BigUint64Array of address, length pairs");
  Napi::BigUint64Array words = info[1].As<Napi::BigUint64Array>();
  size_t count = words.ElementLength() / 2;
  if (words.ElementLength() % 2 != 0 || count > kMaxRanges)
    ThrowCode(env, "ERR_OUT_OF_RANGE", "ranges must be address, length pairs, at most 1024 of them");
  if (info.Length() > 4 && !info[4].IsUndefined()) return ReadPacked(info, pid, words, count);
  std::vector<uint8_t> anonymous(count, 0);
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
        info[2].As<Napi::Uint8Array>().ElementLength() != count)
      ThrowCode(env, "ERR_INVALID_ARG_TYPE", "argument 2 must be a Uint8Array with a byte per range");
    Napi::Uint8Array flags = info[2].As<Napi::Uint8Array>();
    for (size_t i = 0; i < count; i++) anonymous[i] = flags[i] != 0;
  }

  std::vector<uint8_t*> into;
  if (info.Length() > 3 && !info[3].IsUndefined()) {
    if (!info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      ThrowCode(env, "ERR_INVALID_ARG_TYPE", "argument 3 must be a Uint8Array");
    Napi::Uint8Array array = info[3].As<Napi::Uint8Array>();
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
      uint64_t length = words[2 * i + 1];
      if (length > array.ElementLength() - at)
        ThrowCode(env, "ERR_OUT_OF_RANGE", "argument 3 holds " + std::to_string(array.ElementLength()) + " bytes, fewer than the ranges");
      into.push_back(array.Data() + at);
      at += static_cast<size_t>(length);
    }
  }

  std::vector<struct iovec> local(count), remote(count);
  size_t total = 0;
  for (size_t i = 0; i < count; i++) {
    uint64_t address = words[2 * i], length = words[2 * i + 1];
    if (address + length < address) ThrowCode(env, "ERR_OUT_OF_RANGE", "range " + std::to_string(i) + " wraps");
    if (length > kMaxTotal || total + length > kMaxTotal)
      ThrowCode(env, "ERR_OUT_OF_RANGE", "ranges add up to more than 4 GiB");
    total += length;
  }
  // Each range is read straight into the Buffer returned, so a range of a
  // GiB is neither zeroed first nor copied again after, and the pages an
  // anonymous range leaves untouched stay untouched here too: a long range's
  // own mapping, fresh and zero; a short one's calloc, zeroed.
  std::vector<Napi::Buffer<uint8_t>> buffers(count);
  std::vector<uint8_t*> data(count, nullptr);
  std::vector<size_t> sizes(count, 0);
  for (size_t i = 0; i < count; i++) {
    size_t length = static_cast<size_t>(words[2 * i + 1]);
    if (!into.empty()) {
      data[i] = into[i];
    } else if (length >= kMappedCopy) {
      const size_t span = PageSpan(length);
      void* p = MapForCopy(span);
      if (p == MAP_FAILED)
        ThrowCode(env, "ERR_ALLOC_FAILED", "cannot map " + std::to_string(length) + " bytes to copy range " + std::to_string(i) + " into", errno, "mmap");
      uint8_t* copy = static_cast<uint8_t*>(p);
      try {
        buffers[i] = CopyBuffer(env, copy, length, span, false);
      } catch (const Napi::Error& error) {
        munmap(copy, span);
        ThrowCode(env, "ERR_ALLOC_FAILED", "cannot make a Buffer of " + std::to_string(length) + " bytes to copy range " + std::to_string(i) + " into: " + error.Message(), ENOMEM);
      }
      // Where Node copied it (no external memory allowed), the read goes into its copy.
      data[i] = buffers[i].Data();
    } else if (length > 0) {
      data[i] = static_cast<uint8_t*>(calloc(length, 1));
      if (data[i] == nullptr)
        ThrowCode(env, "ERR_ALLOC_FAILED", "cannot allocate " + std::to_string(length) + " bytes to copy range " + std::to_string(i) + " into", ENOMEM);
      try {
        buffers[i] = Napi::Buffer<uint8_t>::New(env, data[i], length, [](Napi::Env, uint8_t* bytes) { free(bytes); });
      } catch (const Napi::Error& error) {
        // No Buffer owns the block yet: it is freed here, and the error gets a code.
        free(data[i]);
        ThrowCode(env, "ERR_ALLOC_FAILED", "cannot make a Buffer of " + std::to_string(length) + " bytes to copy range " + std::to_string(i) + " into: " + error.Message(), ENOMEM);
      }
    }
    sizes[i] = length;
    local[i] = {data[i], length};
    remote[i] = {reinterpret_cast<void*>(words[2 * i]), length};
  }

  std::vector<size_t> got(count, 0);
  std::vector<int> errs(count, 0);
  std::vector<uint64_t> untouched(count, 0);
  int pagemapErr = 0;
  std::vector<size_t> plain;
  std::vector<struct iovec> plainLocal, plainRemote;
  for (size_t k = 0; k < count; k++) {
    if (anonymous[k]) continue;
    plain.push_back(k);
    plainLocal.push_back(local[k]);
    plainRemote.push_back(remote[k]);
  }
  if (into.empty())
    for (size_t k : plain) PopulateForCopy(data[k], sizes[k]);
  std::vector<size_t> plainGot(plain.size());
  std::vector<int> plainErrs(plain.size());
  ReadPlain(env, pid, plainLocal.data(), plainRemote.data(), plain.size(), plainGot.data(), plainErrs.data());
  for (size_t p = 0; p < plain.size(); p++) {
    got[plain[p]] = plainGot[p];
    errs[plain[p]] = plainErrs[p];
  }
  // The anonymous ones, each right after its pages were looked up.
  int pagemap = -1;
  for (size_t k = 0; k < count; k++) {
    if (!anonymous[k] || sizes[k] == 0) continue;
    if (pagemap == -1) {
      pagemap = OpenPagemap(pid);
      if (pagemap < 0) pagemapErr = -pagemap;
    }
    // An array given to read into holds the last window: its untouched pages are zeroed here.
    UntouchedRead from = {pid, pagemap, static_cast<uintptr_t>(words[2 * k]), data[k], sizes[k], into.empty()};
    errs[k] = ReadUntouched(from, &got[k], &untouched[k], &pagemapErr);
    if (ProcessWide(errs[k])) {
      if (pagemap >= 0) close(pagemap);
      ThrowProcess(env, errs[k], pid);
    }
  }
  if (pagemap >= 0) close(pagemap);

  Napi::Array read = Napi::Array::New(env, count);
  Napi::Array errnos = Napi::Array::New(env, count);
  Napi::Array lengths = Napi::Array::New(env, count);
  Napi::Array untouchedPages = Napi::Array::New(env, count);
  for (size_t k = 0; k < count; k++) {
    // A whole range is its Buffer; the bytes of a partial read are copied out of it.
    if (!into.empty()) {
    } else if (got[k] == sizes[k] && got[k] > 0) {
      read.Set(k, buffers[k]);
    } else {
      if (got[k] > 0) read.Set(k, Napi::Buffer<uint8_t>::Copy(env, data[k], got[k]));
      // What was read is copied out (or nothing was): a mapped copy goes back now.
      if (!buffers[k].IsEmpty()) ReleaseCopy(env, buffers[k]);
    }
    errnos.Set(k, Napi::Number::New(env, errs[k]));
    lengths.Set(k, Napi::Number::New(env, static_cast<double>(got[k])));
    untouchedPages.Set(k, Napi::Number::New(env, static_cast<double>(untouched[k])));
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("buffers", read);
  out.Set("errnos", errnos);
  out.Set("lengths", lengths);
  out.Set("untouched", untouchedPages);
  out.Set("pagemapErrno", Napi::Number::New(env, pagemapErr));
  return out;
}

}  // namespace heapscope
