// Fixed-capacity open-addressing tables used by the engine. Internal header.
#ifndef QUORUM_RISK_SRC_TABLES_H_
#define QUORUM_RISK_SRC_TABLES_H_

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace quorum_risk {
namespace internal {

// Word-at-a-time 64-bit hash for short strings. Never returns 0 (0 marks an empty slot).
inline uint64_t HashBytes(std::string_view s) {
  const char* p = s.data();
  size_t n = s.size();
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (static_cast<uint64_t>(n) * 0xFF51AFD7ED558CCDull);
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * 0x94D049BB133111EBull;
    h ^= h >> 29;
  }
  h ^= h >> 32;
  h *= 0xD6E8FEB86659FD93ull;
  h ^= h >> 32;
  return h == 0 ? 1 : h;
}

inline size_t SlotsFor(size_t capacity) {
  size_t n = 16;
  while (n < capacity * 2) n <<= 1;
  return n;
}

// Index: hash -> int32 slot id, linear probing with backward-shift deletion. The caller stores
// the keys (in a pool) and supplies an equality predicate.
class Index {
 public:
  explicit Index(size_t capacity) : slots_(SlotsFor(capacity)), mask_(slots_.size() - 1) {}

  // Returns the stored id whose key matches, or -1.
  template <typename Eq>
  int32_t Find(uint64_t hash, Eq&& eq) const {
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.id < 0) return -1;
      if (s.hash == hash && eq(s.id)) return s.id;
    }
  }
  // Cache hint for a coming Find / Insert of `hash`.
  void Prefetch(uint64_t hash) const { __builtin_prefetch(&slots_[hash & mask_]); }
  // Caller guarantees the key is absent and the table is below capacity.
  void Insert(uint64_t hash, int32_t id) {
    size_t i = hash & mask_;
    while (slots_[i].id >= 0) i = (i + 1) & mask_;
    slots_[i] = Slot{hash, id};
  }
  // Removes the entry with this id (must be present).
  void Erase(uint64_t hash, int32_t id) {
    size_t i = hash & mask_;
    while (slots_[i].id != id) i = (i + 1) & mask_;
    // Backward-shift deletion keeps probe chains intact without tombstones.
    size_t j = i;
    for (;;) {
      j = (j + 1) & mask_;
      if (slots_[j].id < 0) break;
      size_t home = slots_[j].hash & mask_;
      // Move j into the hole at i if its home is cyclically outside (i, j].
      bool move = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
      if (move) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = Slot{};
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    int32_t id = -1;
  };
  std::vector<Slot> slots_;
  size_t mask_;
};

// Set of 64-bit id hashes with FIFO eviction beyond `capacity`. A hash collision between two
// different ids reads as a duplicate (the engine then rejects: failing closed).
class IdMemory {
 public:
  explicit IdMemory(size_t capacity) : slots_(SlotsFor(capacity), 0), mask_(slots_.size() - 1), ring_(capacity) {}

  // Cache hints for a coming Contains(h) / Insert(h), including the slot of the id Insert would
  // evict.
  void Prefetch(uint64_t h) const {
    __builtin_prefetch(&slots_[h & mask_]);
    if (size_ == ring_.size()) __builtin_prefetch(&slots_[ring_[head_] & mask_]);
  }
  bool Contains(uint64_t h) const {
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      if (slots_[i] == 0) return false;
      if (slots_[i] == h) return true;
    }
  }
  // `h` must be absent.
  void Insert(uint64_t h) {
    // ring_[head_] is the oldest id; at capacity the new id overwrites it.
    const bool full = size_ == ring_.size();
    if (full) {
      Erase(ring_[head_]);
    } else {
      ++size_;
    }
    size_t i = h & mask_;
    while (slots_[i] != 0) i = (i + 1) & mask_;
    slots_[i] = h;
    size_t tail = head_ + size_ - 1;  // slot for the newest id (no division on this path)
    if (tail >= ring_.size()) tail -= ring_.size();
    if (full) {
      ring_[head_] = h;
      if (++head_ == ring_.size()) head_ = 0;
    } else {
      ring_[tail] = h;
    }
  }
  size_t size() const { return size_; }

 private:
  void Erase(uint64_t h) {
    size_t i = h & mask_;
    while (slots_[i] != h) i = (i + 1) & mask_;
    size_t j = i;
    for (;;) {
      j = (j + 1) & mask_;
      if (slots_[j] == 0) break;
      size_t home = slots_[j] & mask_;
      bool move = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
      if (move) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = 0;
  }

  std::vector<uint64_t> slots_;
  size_t mask_;
  std::vector<uint64_t> ring_;
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace internal
}  // namespace quorum_risk

#endif  // QUORUM_RISK_SRC_TABLES_H_
