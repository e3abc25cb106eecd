// An open-addressing set of live pointers. It is sized once up front and
// grows only by doubling, so recording an allocation almost never calls
// malloc itself and does not disturb the heap being observed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace heapscope {

// An address's bits mixed (murmur3's finalizer) once its `alignBits` low
// bits, which the addresses of a table share, are shifted out: they spread
// over a power-of-two table. The live set's and the copies' registry's.
inline size_t MixAddress(uintptr_t p, unsigned alignBits) {
  uint64_t x = p >> alignBits;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return static_cast<size_t>(x);
}

class LiveSet {
 public:
  LiveSet();
  bool Contains(uintptr_t p) const;
  // False when the set had to grow and there was no memory for it.
  bool Insert(uintptr_t p);
  bool Erase(uintptr_t p);
  size_t Count() const { return count_; }
  template <typename F>
  void ForEach(F f) const {
    for (uintptr_t p : slots_)
      if (p != 0) f(p);
  }

 private:
  size_t Slot(uintptr_t p) const;
  bool Grow();
  std::vector<uintptr_t> slots_;  // 0 marks an empty slot
  size_t count_ = 0;
};

}  // namespace heapscope
