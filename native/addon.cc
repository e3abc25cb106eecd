#include <cstdlib>
#include <limits>

#include "heapscope.h"

namespace heapscope {

// Built with the C API alone, so that building it cannot start a C++
// exception; nullptr when Node-API refused (a worker being torn down).
// code, errno and syscall are defined, not set: a setter or getter someone
// put on Object.prototype under those names would meet a set (and
// napi_create_error sets its code).
static napi_value CodedError(napi_env env, const char* code, const char* message,
                             int err, const char* syscall) noexcept {
  napi_value codeValue, messageValue, error, errValue, syscallValue;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &codeValue) != napi_ok ||
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &messageValue) != napi_ok ||
      napi_create_error(env, nullptr, messageValue, &error) != napi_ok)
    return nullptr;
  const auto field = static_cast<napi_property_attributes>(napi_writable | napi_enumerable | napi_configurable);
  napi_property_descriptor fields[3];
  size_t count = 0;
  fields[count++] = {"code", nullptr, nullptr, nullptr, nullptr, codeValue, field, nullptr};
  if (err != 0 && napi_create_int32(env, err, &errValue) == napi_ok)
    fields[count++] = {"errno", nullptr, nullptr, nullptr, nullptr, errValue, field, nullptr};
  if (syscall != nullptr && napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscallValue) == napi_ok)
    fields[count++] = {"syscall", nullptr, nullptr, nullptr, nullptr, syscallValue, field, nullptr};
  if (napi_define_properties(env, error, count, fields) != napi_ok) return nullptr;
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

// Addresses and sizes come as numbers (x86_64 user addresses are below
// 2^47, so a double holds them exactly and crossing Node-API costs no
// BigInt), or as bigints where a caller has one.
static uint64_t ArgU64(const Napi::CallbackInfo& info, size_t i) {
  if (i < info.Length()) {
    napi_env env = info.Env();
    napi_value value = info[i];
    double d;
    // One Node-API call on the common path: it fails (napi_number_expected) for anything but a number.
    if (napi_get_value_double(env, value, &d) == napi_ok) {
      if (!WholeNumber(d))
        ThrowCode(env, "ERR_OUT_OF_RANGE",
                  "argument " + std::to_string(i) + " must be a whole number from 0 to 2^53 - 1");
      return static_cast<uint64_t>(d);
    }
    napi_valuetype type;
    if (napi_typeof(env, value, &type) != napi_ok) throw Napi::Error::New(env);
    if (type == napi_bigint) {
      bool lossless = false;
      uint64_t v = 0;
      if (napi_get_value_bigint_uint64(env, value, &v, &lossless) != napi_ok) throw Napi::Error::New(env);
      if (!lossless)
        ThrowCode(env, "ERR_OUT_OF_RANGE",
                  "argument " + std::to_string(i) + " does not fit in 64 bits");
      return v;
    }
  }
  ThrowCode(info.Env(), "ERR_INVALID_ARG_TYPE",
            "argument " + std::to_string(i) + " must be a number or a bigint");
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

Napi::Value Exact(Napi::Env env, uint64_t value) {
  if (value > kMaxExact)
    ThrowCode(env, "ERR_INTERNAL", "a value above 2^53 - 1 cannot cross as a number");
  return Napi::Number::New(env, static_cast<double>(value));
}

Addon::Addon(Napi::Env env, Napi::Object exports) {
  const napi_property_descriptor methods[] = {
      {"malloc", nullptr, QuickMalloc, nullptr, nullptr, nullptr, napi_default, this},
      {"calloc", nullptr, Entry<&Addon::Calloc>, nullptr, nullptr, nullptr, napi_default, this},
      {"realloc", nullptr, Entry<&Addon::Realloc>, nullptr, nullptr, nullptr, napi_default, this},
      {"memalign", nullptr, Entry<&Addon::Memalign>, nullptr, nullptr, nullptr, napi_default, this},
      {"free", nullptr, QuickFree, nullptr, nullptr, nullptr, napi_default, this},
      {"usableSize", nullptr, QuickUsableSize, nullptr, nullptr, nullptr, napi_default, this},
      {"isLive", nullptr, Entry<&Addon::IsLive>, nullptr, nullptr, nullptr, napi_default, this},
      {"liveCount", nullptr, Entry<&Addon::LiveCount>, nullptr, nullptr, nullptr, napi_default, this},
      {"readMemory", nullptr, Entry<&Addon::ReadMemory>, nullptr, nullptr, nullptr, napi_default, this},
      {"writeAllocation", nullptr, Entry<&Addon::WriteAllocation>, nullptr, nullptr, nullptr, napi_default, this},
      {"fillAllocation", nullptr, Entry<&Addon::FillAllocation>, nullptr, nullptr, nullptr, napi_default, this},
      {"chunkHeader", nullptr, Entry<&Addon::ChunkHeader>, nullptr, nullptr, nullptr, napi_default, this},
      {"programBreak", nullptr, QuickProgramBreak, nullptr, nullptr, nullptr, napi_default, this},
      {"mallinfo", nullptr, Entry<&Addon::Mallinfo>, nullptr, nullptr, nullptr, napi_default, this},
      {"mallopt", nullptr, Entry<&Addon::Mallopt>, nullptr, nullptr, nullptr, napi_default, this},
      {"mallocTrim", nullptr, Entry<&Addon::MallocTrim>, nullptr, nullptr, nullptr, napi_default, this},
      {"mallocInfo", nullptr, Entry<&Addon::MallocInfo>, nullptr, nullptr, nullptr, napi_default, this},
      {"glibcVersion", nullptr, Entry<&Addon::GlibcVersion>, nullptr, nullptr, nullptr, napi_default, this},
      {"pageSize", nullptr, Entry<&Addon::PageSize>, nullptr, nullptr, nullptr, napi_default, this},
      {"fileStat", nullptr, Entry<&Addon::FileStat>, nullptr, nullptr, nullptr, napi_default, this},
      {"runPlan", nullptr, Entry<&Addon::RunPlan>, nullptr, nullptr, nullptr, napi_default, this},
      {"planId", nullptr, Entry<&Addon::PlanId>, nullptr, nullptr, nullptr, napi_default, this},
      {"addresses", nullptr, Entry<&Addon::Addresses>, nullptr, nullptr, nullptr, napi_default, this},
      {"loadedImages", nullptr, Entry<&Addon::LoadedImages>, nullptr, nullptr, nullptr, napi_default, this},
      {"readRemote", nullptr, Entry<&Addon::ReadRemote>, nullptr, nullptr, nullptr, napi_default, this},
      {"releaseCopies", nullptr, Entry<&Addon::ReleaseCopies>, nullptr, nullptr, nullptr, napi_default, this},
      {"freshBuffer", nullptr, Entry<&Addon::FreshBuffer>, nullptr, nullptr, nullptr, napi_default, this},
      {"externalMemory", nullptr, Entry<&Addon::ExternalMemory>, nullptr, nullptr, nullptr, napi_default, this},
      {"dropPages", nullptr, Entry<&Addon::DropPages>, nullptr, nullptr, nullptr, napi_default, this},
  };
  napi_status status = napi_define_properties(env, exports, sizeof(methods) / sizeof(methods[0]), methods);
  NAPI_THROW_IF_FAILED_VOID(env, status);
  DefineAddon(exports, {});
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
