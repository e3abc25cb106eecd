#include "live-set.h"

namespace heapscope {

static size_t Hash(uintptr_t p) {
  // Heap pointers share their low 4 bits; mix so they spread over slots.
  uint64_t x = p >> 4;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return static_cast<size_t>(x);
}

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

void LiveSet::Insert(uintptr_t p) {
  if (p == 0) return;
  if ((count_ + 1) * 2 > slots_.size()) Grow();
  size_t i = Slot(p);
  if (slots_[i] == p) return;
  slots_[i] = p;
  count_++;
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

void LiveSet::Grow() {
  std::vector<uintptr_t> old;
  old.swap(slots_);
  slots_.assign(old.size() * 2, 0);
  count_ = 0;
  for (uintptr_t p : old)
    if (p != 0) Insert(p);
}

std::vector<uintptr_t> LiveSet::Items() const {
  std::vector<uintptr_t> out;
  out.reserve(count_);
  for (uintptr_t p : slots_)
    if (p != 0) out.push_back(p);
  return out;
}

}  // namespace heapscope
