// Allocation calls. Each records its pointer in the live set so that free,
// realloc and writes can refuse what heapscope did not hand out.
#include <malloc.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "heapscope.h"

namespace heapscope {

static Napi::Value Allocated(Addon* self, Napi::Env env, void* p,
                             const char* call) {
  if (p == nullptr) {
    int err = errno;
    ThrowCode(env, "ERR_ALLOC_FAILED",
              std::string(call) + " returned NULL (" + strerror(err) + ")",
              err, call);
  }
  if (reinterpret_cast<uintptr_t>(p) > kMaxExact) {
    // Never on x86_64 (user space ends at 2^47), but a number must hold it.
    std::free(p);
    ThrowCode(env, "ERR_INTERNAL", std::string(call) + " returned a pointer above 2^53");
  }
  if (!self->live.Insert(reinterpret_cast<uintptr_t>(p))) {
    // Unrecorded, it could never be freed through heapscope: give it back.
    std::free(p);
    ThrowCode(env, "ERR_ALLOC_FAILED",
              std::string(call) + " succeeded, but there was no memory to record the pointer",
              ENOMEM, call);
  }
  return Napi::Number::New(env, static_cast<double>(reinterpret_cast<uintptr_t>(p)));
}

[[noreturn]] static void NotLive(Napi::Env env, const char* call) {
  ThrowCode(env, "ERR_UNKNOWN_POINTER",
            std::string(call) +
                ": address was not allocated by heapscope in this thread, "
                "or was already freed");
}

static void RequireLive(Addon* self, Napi::Env env, uintptr_t p,
                        const char* call) {
  if (!self->live.Contains(p)) NotLive(env, call);
}

namespace {

// The one argument of a quick call as a whole number below 2^53, and the
// instance; false (nothing done yet) for anything else.
bool QuickArg(napi_env env, napi_callback_info cb, uint64_t* value, Addon** self) {
  size_t argc = 1;
  napi_value arg;
  void* data;
  double d;
  if (napi_get_cb_info(env, cb, &argc, &arg, nullptr, &data) != napi_ok || argc < 1 ||
      napi_get_value_double(env, arg, &d) != napi_ok || !WholeNumber(d))
    return false;
  *value = static_cast<uint64_t>(d);
  *self = static_cast<Addon*>(data);
  return true;
}

}  // namespace

napi_value Addon::QuickMalloc(napi_env env, napi_callback_info cb) noexcept {
  uint64_t n;
  Addon* self;
  if (!QuickArg(env, cb, &n, &self)) return Entry<&Addon::Malloc>(env, cb);
  errno = 0;
  void* p = malloc(n);
  return Guard(env, [&] { return Allocated(self, Napi::Env(env), p, "malloc"); });
}

napi_value Addon::QuickFree(napi_env env, napi_callback_info cb) noexcept {
  uint64_t p;
  Addon* self;
  // Erased only when it was live: what the set does not hold is refused by Free.
  if (!QuickArg(env, cb, &p, &self) || !self->live.Erase(p)) return Entry<&Addon::Free>(env, cb);
  free(reinterpret_cast<void*>(p));
  // No value: Node-API makes the call's result undefined.
  return nullptr;
}

napi_value Addon::QuickUsableSize(napi_env env, napi_callback_info cb) noexcept {
  uint64_t p;
  Addon* self;
  napi_value out;
  if (QuickArg(env, cb, &p, &self) && self->live.Contains(p) &&
      napi_create_double(env, static_cast<double>(malloc_usable_size(reinterpret_cast<void*>(p))), &out) == napi_ok)
    return out;
  return Entry<&Addon::UsableSize>(env, cb);
}

Napi::Value Addon::Malloc(const Napi::CallbackInfo& info) {
  size_t n = ArgSize(info, 0);
  errno = 0;
  return Allocated(this, info.Env(), malloc(n), "malloc");
}

Napi::Value Addon::Calloc(const Napi::CallbackInfo& info) {
  size_t count = ArgSize(info, 0);
  size_t n = ArgSize(info, 1);
  errno = 0;
  return Allocated(this, info.Env(), calloc(count, n), "calloc");
}

Napi::Value Addon::Realloc(const Napi::CallbackInfo& info) {
  uintptr_t old = ArgAddress(info, 0);
  size_t n = ArgSize(info, 1);
  RequireLive(this, info.Env(), old, "realloc");
  if (n == 0)
    ThrowCode(info.Env(), "ERR_OUT_OF_RANGE",
              "realloc to 0 bytes would free the block; use free()");
  errno = 0;
  void* p = realloc(reinterpret_cast<void*>(old), n);
  // On failure the old block stays valid and stays live.
  if (p != nullptr) live.Erase(old);
  return Allocated(this, info.Env(), p, "realloc");
}

Napi::Value Addon::Memalign(const Napi::CallbackInfo& info) {
  size_t alignment = ArgSize(info, 0);
  size_t n = ArgSize(info, 1);
  void* p = nullptr;
  int err = posix_memalign(&p, alignment, n);
  if (err != 0) {
    errno = err;
    p = nullptr;
  }
  return Allocated(this, info.Env(), p, "posix_memalign");
}

Napi::Value Addon::Free(const Napi::CallbackInfo& info) {
  uintptr_t p = ArgAddress(info, 0);
  // One probe of the set: what it does not hold is not erased, and refused.
  if (!live.Erase(p)) NotLive(info.Env(), "free");
  free(reinterpret_cast<void*>(p));
  return info.Env().Undefined();
}

Napi::Value Addon::UsableSize(const Napi::CallbackInfo& info) {
  uintptr_t p = ArgAddress(info, 0);
  RequireLive(this, info.Env(), p, "malloc_usable_size");
  return Exact(info.Env(), malloc_usable_size(reinterpret_cast<void*>(p)));
}

Napi::Value Addon::IsLive(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), live.Contains(ArgAddress(info, 0)));
}

Napi::Value Addon::LiveCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(live.Count()));
}

Napi::Value Addon::WriteAllocation(const Napi::CallbackInfo& info) {
  uintptr_t p = ArgAddress(info, 0);
  size_t offset = ArgSize(info, 1);
  if (info.Length() < 3 || !info[2].IsBuffer())
    ThrowCode(info.Env(), "ERR_INVALID_ARG_TYPE", "bytes must be a Buffer");
  auto bytes = info[2].As<Napi::Buffer<uint8_t>>();
  RequireLive(this, info.Env(), p, "write");
  size_t usable = malloc_usable_size(reinterpret_cast<void*>(p));
  if (offset > usable || bytes.Length() > usable - offset)
    ThrowCode(info.Env(), "ERR_OUT_OF_RANGE",
              "write past the usable size of the allocation");
  // An empty Buffer may have no data pointer; memcpy's source must not be null.
  if (bytes.Length() > 0)
    std::memcpy(reinterpret_cast<void*>(p + offset), bytes.Data(), bytes.Length());
  return info.Env().Undefined();
}

Napi::Value Addon::FillAllocation(const Napi::CallbackInfo& info) {
  uintptr_t p = ArgAddress(info, 0);
  if (info.Length() < 2 || !info[1].IsNumber())
    ThrowCode(info.Env(), "ERR_INVALID_ARG_TYPE", "byte must be a number");
  uint32_t byte = info[1].As<Napi::Number>().Uint32Value();
  RequireLive(this, info.Env(), p, "fill");
  size_t usable = malloc_usable_size(reinterpret_cast<void*>(p));
  std::memset(reinterpret_cast<void*>(p), static_cast<int>(byte & 0xff), usable);
  return info.Env().Undefined();
}

}  // namespace heapscope
