// The fixed-capacity hash tables against std containers.
#include "tables.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace quorum_risk::internal {
namespace {

TEST(IndexTest, RandomInsertEraseMatchesReference) {
  constexpr int kCap = 200;
  Index index(kCap);
  std::unordered_map<uint64_t, int32_t> ref;  // key -> id
  std::vector<uint64_t> key_of(kCap, 0);
  std::vector<int32_t> free_ids;
  for (int i = kCap - 1; i >= 0; --i) free_ids.push_back(i);
  std::mt19937_64 rng(7);
  for (int step = 0; step < 200000; ++step) {
    // Few distinct hash values in a small key space stress probe chains and wrap-around.
    uint64_t key = rng() % 1000;
    uint64_t h = (key * 0x9E3779B97F4A7C15ull) % 53 + 1;
    auto eq = [&](int32_t id) { return key_of[static_cast<size_t>(id)] == key; };
    int32_t found = index.Find(h, eq);
    auto it = ref.find(key);
    ASSERT_EQ(found, it == ref.end() ? -1 : it->second);
    if (it == ref.end() && !free_ids.empty()) {
      int32_t id = free_ids.back();
      free_ids.pop_back();
      key_of[static_cast<size_t>(id)] = key;
      index.Insert(h, id);
      ref[key] = id;
    } else if (it != ref.end()) {
      index.Erase(h, it->second);
      free_ids.push_back(it->second);
      ref.erase(it);
    }
  }
}

TEST(IdMemoryTest, ForgetsAGenerationAtATime) {
  IdMemory mem(3);
  for (uint64_t h : {1, 2, 3}) mem.Insert(h);
  EXPECT_EQ(mem.size(), 3u);
  mem.Insert(4);  // rotation: {1, 2, 3} becomes the previous generation, still remembered
  for (uint64_t h : {1, 2, 3, 4}) EXPECT_TRUE(mem.Contains(h)) << h;
  mem.Insert(5);
  mem.Insert(6);
  EXPECT_EQ(mem.size(), 6u);  // at most 2 * capacity
  for (uint64_t h : {1, 2, 3, 4, 5, 6}) EXPECT_TRUE(mem.Contains(h)) << h;
  mem.Insert(7);  // rotation: {1, 2, 3} forgotten
  for (uint64_t h : {1, 2, 3}) EXPECT_FALSE(mem.Contains(h)) << h;
  for (uint64_t h : {4, 5, 6, 7}) EXPECT_TRUE(mem.Contains(h)) << h;
  EXPECT_EQ(mem.size(), 4u);
  // A wiped generation is clean when it is reused: 1, 2, 3 stay forgotten.
  for (uint64_t h : {8, 9, 10}) mem.Insert(h);
  for (uint64_t h : {1, 2, 3, 4, 5, 6}) EXPECT_FALSE(mem.Contains(h)) << h;
  for (uint64_t h : {7, 8, 9, 10}) EXPECT_TRUE(mem.Contains(h)) << h;
}

TEST(IdMemoryTest, CapacityOne) {
  IdMemory mem(1);
  mem.Insert(5);
  EXPECT_TRUE(mem.Contains(5));
  mem.Insert(6);
  EXPECT_TRUE(mem.Contains(5) && mem.Contains(6));
  mem.Insert(7);
  EXPECT_FALSE(mem.Contains(5));
  EXPECT_TRUE(mem.Contains(6) && mem.Contains(7));
}

// Against an exact model of the documented window: the i-th insert (0-based) belongs to
// generation i / capacity; the generations of the newest insert and the one before it are
// remembered, everything older is forgotten. So the last `capacity` inserts are always
// remembered and nothing older than the last 2 * capacity is.
TEST(IdMemoryTest, RandomAgainstGenerationModel) {
  for (size_t cap : {size_t{7}, size_t{64}, size_t{100}}) {
    IdMemory mem(cap);
    std::unordered_map<uint64_t, size_t> inserted_at;  // hash -> latest insert index
    std::vector<uint64_t> order;
    std::mt19937_64 rng(11 + cap);
    for (int step = 0; step < 100000; ++step) {
      uint64_t h = (rng() % (cap * 7)) * 64 + 1;  // clustered low bits, frequent re-use
      const size_t n = order.size();
      bool expected = false;
      auto it = inserted_at.find(h);
      if (it != inserted_at.end() && n > 0) {
        const size_t newest_gen = (n - 1) / cap;
        expected = it->second / cap + 1 >= newest_gen;
        if (n - it->second <= cap) {
          ASSERT_TRUE(expected);  // the window guarantee itself
        }
        if (n - it->second > 2 * cap) {
          ASSERT_FALSE(expected);
        }
      }
      ASSERT_EQ(mem.Contains(h), expected) << "cap " << cap << " step " << step;
      if (!expected) {
        mem.Insert(h);
        inserted_at[h] = n;
        order.push_back(h);
        ASSERT_GE(mem.size(), std::min(order.size(), cap));
        ASSERT_LE(mem.size(), 2 * cap);
      }
    }
  }
}

TEST(IdMemoryTest, LargeTablesUseTheHugePagePathAndKeepTheWindow) {
  constexpr size_t kCap = size_t{1} << 17;  // 3 generations of 2^18 slots: 6 MiB
  IdMemory mem(kCap);
  constexpr uint64_t kTotal = 3 * kCap + 123;
  for (uint64_t i = 1; i <= kTotal; ++i) mem.Insert(HashBytes(std::to_string(i)));
  for (uint64_t i = kTotal - kCap + 1; i <= kTotal; i += 97) {
    ASSERT_TRUE(mem.Contains(HashBytes(std::to_string(i)))) << i;  // the last kCap: remembered
  }
  for (uint64_t i = 1; i <= kTotal - 2 * kCap; i += 97) {
    ASSERT_FALSE(mem.Contains(HashBytes(std::to_string(i)))) << i;  // beyond 2 * kCap: forgotten
  }
  EXPECT_GE(mem.size(), kCap);
  EXPECT_LE(mem.size(), 2 * kCap);
}

TEST(HashTest, EveryLengthAndByteMatters) {
  // Every length 0..64 (each load path: bytes, 4-byte, 8-byte, 16-byte chunks), every byte
  // position flipped: no collisions among these near-identical keys.
  std::unordered_map<uint64_t, std::string> seen;
  for (size_t n = 0; n <= 64; ++n) {
    std::string base(n, 'x');
    std::vector<std::string> keys{base};
    for (size_t i = 0; i < n; ++i) {
      std::string k = base;
      k[i] = 'y';
      keys.push_back(k);
      k[i] = '\0';
      keys.push_back(k);
    }
    for (const std::string& k : keys) {
      uint64_t h = HashBytes(k);
      ASSERT_NE(h, 0u);
      auto [it, inserted] = seen.emplace(h, k);
      ASSERT_TRUE(inserted || it->second == k) << "collision at length " << n;
    }
  }
}

TEST(BytesTest, EqualAndCopyMatchStd) {
  std::mt19937_64 rng(3);
  for (size_t n = 0; n <= 64; ++n) {
    std::string a(n, '\0');
    for (char& c : a) c = static_cast<char>(rng());
    std::string b = a;
    EXPECT_TRUE(EqualBytes(a.data(), b.data(), n)) << n;
    EXPECT_TRUE(EqualViews(a, b));
    for (size_t i = 0; i < n; ++i) {
      std::string d = a;
      d[i] = static_cast<char>(d[i] ^ 1);
      EXPECT_FALSE(EqualBytes(a.data(), d.data(), n)) << n << " " << i;
    }
    EXPECT_FALSE(EqualViews(a, a + "z"));
    char out[80];
    std::memset(out, '#', sizeof(out));
    CopyBytes(out, a.data(), n);
    EXPECT_EQ(std::string(out, n), a);
    EXPECT_EQ(out[n], '#');  // nothing written past n
  }
}

TEST(HashTest, NeverZeroAndLengthSensitive) {
  EXPECT_NE(HashBytes(""), 0u);
  EXPECT_NE(HashBytes("a"), HashBytes(std::string_view("a\0", 2)));
  EXPECT_NE(HashBytes("abcdefgh"), HashBytes("abcdefgi"));
}

}  // namespace
}  // namespace quorum_risk::internal
