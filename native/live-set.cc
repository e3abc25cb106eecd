#include "live-set.h"

#include <sys/mman.h>

#include "heapscope.h"

namespace heapscope {

// Heap pointers share their low 4 bits.
static size_t Hash(uintptr_t p) { return MixAddress(p, 4); }

// The slots of an empty set's first growth: 32 KiB.
static constexpr size_t kFirstSlots = 4096;

LiveSet::~LiveSet() {
  if (slots_ != nullptr) munmap(slots_, size_ * sizeof(uintptr_t));
}

size_t LiveSet::Slot(uintptr_t p) const {
  size_t mask = size_ - 1;
  size_t i = Hash(p) & mask;
  while (slots_[i] != 0 && slots_[i] != p) i = (i + 1) & mask;
  return i;
}

bool LiveSet::Contains(uintptr_t p) const {
  return p != 0 && size_ != 0 && slots_[Slot(p)] == p;
}

bool LiveSet::Insert(uintptr_t p) {
  if (p == 0) return true;
  if ((count_ + 1) * 2 > size_ && !Grow()) return false;
  size_t i = Slot(p);
  if (slots_[i] == p) return true;
  slots_[i] = p;
  count_++;
  return true;
}

bool LiveSet::Erase(uintptr_t p) {
  if (p == 0 || size_ == 0) return false;
  size_t mask = size_ - 1;
  size_t i = Slot(p);
  if (slots_[i] != p) return false;
  slots_[i] = 0;
  count_--;
  // Backward-shift deletion keeps every probe chain unbroken.
  size_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    if (slots_[j] == 0) break;
    size_t home = Hash(slots_[j]) & mask;
    bool between = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
    if (between) continue;
    slots_[i] = slots_[j];
    slots_[j] = 0;
    i = j;
  }
  return true;
}

bool LiveSet::Grow() {
  const size_t size = size_ == 0 ? kFirstSlots : size_ * 2;
  void* mapped = MapOwn(size * sizeof(uintptr_t));
  if (mapped == MAP_FAILED) return false;  // the set stays as it was
  uintptr_t* old = slots_;
  const size_t oldSize = size_;
  slots_ = static_cast<uintptr_t*>(mapped);  // zero, as fresh anonymous memory is
  size_ = size;
  count_ = 0;
  for (size_t i = 0; i < oldSize; i++)
    if (old[i] != 0) Insert(old[i]);  // cannot grow again: half the slots are free
  if (old != nullptr) munmap(old, oldSize * sizeof(uintptr_t));
  return true;
}

}  // namespace heapscope
