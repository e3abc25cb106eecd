// An open-addressing set of live pointers. It grows only by doubling, in
// memory it maps itself: from malloc, its slots (32 KiB at first) were a
// chunk glibc mapped on its own from 128 KiB on, and each one freed as the
// set grew raised glibc's mmap threshold to its size (20,000 live blocks
// left it at 260 KiB, 80,000 at 1 MiB), the parameter heapscope reports.
#pragma once

#include <cstddef>
#include <cstdint>

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
  LiveSet() = default;
  LiveSet(const LiveSet&) = delete;
  LiveSet& operator=(const LiveSet&) = delete;
  ~LiveSet();
  bool Contains(uintptr_t p) const;
  // False when the set had to grow and there was no memory for it.
  bool Insert(uintptr_t p);
  bool Erase(uintptr_t p);
  size_t Count() const { return count_; }
  template <typename F>
  void ForEach(F f) const {
    for (size_t i = 0; i < size_; i++)
      if (slots_[i] != 0) f(slots_[i]);
  }

 private:
  size_t Slot(uintptr_t p) const;
  bool Grow();
  uintptr_t* slots_ = nullptr;  // size_ slots, 0 marks an empty one; mapped when first needed
  size_t size_ = 0;
  size_t count_ = 0;
};

}  // namespace heapscope
