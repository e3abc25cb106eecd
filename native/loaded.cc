// The objects the dynamic loader has loaded into this process, each as where
// its load segments lie: read from the loader's own list under its lock, so
// that no object is unloaded while its program headers are read.
#include <link.h>

#include "heapscope.h"

namespace heapscope {

namespace {

struct Fill {
  double* out;
  size_t capacity;  // triples
  size_t found;
};

int Each(struct dl_phdr_info* info, size_t, void* data) noexcept {
  auto* fill = static_cast<Fill*>(data);
  uint64_t low = 0, high = 0;
  bool any = false;
  for (size_t k = 0; k < info->dlpi_phnum; k++) {
    const ElfW(Phdr)& p = info->dlpi_phdr[k];
    if (p.p_type != PT_LOAD) continue;
    // PT_LOAD entries are sorted by address: the first is the lowest.
    if (!any) low = p.p_vaddr;
    any = true;
    if (p.p_memsz > kMaxExact || p.p_vaddr > kMaxExact - p.p_memsz) return 0;
    if (p.p_vaddr + p.p_memsz > high) high = p.p_vaddr + p.p_memsz;
  }
  // An object whose figures a number cannot hold is left to the header read.
  if (!any || info->dlpi_addr > kMaxExact - high) return 0;
  if (fill->found < fill->capacity) {
    double* t = fill->out + 3 * fill->found;
    t[0] = static_cast<double>(info->dlpi_addr);
    t[1] = static_cast<double>(low);
    t[2] = static_cast<double>(high);
  }
  fill->found++;
  return 0;
}

}  // namespace

// loadedImages(into: Float64Array): per object, its load bias, its first
// PT_LOAD's p_vaddr and the highest p_vaddr + p_memsz, as long as `into`
// holds them; returns how many objects there are (more than it held: call
// again with room for them).
Napi::Value Addon::LoadedImages(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    ThrowCode(info.Env(), "ERR_INVALID_ARG_TYPE", "into must be a Float64Array");
  auto into = info[0].As<Napi::Float64Array>();
  Fill fill{into.Data(), into.ElementLength() / 3, 0};
  dl_iterate_phdr(Each, &fill);
  return Napi::Number::New(info.Env(), static_cast<double>(fill.found));
}

}  // namespace heapscope
