// Frame parser and request handler: round trips, truncated, oversized and random frames.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "quorum_risk/handler.h"
#include "quorum_risk/protocol.h"
#include "test_util.h"

namespace quorum_risk::testing {
namespace {

namespace p = protocol;

const uint8_t* U8(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

OrderRequest SampleOrder() {
  OrderRequest o;
  o.client_order_id = "ord-1";
  o.symbol = "AAPL";
  o.asset_class = "equity";
  o.sector = "technology";
  o.side = 1;
  o.quantity = 10;
  o.price = 100;
  return o;
}

// A decoded reply frame.
struct Reply {
  uint8_t type = 0;
  uint32_t id = 0;
  std::string payload;
  uint16_t reason() const {
    return static_cast<uint16_t>(static_cast<uint8_t>(payload[0]) | (static_cast<uint8_t>(payload[1]) << 8));
  }
};

std::vector<Reply> SplitReplies(const std::string& out) {
  std::vector<Reply> r;
  size_t off = 0;
  while (off < out.size()) {
    p::Frame f = p::ParseFrame(U8(out) + off, out.size() - off);
    EXPECT_EQ(f.status, p::FrameStatus::kOk);
    if (f.status != p::FrameStatus::kOk) break;
    r.push_back(Reply{f.header.type, f.header.request_id,
                      std::string(reinterpret_cast<const char*>(f.payload), f.header.length)});
    off += f.frame_size;
  }
  return r;
}

TEST(FrameTest, CheckOrderRoundTrip) {
  std::string buf;
  p::EncodeCheckOrder(&buf, 42, SampleOrder());
  p::Frame f = p::ParseFrame(U8(buf), buf.size());
  ASSERT_EQ(f.status, p::FrameStatus::kOk);
  EXPECT_EQ(f.header.type, 1);
  EXPECT_EQ(f.header.request_id, 42u);
  EXPECT_EQ(f.frame_size, buf.size());
  OrderRequest o;
  ASSERT_EQ(p::DecodeCheckOrder(f.payload, f.header.length, &o), Reason::kOk);
  EXPECT_EQ(o.client_order_id, "ord-1");
  EXPECT_EQ(o.symbol, "AAPL");
  EXPECT_EQ(o.asset_class, "equity");
  EXPECT_EQ(o.sector, "technology");
  EXPECT_EQ(o.side, 1);
  EXPECT_EQ(o.quantity, 10);
  EXPECT_EQ(o.price, 100);
}

TEST(FrameTest, RestoreMarkRoundTrip) {
  std::string buf;
  p::EncodeRestoreMark(&buf, 7, "AAPL", 101.5, 3'000'000'000);
  p::Frame f = p::ParseFrame(U8(buf), buf.size());
  ASSERT_EQ(f.status, p::FrameStatus::kOk);
  EXPECT_EQ(f.header.type, 9);
  EXPECT_EQ(f.header.length, 21u);  // price f64, age_ns i64, symbol (u8 length + 4 bytes)
  std::string_view symbol;
  double price = 0;
  int64_t age_ns = 0;
  ASSERT_EQ(p::DecodeRestoreMark(f.payload, f.header.length, &symbol, &price, &age_ns), Reason::kOk);
  EXPECT_EQ(symbol, "AAPL");
  EXPECT_EQ(price, 101.5);
  EXPECT_EQ(age_ns, 3'000'000'000);
  EXPECT_EQ(p::DecodeRestoreMark(f.payload, f.header.length - 1, &symbol, &price, &age_ns), Reason::kMalformed);
}

TEST(FrameTest, HeaderIsLittleEndianAsDocumented) {
  std::string buf;
  p::EncodeEmpty(&buf, p::MsgType::kHalt, 0x01020304);
  const unsigned char expected[16] = {'Q', 'R', 'S', 'K', 1, 5, 0, 0, 4, 3, 2, 1, 0, 0, 0, 0};
  ASSERT_EQ(buf.size(), 16u);
  EXPECT_EQ(std::memcmp(buf.data(), expected, 16), 0);
}

TEST(FrameTest, EveryTruncationNeedsMore) {
  std::string buf;
  p::EncodeCheckOrder(&buf, 1, SampleOrder());
  for (size_t n = 0; n < buf.size(); ++n) {
    EXPECT_EQ(p::ParseFrame(U8(buf), n).status, p::FrameStatus::kNeedMore) << n;
  }
}

TEST(FrameTest, TruncatedPayloadsAreMalformed) {
  std::string buf;
  p::EncodeCheckOrder(&buf, 1, SampleOrder());
  const uint8_t* payload = U8(buf) + p::kHeaderSize;
  size_t len = buf.size() - p::kHeaderSize;
  OrderRequest o;
  for (size_t n = 0; n < len; ++n) EXPECT_EQ(p::DecodeCheckOrder(payload, n, &o), Reason::kMalformed) << n;
  std::string longer(reinterpret_cast<const char*>(payload), len);
  longer.push_back('x');  // trailing byte
  EXPECT_EQ(p::DecodeCheckOrder(U8(longer), longer.size(), &o), Reason::kMalformed);
}

TEST(FrameTest, BadStringsAreMalformed) {
  for (const char* bad_symbol : {"", "A A", "\x7f", "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"}) {
    OrderRequest o = SampleOrder();
    o.symbol = bad_symbol;
    std::string buf;
    p::EncodeCheckOrder(&buf, 1, o);
    OrderRequest out;
    EXPECT_EQ(p::DecodeCheckOrder(U8(buf) + p::kHeaderSize, buf.size() - p::kHeaderSize, &out), Reason::kMalformed)
        << bad_symbol;
  }
}

TEST(FrameTest, OversizedBadMagicBadVersionFlags) {
  std::string buf;
  p::AppendHeader(&buf, 1, 7, static_cast<uint32_t>(p::kMaxPayload + 1));
  EXPECT_EQ(p::ParseFrame(U8(buf), buf.size()).status, p::FrameStatus::kTooLarge);
  buf.clear();
  p::AppendHeader(&buf, 1, 7, static_cast<uint32_t>(p::kMaxPayload));
  EXPECT_EQ(p::ParseFrame(U8(buf), buf.size()).status, p::FrameStatus::kNeedMore);  // at the limit
  buf = "QRSX";
  EXPECT_EQ(p::ParseFrame(U8(buf), buf.size()).status, p::FrameStatus::kBadMagic);
  buf = "X";
  EXPECT_EQ(p::ParseFrame(U8(buf), 1).status, p::FrameStatus::kBadMagic);  // detected early
  buf.clear();
  p::EncodeEmpty(&buf, p::MsgType::kHalt, 1);
  buf[4] = 2;
  EXPECT_EQ(p::ParseFrame(U8(buf), buf.size()).status, p::FrameStatus::kUnsupportedVersion);
  buf[4] = 1;
  buf[6] = 1;
  EXPECT_EQ(p::ParseFrame(U8(buf), buf.size()).status, p::FrameStatus::kBadFlags);
}

class HandlerTest : public EngineFixture {
 protected:
  void SetUp() override {
    Config c = LooseConfig();
    c.limits.max_order_quantity = 100;
    Make(c);
    handler_ = std::make_unique<RequestHandler>(engine_.get(), &metrics_);
  }
  std::vector<Reply> Send(const std::string& in, bool* close = nullptr) {
    std::string out;
    bool cl = false;
    size_t used = handler_->Consume(U8(in), in.size(), &out, &cl);
    EXPECT_EQ(used, in.size());
    if (close) *close = cl;
    return SplitReplies(out);
  }
  Metrics metrics_;
  std::unique_ptr<RequestHandler> handler_;
};

TEST_F(HandlerTest, PipelinedRequestsGetRepliesInOrder) {
  std::string in;
  p::EncodeReportMark(&in, 1, "AAPL", 100);
  p::EncodeCheckOrder(&in, 2, SampleOrder());
  OrderRequest big = SampleOrder();
  big.client_order_id = "ord-2";
  big.quantity = 101;
  p::EncodeCheckOrder(&in, 3, big);
  FillReport f{"ord-1", "AAPL", 1, 4, 100};
  p::EncodeReportFill(&in, 4, f);
  p::EncodeEmpty(&in, p::MsgType::kHalt, 5);
  p::EncodeGetState(&in, 6, "AAPL");
  p::EncodeEmpty(&in, p::MsgType::kReload, 7);
  auto r = Send(in);
  ASSERT_EQ(r.size(), 7u);
  for (uint32_t i = 0; i < 7; ++i) EXPECT_EQ(r[i].id, i + 1);
  EXPECT_EQ(r[0].type, 0x83);
  EXPECT_EQ(r[1].type, 0x81);
  EXPECT_EQ(r[1].payload[0], 0);  // approve
  EXPECT_EQ(r[2].payload[0], 1);  // reject
  EXPECT_EQ(r[2].payload[2], static_cast<char>(Reason::kMaxOrderQuantity));
  EXPECT_EQ(r[3].type, 0x82);
  EXPECT_EQ(r[3].reason(), 0);
  EXPECT_EQ(r[4].payload[2], static_cast<char>(Mode::kHalted));
  EXPECT_EQ(r[5].type, 0x87);
  EXPECT_EQ(r[5].payload.size(), p::kStatePayload);
  double position;
  std::memcpy(&position, r[5].payload.data() + 72, 8);
  EXPECT_EQ(position, 4);
  EXPECT_EQ(r[6].type, 0x88);
  EXPECT_EQ(r[6].reason(), static_cast<uint16_t>(Reason::kConfigError));  // no reload function
  EXPECT_EQ(metrics_.verdicts(true, Reason::kOk), 1u);
  EXPECT_EQ(metrics_.verdicts(false, Reason::kMaxOrderQuantity), 1u);
  EXPECT_EQ(metrics_.latency_count(), 2u);
}

TEST_F(HandlerTest, RestoreMarkIsAcknowledged) {
  std::string in;
  p::EncodeRestoreMark(&in, 1, "AAPL", 100, 1'000);
  p::EncodeRestoreMark(&in, 2, "AAPL", 100, -5);  // a negative age: nothing applied
  p::AppendHeader(&in, 0x09, 3, 2);
  in += "xy";
  auto r = Send(in);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].type, 0x89);
  EXPECT_EQ(r[0].reason(), 0);
  EXPECT_EQ(r[1].type, 0x89);
  EXPECT_EQ(r[1].reason(), static_cast<uint16_t>(Reason::kMalformed));
  EXPECT_EQ(r[2].type, 0xFF);
  EXPECT_EQ(r[2].reason(), static_cast<uint16_t>(Reason::kMalformed));
}

TEST_F(HandlerTest, MalformedPayloadGetsErrorAndConnectionStays) {
  std::string in;
  p::AppendHeader(&in, 1, 9, 3);
  in += "abc";
  p::EncodeEmpty(&in, p::MsgType::kHalt, 10);
  p::AppendHeader(&in, 0x42, 11, 0);  // unknown type
  p::AppendHeader(&in, 0x81, 12, 0);  // a reply type sent as a request
  bool close = true;
  auto r = Send(in, &close);
  EXPECT_FALSE(close);
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].type, 0xFF);
  EXPECT_EQ(r[0].id, 9u);
  EXPECT_EQ(r[0].reason(), static_cast<uint16_t>(Reason::kMalformed));
  EXPECT_EQ(r[1].type, 0x85);
  EXPECT_EQ(r[2].reason(), static_cast<uint16_t>(Reason::kUnknownMessageType));
  EXPECT_EQ(r[3].reason(), static_cast<uint16_t>(Reason::kUnknownMessageType));
}

TEST_F(HandlerTest, FramingErrorsReplyAndClose) {
  struct Case {
    std::string bytes;
    Reason reason;
  };
  std::string oversize, version;
  p::AppendHeader(&oversize, 1, 3, 1 << 20);
  p::EncodeEmpty(&version, p::MsgType::kHalt, 4);
  version[4] = 9;
  for (const Case& c : {Case{"GET /metrics HTTP/1.0\r\n\r\n", Reason::kBadMagic}, Case{oversize, Reason::kFrameTooLarge},
                        Case{version, Reason::kUnsupportedVersion}}) {
    bool close = false;
    auto r = Send(c.bytes, &close);
    EXPECT_TRUE(close);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].type, 0xFF);
    EXPECT_EQ(r[0].reason(), static_cast<uint16_t>(c.reason));
  }
}

TEST_F(HandlerTest, PartialFramesAreKeptUntilComplete) {
  std::string in;
  p::EncodeCheckOrder(&in, 1, SampleOrder());
  std::string out;
  bool close = false;
  EXPECT_EQ(handler_->Consume(U8(in), in.size() - 1, &out, &close), 0u);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(handler_->Consume(U8(in), in.size(), &out, &close), in.size());
  EXPECT_EQ(SplitReplies(out).size(), 1u);
}

TEST_F(HandlerTest, RandomFramesNeverCrashAndAlwaysAnswer) {
  std::mt19937 rng(1234);
  std::string valid;
  p::EncodeCheckOrder(&valid, 1, SampleOrder());
  for (int i = 0; i < 20000; ++i) {
    std::string in;
    if (i % 2 == 0) {
      // Valid header, random type and payload.
      std::string payload(rng() % 200, '\0');
      for (char& ch : payload) ch = static_cast<char>(rng());
      p::AppendHeader(&in, static_cast<uint8_t>(rng() % 10), 5, static_cast<uint32_t>(payload.size()));
      in += payload;
    } else {
      // A valid frame with a few random bytes flipped.
      in = valid;
      for (int k = 0; k < 3; ++k) in[rng() % in.size()] = static_cast<char>(rng());
    }
    std::string out;
    bool close = false;
    size_t used = handler_->Consume(U8(in), in.size(), &out, &close);
    ASSERT_LE(used, in.size());
    if (used == in.size()) {
      EXPECT_FALSE(out.empty()) << "every complete frame gets a reply";
    } else {
      EXPECT_TRUE(out.empty());  // waiting for the rest of a frame whose length grew
    }
    SplitReplies(out);
  }
}

}  // namespace
}  // namespace quorum_risk::testing
