// Fixed-capacity open-addressing tables used by the engine. Internal header.
#ifndef QUORUM_RISK_SRC_TABLES_H_
#define QUORUM_RISK_SRC_TABLES_H_

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>
#include <vector>

namespace quorum_risk {
namespace internal {

inline uint64_t Load8(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}
inline uint64_t Load4(const char* p) {
  uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}
// 64x64 -> 128-bit multiply, folded (the wyhash mixer).
inline uint64_t Mum(uint64_t a, uint64_t b) {
  const unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

// 64-bit hash for short strings (ids <= 64 bytes, names <= 31), wyhash-style: overlapping
// unaligned loads, no byte loops, at most one multiply per 16 bytes plus two. Never returns 0
// (0 marks an empty slot). Not keyed: inputs come from the trusted execution service, and a
// collision only makes IdMemory report a duplicate (a rejection, failing closed).
inline uint64_t HashBytes(std::string_view s) {
  constexpr uint64_t k0 = 0xA0761D6478BD642Full, k1 = 0xE7037ED1A0B428DBull, k2 = 0x8EBC6AF09C88C6E3ull;
  const char* p = s.data();
  const size_t n = s.size();
  uint64_t seed = 0x1FF5C2923A788D2Cull;
  uint64_t a, b;
  if (n <= 16) {
    if (n >= 8) {
      a = Load8(p);
      b = Load8(p + n - 8);
    } else if (n >= 4) {
      a = Load4(p);
      b = Load4(p + n - 4);
    } else if (n > 0) {
      a = (static_cast<uint64_t>(static_cast<uint8_t>(p[0])) << 16) |
          (static_cast<uint64_t>(static_cast<uint8_t>(p[n >> 1])) << 8) | static_cast<uint8_t>(p[n - 1]);
      b = 0;
    } else {
      a = b = 0;
    }
  } else {
    const char* q = p;
    size_t i = n;
    do {
      seed = Mum(Load8(q) ^ k1, Load8(q + 8) ^ seed);
      q += 16;
      i -= 16;
    } while (i > 16);
    a = Load8(p + n - 16);
    b = Load8(p + n - 8);
  }
  const uint64_t h = Mum(k0 ^ k1 ^ n, Mum(a ^ k1, b ^ seed ^ k2));
  return h == 0 ? 1 : h;
}

// a[0, n) == b[0, n) for n <= 64, without a library call.
__attribute__((always_inline)) inline bool EqualBytes(const char* a, const char* b, size_t n) {
  if (n >= 8) {
    uint64_t diff = (Load8(a) ^ Load8(b)) | (Load8(a + n - 8) ^ Load8(b + n - 8));
    for (size_t i = 8; i + 8 < n; i += 8) diff |= Load8(a + i) ^ Load8(b + i);
    return diff == 0;
  }
  if (n >= 4) return ((Load4(a) ^ Load4(b)) | (Load4(a + n - 4) ^ Load4(b + n - 4))) == 0;
  for (size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}
__attribute__((always_inline)) inline bool EqualViews(std::string_view a, std::string_view b) {
  return a.size() == b.size() && EqualBytes(a.data(), b.data(), a.size());
}

// dst[0, n) = src[0, n) for n <= 64, without a library call (dst must have n bytes; n >= 8
// uses overlapping 8-byte moves).
inline void CopyBytes(char* dst, const char* src, size_t n) {
  if (n >= 8) {
    const uint64_t last = Load8(src + n - 8);
    for (size_t i = 0; i + 8 < n; i += 8) {
      const uint64_t w = Load8(src + i);
      std::memcpy(dst + i, &w, 8);
    }
    std::memcpy(dst + n - 8, &last, 8);
    return;
  }
  for (size_t i = 0; i < n; ++i) dst[i] = src[i];
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

// Set of 64-bit id hashes that remembers at least the last `capacity` inserted hashes and at most
// the last 2 * `capacity` (older ones are forgotten a whole generation at a time). A hash
// collision between two different ids reads as a duplicate (the engine then rejects: failing
// closed).
//
// Three generations of open-addressing tables (linear probing, load <= 1/2), each holding up to
// `capacity` hashes: `current` takes inserts, `previous` is the last full generation, and the
// third is being wiped, a few slots per insert, so that no insert pays for a whole table. When
// `current` is full the roles rotate: the wiped table becomes `current`, `current` becomes
// `previous` and `previous` is wiped. Contains looks in `current` and `previous`. No per-insert
// eviction: an insert is one probe into `current` plus a few stores.
//
// The generations are interleaved: slot i of all three lies in one 32-byte block (one cache line),
// so a lookup in `current` and `previous` costs one cache miss, not two.
class IdMemory {
 public:
  explicit IdMemory(size_t capacity)
      : capacity_(capacity),
        slots_(SlotsFor(capacity)),
        mask_(slots_ - 1),
        wipe_step_(((slots_ + capacity - 1) / capacity + 3) / 4 * 4),
        table_(AllocZeroed(kBlock * slots_)),
        wipe_pos_(slots_) {}
  ~IdMemory() { std::free(table_); }
  IdMemory(const IdMemory&) = delete;
  IdMemory& operator=(const IdMemory&) = delete;

  // Cache hint for a coming Contains(h) / Insert(h).
  void Prefetch(uint64_t h) const { __builtin_prefetch(&table_[kBlock * (h & mask_)]); }
  bool Contains(uint64_t h) const {
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const uint64_t* block = table_ + kBlock * i;
      const uint64_t c = block[cur_], p = block[prev_];
      if (c == h || p == h) return true;
      if (c == 0) return p != 0 && InTable(prev_, (i + 1) & mask_, h);
      if (p == 0) return InTable(cur_, (i + 1) & mask_, h);
    }
  }
  // `h` must be absent.
  void Insert(uint64_t h) {
    if (count_ == capacity_) Rotate();
    size_t i = h & mask_;
    while (table_[kBlock * i + cur_] != 0) i = (i + 1) & mask_;
    table_[kBlock * i + cur_] = h;
    ++count_;
    if (wipe_pos_ < slots_) {
      uint64_t* t = table_ + kBlock * wipe_pos_ + wipe_;
      for (size_t k = 0; k < wipe_step_; ++k) t[kBlock * k] = 0;
      wipe_pos_ += wipe_step_;
    }
  }
  // Hashes currently remembered: between min(inserted, capacity) and 2 * capacity.
  size_t size() const { return count_ + (rotated_ ? capacity_ : 0); }
  size_t capacity() const { return capacity_; }

 private:
  static constexpr size_t kBlock = 4;  // words per slot: the three generations and one of padding

  // Whether generation `gen` holds `h`, probing on from slot `i`.
  bool InTable(size_t gen, size_t i, uint64_t h) const {
    for (;; i = (i + 1) & mask_) {
      const uint64_t v = table_[kBlock * i + gen];
      if (v == h) return true;
      if (v == 0) return false;
    }
  }
  void Rotate() {
    // capacity_ inserts * wipe_step_ >= slots_, so the wiped table is clean by now.
    const size_t wiped = wipe_;
    wipe_ = prev_;
    prev_ = cur_;
    cur_ = wiped;
    wipe_pos_ = 0;
    count_ = 0;
    rotated_ = true;
  }

  size_t capacity_;
  size_t slots_;  // per generation, a power of two >= 2 * capacity_
  size_t mask_;
  size_t wipe_step_;  // slots wiped per insert: ceil(slots_ / capacity_) rounded up to a multiple
                      // of 4 (4 whenever capacity_ >= 4); divides slots_, both powers of two
  // Zeroed, cache-line aligned; tables of 2 MiB and more are 2 MiB aligned and advised to use
  // transparent huge pages (random probes over MiBs otherwise miss the TLB: measured ~5 ns per
  // check on the benchmark host). The advice is only a hint; failure is harmless.
  static uint64_t* AllocZeroed(size_t n) {
    constexpr size_t kHuge = size_t{2} << 20;
    size_t bytes = n * sizeof(uint64_t);
    const bool huge = bytes >= kHuge;
    if (huge) bytes = (bytes + kHuge - 1) / kHuge * kHuge;
    void* p = nullptr;
    if (posix_memalign(&p, huge ? kHuge : 64, bytes) != 0) throw std::bad_alloc();
    if (huge) madvise(p, bytes, MADV_HUGEPAGE);
    std::memset(p, 0, bytes);
    return static_cast<uint64_t*>(p);
  }

  uint64_t* table_;  // slots_ blocks of kBlock words: word g of block i is slot i of generation g
  size_t cur_ = 0;   // generations, by their word in a block
  size_t prev_ = 1;
  size_t wipe_ = 2;
  size_t wipe_pos_;  // next slot of the wiped generation to clear (slots_: clean)
  size_t count_ = 0;  // hashes in the current generation
  bool rotated_ = false;
};

}  // namespace internal
}  // namespace quorum_risk

#endif  // QUORUM_RISK_SRC_TABLES_H_
