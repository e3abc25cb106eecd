#include "live-set.h"

#include <new>

namespace heapscope {

// Heap pointers share their low 4 bits.
static size_t Hash(uintptr_t p) { return MixAddress(p, 4); }

LiveSet::LiveSet() : slots_(4096, 0) {}

size_t LiveSet::Slot(uintptr_t p) const {
  size_t mask = slots_.size() - 1;
  size_t i = Hash(p) & mask;
  while (slots_[i] != 0 && slots_[i] != p) i = (i + 1) & mask;
  return i;
}

bool LiveSet::Contains(uintptr_t p) const {
  return p != 0 && slots_[Slot(p)] == p;
}

bool LiveSet::Insert(uintptr_t p) {
  if (p == 0) return true;
  if ((count_ + 1) * 2 > slots_.size() && !Grow()) return false;
  size_t i = Slot(p);
  if (slots_[i] == p) return true;
  slots_[i] = p;
  count_++;
  return true;
}

bool LiveSet::Erase(uintptr_t p) {
  if (p == 0) return false;
  size_t mask = slots_.size() - 1;
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
  std::vector<uintptr_t> old;
  try {
    old.assign(slots_.size() * 2, 0);
  } catch (const std::bad_alloc&) {
    return false;  // the set stays as it was
  }
  old.swap(slots_);
  count_ = 0;
  for (uintptr_t p : old)
    if (p != 0) Insert(p);  // cannot grow again: half the slots are free
  return true;
}

}  // namespace heapscope
