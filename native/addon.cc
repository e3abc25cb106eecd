#include <cstdlib>
#include <limits>

#include "heapscope.h"

namespace heapscope {

// Built with the C API alone, so that building it cannot start a C++
// exception; nullptr when Node-API refused (a worker being torn down).
static napi_value CodedError(napi_env env, const char* code, const char* message,
                             int err, const char* syscall) noexcept {
  napi_value codeValue, messageValue, error, value;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &codeValue) != napi_ok ||
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &messageValue) != napi_ok ||
      napi_create_error(env, codeValue, messageValue, &error) != napi_ok)
    return nullptr;
  if (err != 0 && napi_create_int32(env, err, &value) == napi_ok)
    napi_set_named_property(env, error, "errno", value);
  if (syscall != nullptr && napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &value) == napi_ok)
    napi_set_named_property(env, error, "syscall", value);
  return error;
}

void ThrowCode(Napi::Env env, const char* code, const std::string& message,
               int err, const char* syscall) {
  napi_value error = CodedError(env, code, message.c_str(), err, syscall);
  if (error == nullptr) throw Napi::Error::New(env);
  throw Napi::Error(env, error);
}

void ThrowNow(Napi::Env env, const char* code, const char* message, int err) noexcept {
  napi_value error = CodedError(env, code, message, err, nullptr);
  if (error != nullptr) napi_throw(env, error);
}

void Rethrow(const Napi::Error& error) noexcept {
  try {
    error.ThrowAsJavaScriptException();
  } catch (...) {
    // Nothing could be thrown: the environment is being torn down, or an
    // exception is already pending, which JavaScript then sees instead.
  }
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
                  InstanceMethod("malloc", &Addon::Guarded<&Addon::Malloc>),
                  InstanceMethod("calloc", &Addon::Guarded<&Addon::Calloc>),
                  InstanceMethod("realloc", &Addon::Guarded<&Addon::Realloc>),
                  InstanceMethod("memalign", &Addon::Guarded<&Addon::Memalign>),
                  InstanceMethod("free", &Addon::Guarded<&Addon::Free>),
                  InstanceMethod("usableSize", &Addon::Guarded<&Addon::UsableSize>),
                  InstanceMethod("isLive", &Addon::Guarded<&Addon::IsLive>),
                  InstanceMethod("liveCount", &Addon::Guarded<&Addon::LiveCount>),
                  InstanceMethod("readMemory", &Addon::Guarded<&Addon::ReadMemory>),
                  InstanceMethod("writeAllocation", &Addon::Guarded<&Addon::WriteAllocation>),
                  InstanceMethod("fillAllocation", &Addon::Guarded<&Addon::FillAllocation>),
                  InstanceMethod("chunkHeader", &Addon::Guarded<&Addon::ChunkHeader>),
                  InstanceMethod("programBreak", &Addon::Guarded<&Addon::ProgramBreak>),
                  InstanceMethod("mallinfo", &Addon::Guarded<&Addon::Mallinfo>),
                  InstanceMethod("mallopt", &Addon::Guarded<&Addon::Mallopt>),
                  InstanceMethod("mallocTrim", &Addon::Guarded<&Addon::MallocTrim>),
                  InstanceMethod("mallocInfo", &Addon::Guarded<&Addon::MallocInfo>),
                  InstanceMethod("glibcVersion", &Addon::Guarded<&Addon::GlibcVersion>),
                  InstanceMethod("pageSize", &Addon::Guarded<&Addon::PageSize>),
                  InstanceMethod("runPlan", &Addon::Guarded<&Addon::RunPlan>),
                  InstanceMethod("addresses", &Addon::Guarded<&Addon::Addresses>),
                  InstanceMethod("readRemote", &Addon::Guarded<&Addon::ReadRemote>),
              });
}

// A worker that ends with allocations still live would leak them; they
// belong to this instance alone, so release them with it. (Destructors may
// not throw: the set is walked in place, nothing allocated.)
Addon::~Addon() {
  live.ForEach([](uintptr_t p) { std::free(reinterpret_cast<void*>(p)); });
}

}  // namespace heapscope

// The module's init is an entry point too: loading the addon in a worker
// that is being torn down, or without memory for its live set, is an error.
static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  Napi::Value made = heapscope::Guard(env, [&] { return heapscope::Addon::Init(env, exports); });
  return made.IsEmpty() ? Napi::Object() : made.As<Napi::Object>();
}

NODE_API_MODULE(NODE_GYP_MODULE_NAME, InitAddon)
