// Copies ranges of another process's memory in one call, so that a
// snapshot of a running process is as close to one instant as the kernel
// allows: one process_vm_readv over every range, then (only if that one
// stopped short) each unfinished range alone, to learn its own errno.
#include <sys/types.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "heapscope.h"

namespace heapscope {

// One range at most 1 GiB, all of them at most 4 GiB: a bound on what one
// call may allocate, well above any arena's memory.
static constexpr size_t kMaxRange = size_t{1} << 30;
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

// readRemote(pid, ranges): `ranges` is a BigUint64Array of address, length
// pairs. Returns { buffers, errnos, lengths }: per range the copy (a
// Buffer of the bytes read, undefined when none), the errno that stopped it
// (0 when complete) and the bytes read (short of the length: a partial read).
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

  std::vector<struct iovec> local(count), remote(count);
  std::vector<std::vector<uint8_t>> copies(count);
  size_t total = 0;
  for (size_t i = 0; i < count; i++) {
    uint64_t address = words[2 * i], length = words[2 * i + 1];
    if (length > kMaxRange || address + length < address)
      ThrowCode(env, "ERR_OUT_OF_RANGE", "range " + std::to_string(i) + " is longer than 1 GiB or wraps");
    total += length;
    if (total > kMaxTotal) ThrowCode(env, "ERR_OUT_OF_RANGE", "ranges add up to more than 4 GiB");
  }
  for (size_t i = 0; i < count; i++) {
    copies[i].resize(words[2 * i + 1]);
    local[i] = {copies[i].data(), copies[i].size()};
    remote[i] = {reinterpret_cast<void*>(words[2 * i]), copies[i].size()};
  }

  std::vector<size_t> got(count, 0);
  std::vector<int> errs(count, 0);
  ssize_t n = count == 0 ? 0 : process_vm_readv(pid, local.data(), count, remote.data(), count, 0);
  if (n < 0 && ProcessWide(errno)) ThrowProcess(env, errno, pid);
  // The kernel stops at the first range it cannot finish: the ones before
  // it are whole; each one after is read alone.
  size_t done = n < 0 ? 0 : static_cast<size_t>(n);
  size_t i = 0;
  for (; i < count && done >= copies[i].size(); i++) {
    got[i] = copies[i].size();
    done -= copies[i].size();
  }
  for (; i < count; i++) {
    if (copies[i].empty()) continue;
    ssize_t m = process_vm_readv(pid, &local[i], 1, &remote[i], 1, 0);
    if (m < 0) {
      if (ProcessWide(errno)) ThrowProcess(env, errno, pid);
      errs[i] = errno;
      continue;
    }
    got[i] = static_cast<size_t>(m);
    // A read that stops at an unmapped page: the rest is a fault.
    if (got[i] < copies[i].size()) errs[i] = EFAULT;
  }

  Napi::Array buffers = Napi::Array::New(env, count);
  Napi::Array errnos = Napi::Array::New(env, count);
  Napi::Array lengths = Napi::Array::New(env, count);
  for (size_t k = 0; k < count; k++) {
    if (got[k] > 0) buffers.Set(k, Napi::Buffer<uint8_t>::Copy(env, copies[k].data(), got[k]));
    errnos.Set(k, Napi::Number::New(env, errs[k]));
    lengths.Set(k, Napi::Number::New(env, static_cast<double>(got[k])));
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("buffers", buffers);
  out.Set("errnos", errnos);
  out.Set("lengths", lengths);
  return out;
}

}  // namespace heapscope
