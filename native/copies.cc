// The plan's read copies, handed to JavaScript as Buffers over memory from
// mmap. Node runs a Buffer's finalizer only from its event loop, so a loop
// that copies a big heap again and again without yielding held every copy
// (ten walks of a million chunks: over a GiB mapped). A caller done with a
// copy gives it back now: its ArrayBuffer is detached first, so that no view
// of it can reach the memory, then the memory is unmapped. Each copy is
// registered here by its address with an id; the finalizer unmaps only a
// copy still registered under its own id, since the address may belong to
// a newer copy by the time it runs.
#include <sys/mman.h>

#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "heapscope.h"

namespace heapscope {

namespace {

struct Copy {
  size_t span;
  uint64_t id;
};

// Shared by every instance (worker threads too): addresses are the process's.
std::mutex copiesMutex;
std::unordered_map<uintptr_t, Copy>& Copies() {
  static auto* copies = new std::unordered_map<uintptr_t, Copy>();
  return *copies;
}
uint64_t nextId = 1;

}  // namespace

uint64_t RegisterCopy(uint8_t* data, size_t span) {
  std::lock_guard<std::mutex> lock(copiesMutex);
  const uint64_t id = nextId++;
  Copies()[reinterpret_cast<uintptr_t>(data)] = {span, id};
  return id;
}

void UnregisterCopy(uint8_t* data, uint64_t id) {
  std::lock_guard<std::mutex> lock(copiesMutex);
  auto& copies = Copies();
  auto it = copies.find(reinterpret_cast<uintptr_t>(data));
  if (it != copies.end() && it->second.id == id) copies.erase(it);
}

void FinalizeCopy(uint8_t* data, size_t span, uint64_t id) {
  std::lock_guard<std::mutex> lock(copiesMutex);
  auto& copies = Copies();
  auto it = copies.find(reinterpret_cast<uintptr_t>(data));
  if (it == copies.end() || it->second.id != id) return;
  copies.erase(it);
  munmap(data, span);
}

// releaseCopies(buffers): gives back the memory of each Buffer that is a
// whole copy a plan handed over and not yet given back; anything else is
// passed over. Returns how many were given back.
Napi::Value Addon::ReleaseCopies(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) ThrowCode(env, "ERR_INVALID_ARG_TYPE", "buffers must be an array");
  Napi::Array buffers = info[0].As<Napi::Array>();
  uint32_t released = 0;
  for (uint32_t i = 0; i < buffers.Length(); i++) {
    Napi::Value value = buffers.Get(i);
    if (!value.IsBuffer()) continue;
    auto buffer = value.As<Napi::Buffer<uint8_t>>();
    Napi::ArrayBuffer whole = buffer.ArrayBuffer();
    // A view of part of a copy would leave the rest of it reachable.
    if (buffer.ByteOffset() != 0 || buffer.Length() != whole.ByteLength() || buffer.Length() == 0) continue;
    const uintptr_t data = reinterpret_cast<uintptr_t>(buffer.Data());
    Copy copy;
    {
      std::lock_guard<std::mutex> lock(copiesMutex);
      auto it = Copies().find(data);
      if (it == Copies().end()) continue;
      copy = it->second;
      Copies().erase(it);
    }
    // Detached, every view of it reads as empty: only then is the memory
    // unmapped. (Not under the lock: detaching may finalize.)
    if (napi_detach_arraybuffer(env, whole) != napi_ok) {
      std::lock_guard<std::mutex> lock(copiesMutex);
      Copies()[data] = copy;
      continue;
    }
    munmap(reinterpret_cast<void*>(data), copy.span);
    released++;
  }
  return Napi::Number::New(env, released);
}

}  // namespace heapscope
