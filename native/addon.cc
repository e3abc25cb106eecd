#include <cstdlib>
#include <limits>

#include "heapscope.h"

namespace heapscope {

void ThrowCode(Napi::Env env, const char* code, const std::string& message,
               int err, const char* syscall) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  if (err != 0) error.Set("errno", Napi::Number::New(env, err));
  if (syscall != nullptr) error.Set("syscall", Napi::String::New(env, syscall));
  throw error;
}

static uint64_t ArgU64(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsBigInt())
    ThrowCode(info.Env(), "ERR_INVALID_ARG_TYPE",
              "argument " + std::to_string(i) + " must be a bigint");
  bool lossless = false;
  uint64_t v = info[i].As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless)
    ThrowCode(info.Env(), "ERR_OUT_OF_RANGE",
              "argument " + std::to_string(i) + " does not fit in 64 bits");
  return v;
}

uintptr_t ArgAddress(const Napi::CallbackInfo& info, size_t i) {
  return static_cast<uintptr_t>(ArgU64(info, i));
}

size_t ArgSize(const Napi::CallbackInfo& info, size_t i) {
  uint64_t v = ArgU64(info, i);
  // TypeScript checks sizes first; this keeps the raw binding safe too.
  if (v > static_cast<uint64_t>(std::numeric_limits<ptrdiff_t>::max()))
    ThrowCode(info.Env(), "ERR_OUT_OF_RANGE", "size is above PTRDIFF_MAX");
  return static_cast<size_t>(v);
}

Napi::BigInt Address(Napi::Env env, uintptr_t value) {
  return Napi::BigInt::New(env, static_cast<uint64_t>(value));
}

Napi::BigInt Size(Napi::Env env, size_t value) {
  return Napi::BigInt::New(env, static_cast<uint64_t>(value));
}

Addon::Addon(Napi::Env env, Napi::Object exports) {
  DefineAddon(exports,
              {
                  InstanceMethod("malloc", &Addon::Malloc),
                  InstanceMethod("calloc", &Addon::Calloc),
                  InstanceMethod("realloc", &Addon::Realloc),
                  InstanceMethod("memalign", &Addon::Memalign),
                  InstanceMethod("free", &Addon::Free),
                  InstanceMethod("usableSize", &Addon::UsableSize),
                  InstanceMethod("isLive", &Addon::IsLive),
                  InstanceMethod("liveCount", &Addon::LiveCount),
                  InstanceMethod("readMemory", &Addon::ReadMemory),
                  InstanceMethod("writeAllocation", &Addon::WriteAllocation),
                  InstanceMethod("fillAllocation", &Addon::FillAllocation),
                  InstanceMethod("chunkHeader", &Addon::ChunkHeader),
                  InstanceMethod("programBreak", &Addon::ProgramBreak),
                  InstanceMethod("mallinfo", &Addon::Mallinfo),
                  InstanceMethod("mallopt", &Addon::Mallopt),
                  InstanceMethod("mallocTrim", &Addon::MallocTrim),
                  InstanceMethod("mallocInfo", &Addon::MallocInfo),
                  InstanceMethod("glibcVersion", &Addon::GlibcVersion),
                  InstanceMethod("pageSize", &Addon::PageSize),
                  InstanceMethod("runPlan", &Addon::RunPlan),
                  InstanceMethod("addresses", &Addon::Addresses),
              });
}

// A worker that ends with allocations still live would leak them; they
// belong to this instance alone, so release them with it.
Addon::~Addon() {
  for (uintptr_t p : live.Items()) std::free(reinterpret_cast<void*>(p));
}

}  // namespace heapscope

using heapscope::Addon;
NODE_API_ADDON(Addon)
