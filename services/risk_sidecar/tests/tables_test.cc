// The fixed-capacity hash tables against std containers.
#include "tables.h"

#include <gtest/gtest.h>

#include <deque>
#include <random>
#include <unordered_map>
#include <unordered_set>

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

TEST(IdMemoryTest, ForgetsOldestBeyondCapacity) {
  IdMemory mem(3);
  for (uint64_t h : {1, 2, 3}) mem.Insert(h);
  EXPECT_TRUE(mem.Contains(1));
  mem.Insert(4);
  EXPECT_FALSE(mem.Contains(1));
  EXPECT_TRUE(mem.Contains(2) && mem.Contains(3) && mem.Contains(4));
  EXPECT_EQ(mem.size(), 3u);
}

TEST(IdMemoryTest, RandomAgainstReference) {
  constexpr size_t kCap = 100;
  IdMemory mem(kCap);
  std::deque<uint64_t> fifo;
  std::unordered_set<uint64_t> ref;
  std::mt19937_64 rng(11);
  for (int i = 0; i < 100000; ++i) {
    uint64_t h = (rng() % 5000) * 64 + 1;  // clustered low bits
    ASSERT_EQ(mem.Contains(h), ref.count(h) == 1);
    if (!ref.count(h)) {
      mem.Insert(h);
      fifo.push_back(h);
      ref.insert(h);
      if (fifo.size() > kCap) {
        ref.erase(fifo.front());
        fifo.pop_front();
      }
    }
  }
}

TEST(HashTest, NeverZeroAndLengthSensitive) {
  EXPECT_NE(HashBytes(""), 0u);
  EXPECT_NE(HashBytes("a"), HashBytes(std::string_view("a\0", 2)));
  EXPECT_NE(HashBytes("abcdefgh"), HashBytes("abcdefgi"));
}

}  // namespace
}  // namespace quorum_risk::internal
