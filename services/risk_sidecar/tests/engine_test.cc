// Every hard limit at, just inside and just beyond its boundary.
#include <cmath>
#include <limits>

#include "test_util.h"

namespace quorum_risk::testing {
namespace {

constexpr Side kBuy = Side::kBuy;
constexpr Side kSell = Side::kSell;

class LimitTest : public EngineFixture {};

TEST_F(LimitTest, MaxOrderQuantity) {
  Config c = LooseConfig();
  c.limits.max_order_quantity = 1000;
  Make(c);
  Mark("AAPL", 10);
  EXPECT_EQ(Check("in", "AAPL", kBuy, 999, 10), Reason::kOk);
  EXPECT_EQ(Check("at", "AAPL", kBuy, 1000, 10), Reason::kOk);
  EXPECT_EQ(Check("beyond", "AAPL", kBuy, 1000.000001, 10), Reason::kMaxOrderQuantity);
  EXPECT_EQ(Check("beyond-sell", "AAPL", kSell, 1001, 10), Reason::kMaxOrderQuantity);
}

TEST_F(LimitTest, MaxOrderNotional) {
  Config c = LooseConfig();
  c.limits.max_order_notional = 50'000;
  Make(c);
  Mark("AAPL", 100);
  EXPECT_EQ(Check("in", "AAPL", kBuy, 499, 100), Reason::kOk);
  EXPECT_EQ(Check("at", "AAPL", kBuy, 500, 100), Reason::kOk);
  EXPECT_EQ(Check("beyond", "AAPL", kBuy, 500, 100.01), Reason::kMaxOrderNotional);
  EXPECT_EQ(Check("beyond-qty", "AAPL", kBuy, 501, 100), Reason::kMaxOrderNotional);
}

TEST_F(LimitTest, PriceCollarBothSides) {
  Config c = LooseConfig();
  c.limits.price_collar = 0.05;
  Make(c);
  Mark("AAPL", 100);
  EXPECT_EQ(Check("in-hi", "AAPL", kBuy, 1, 104.99), Reason::kOk);
  EXPECT_EQ(Check("at-hi", "AAPL", kBuy, 1, 105), Reason::kOk);
  EXPECT_EQ(Check("beyond-hi", "AAPL", kBuy, 1, 105.01), Reason::kPriceCollar);
  EXPECT_EQ(Check("in-lo", "AAPL", kSell, 1, 95.01), Reason::kOk);
  EXPECT_EQ(Check("at-lo", "AAPL", kSell, 1, 95), Reason::kOk);
  EXPECT_EQ(Check("beyond-lo", "AAPL", kSell, 1, 94.99), Reason::kPriceCollar);
}

TEST_F(LimitTest, MaxPositionQuantityCountsInFlightOrders) {
  Config c = LooseConfig();
  c.limits.max_position_quantity = 2000;
  Make(c);
  Mark("AAPL", 10);
  EXPECT_EQ(Check("a", "AAPL", kBuy, 1000, 10), Reason::kOk);  // in flight, unfilled
  EXPECT_EQ(Check("in", "AAPL", kBuy, 999, 10), Reason::kOk);   // 1999 worst case
  EXPECT_EQ(Check("beyond", "AAPL", kBuy, 2, 10), Reason::kMaxPosition);
  EXPECT_EQ(Check("at", "AAPL", kBuy, 1, 10), Reason::kOk);  // exactly 2000
  EXPECT_EQ(Check("beyond2", "AAPL", kBuy, 0.5, 10), Reason::kMaxPosition);
  // Short side: worst case is -(sells); the buys do not offset it.
  EXPECT_EQ(Check("s-at", "AAPL", kSell, 2000, 10), Reason::kOk);
  EXPECT_EQ(Check("s-beyond", "AAPL", kSell, 1, 10), Reason::kMaxPosition);
}

TEST_F(LimitTest, MaxPositionNotional) {
  Config c = LooseConfig();
  c.limits.max_position_notional = 150'000;
  Make(c);
  Mark("AAPL", 100);
  EXPECT_EQ(Check("a", "AAPL", kBuy, 1000, 100), Reason::kOk);
  EXPECT_EQ(Check("in", "AAPL", kBuy, 499, 100), Reason::kOk);
  EXPECT_EQ(Check("beyond", "AAPL", kBuy, 2, 100), Reason::kMaxPosition);
  EXPECT_EQ(Check("at", "AAPL", kBuy, 1, 100), Reason::kOk);
  EXPECT_EQ(Check("beyond2", "AAPL", kBuy, 0.01, 100), Reason::kMaxPosition);
}

TEST_F(LimitTest, MaxGrossExposure) {
  Config c = LooseConfig();
  c.limits.max_gross_exposure = 400'000;
  Make(c);
  for (const char* s : {"A", "B", "C"}) Mark(s, 100);
  EXPECT_EQ(Check("a", "A", kBuy, 1500, 100), Reason::kOk);   // 150k long
  EXPECT_EQ(Check("b", "B", kSell, 1500, 100), Reason::kOk);  // 150k short: gross, not net
  EXPECT_EQ(Check("c1", "C", kBuy, 999, 100), Reason::kOk);   // 399.9k: inside
  EXPECT_EQ(Check("beyond", "C", kBuy, 2, 100), Reason::kMaxGrossExposure);
  EXPECT_EQ(Check("at", "C", kBuy, 1, 100), Reason::kOk);  // 400k
  EXPECT_EQ(Check("beyond2", "C", kSell, 1, 100), Reason::kOk)  // worst case of C stays 1000
      << "a sell that does not raise C's worst-case exposure passes";
  EXPECT_EQ(Check("beyond3", "C", kSell, 1000.01, 100), Reason::kMaxGrossExposure);
}

TEST_F(LimitTest, MaxNetExposure) {
  Config c = LooseConfig();
  c.limits.max_net_exposure = 300'000;
  Make(c);
  for (const char* s : {"A", "B", "C"}) Mark(s, 100);
  EXPECT_EQ(Check("a", "A", kBuy, 1500, 100), Reason::kOk);
  EXPECT_EQ(Check("in", "B", kBuy, 1499, 100), Reason::kOk);  // 299.9k
  EXPECT_EQ(Check("beyond", "C", kBuy, 2, 100), Reason::kMaxNetExposure);
  EXPECT_EQ(Check("at", "C", kBuy, 1, 100), Reason::kOk);  // 300k
  EXPECT_EQ(Check("beyond2", "C", kBuy, 0.01, 100), Reason::kMaxNetExposure);
  // The short side is independent: selling 300k is at the limit, more is beyond.
  EXPECT_EQ(Check("s-at", "C", kSell, 3000, 100), Reason::kOk);
  EXPECT_EQ(Check("s-beyond", "B", kSell, 0.01, 100), Reason::kMaxNetExposure);
}

TEST_F(LimitTest, AssetClassCapAsFractionOfNav) {
  Config c = LooseConfig();
  c.limits.asset_class_caps["crypto"] = 0.20;  // 200k of a 1M NAV
  Make(c);
  Mark("BTC", 100);
  Mark("ETH", 100);
  EXPECT_EQ(Check("a", "BTC", kBuy, 1500, 100, "crypto", "crypto"), Reason::kOk);
  EXPECT_EQ(Check("in", "ETH", kBuy, 499, 100, "crypto", "crypto"), Reason::kOk);
  EXPECT_EQ(Check("beyond", "ETH", kBuy, 2, 100, "crypto", "crypto"), Reason::kAssetClassCap);
  EXPECT_EQ(Check("at", "ETH", kBuy, 1, 100, "crypto", "crypto"), Reason::kOk);
  EXPECT_EQ(Check("beyond2", "BTC", kBuy, 0.01, 100, "crypto", "crypto"), Reason::kAssetClassCap);
  // Equities are unaffected.
  Mark("AAPL", 100);
  EXPECT_EQ(Check("eq", "AAPL", kBuy, 5000, 100), Reason::kOk);
}

TEST_F(LimitTest, SectorCapAsFractionOfNav) {
  Config c = LooseConfig();
  c.limits.sector_caps["technology"] = 0.35;
  Make(c);
  for (const char* s : {"AAPL", "MSFT", "XOM"}) Mark(s, 100);
  EXPECT_EQ(Check("a", "AAPL", kBuy, 2000, 100), Reason::kOk);
  EXPECT_EQ(Check("in", "MSFT", kBuy, 1499, 100), Reason::kOk);  // 349.9k
  EXPECT_EQ(Check("beyond", "MSFT", kBuy, 2, 100), Reason::kSectorCap);
  EXPECT_EQ(Check("at", "MSFT", kBuy, 1, 100), Reason::kOk);  // 350k
  EXPECT_EQ(Check("beyond2", "AAPL", kSell, 2000.01, 100), Reason::kSectorCap);
  EXPECT_EQ(Check("energy", "XOM", kBuy, 3000, 100, "equity", "energy"), Reason::kOk);
}

TEST_F(LimitTest, DrawdownFromPeakSwitchesToReduceOnly) {
  Config c = LooseConfig();
  c.limits.max_drawdown = 0.10;
  Make(c);
  Mark("AAPL", 100);
  Own("pos", "AAPL", kBuy, 10'000, 100);  // all cash in AAPL: NAV = 10'000 * mark
  Mark("AAPL", 90.01);                     // inside
  EXPECT_EQ(engine_->mode(), Mode::kActive);
  Mark("AAPL", 90);  // exactly 10 %
  EXPECT_EQ(engine_->mode(), Mode::kActive);
  EXPECT_EQ(Check("at", "AAPL", kBuy, 1, 90), Reason::kOk);
  Mark("AAPL", 89.99);  // beyond
  EXPECT_EQ(engine_->mode(), Mode::kReducing);
  EXPECT_EQ(Check("buy", "AAPL", kBuy, 1, 90), Reason::kReduceOnly);
  EXPECT_EQ(Check("sell-too-much", "AAPL", kSell, 10'002, 90), Reason::kReduceOnly);
  EXPECT_EQ(Check("sell", "AAPL", kSell, 5000, 90), Reason::kOk);  // reduces
  // A price recovery does not unlock; only a RESUME does (re-basing the peak).
  Mark("AAPL", 100);
  EXPECT_EQ(engine_->mode(), Mode::kReducing);
  EXPECT_EQ(engine_->Resume(), Reason::kOk);
  EXPECT_EQ(engine_->mode(), Mode::kActive);
  EXPECT_EQ(Check("buy2", "AAPL", kBuy, 1, 100), Reason::kOk);
}

TEST_F(LimitTest, DailyLossHaltsUntilNextTradingDay) {
  Config c = LooseConfig();
  c.limits.max_daily_loss = 50'000;
  Make(c);
  Mark("AAPL", 100);
  Own("pos", "AAPL", kBuy, 10'000, 100);
  Mark("AAPL", 95.01);  // inside: loss 49.9k
  EXPECT_EQ(engine_->mode(), Mode::kActive);
  Mark("AAPL", 95);  // at: loss 50k
  EXPECT_EQ(engine_->mode(), Mode::kActive);
  EXPECT_EQ(Check("at", "AAPL", kBuy, 1, 95), Reason::kOk);
  Mark("AAPL", 94.99);  // beyond
  EXPECT_EQ(engine_->mode(), Mode::kHalted);
  EXPECT_EQ(Check("buy", "AAPL", kBuy, 1, 95), Reason::kDailyLoss);
  EXPECT_EQ(Check("sell", "AAPL", kSell, 100, 95), Reason::kOk);  // reducing passes while halted
  EXPECT_EQ(engine_->Resume(), Reason::kDailyLoss);                // a person cannot override it
  EXPECT_EQ(Check("buy2", "AAPL", kBuy, 1, 95), Reason::kDailyLoss);
  clock_.Advance(86'400LL * 1'000'000'000);  // next trading day
  Mark("AAPL", 94.99);
  EXPECT_EQ(engine_->mode(), Mode::kActive);
  EXPECT_EQ(Check("buy3", "AAPL", kBuy, 1, 95), Reason::kOk);
  EXPECT_DOUBLE_EQ(engine_->State().day_start_nav, engine_->State().nav);
}

TEST_F(LimitTest, OrderRateTokenBucket) {
  Config c = LooseConfig();
  c.limits.max_orders_per_second = 10;
  c.limits.order_burst = 5;
  Make(c);
  Mark("AAPL", 100);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Check("in" + std::to_string(i), "AAPL", kBuy, 1, 100), Reason::kOk);
  EXPECT_EQ(Check("at", "AAPL", kBuy, 1, 100), Reason::kOk);  // 5th of a burst of 5
  EXPECT_EQ(Check("beyond", "AAPL", kBuy, 1, 100), Reason::kRateLimit);
  clock_.Advance(99'999'999);  // just short of one token (100 ms at 10/s)
  EXPECT_EQ(Check("early", "AAPL", kBuy, 1, 100), Reason::kRateLimit);
  clock_.Advance(1);
  EXPECT_EQ(Check("refilled", "AAPL", kBuy, 1, 100), Reason::kOk);
  EXPECT_EQ(Check("again", "AAPL", kBuy, 1, 100), Reason::kRateLimit);
  // Rejections do not consume tokens; the bucket never holds more than the burst.
  clock_.Advance(10LL * 1'000'000'000);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Check("b" + std::to_string(i), "AAPL", kBuy, 1, 100), Reason::kOk);
  EXPECT_EQ(Check("b5", "AAPL", kBuy, 1, 100), Reason::kRateLimit);
}

TEST_F(LimitTest, MaxOpenOrders) {
  Config c = LooseConfig();
  c.limits.max_open_orders = 3;
  Make(c);
  Mark("AAPL", 100);
  EXPECT_EQ(Check("o1", "AAPL", kBuy, 1, 100), Reason::kOk);
  EXPECT_EQ(Check("o2", "AAPL", kBuy, 1, 100), Reason::kOk);  // inside
  EXPECT_EQ(Check("o3", "AAPL", kBuy, 1, 100), Reason::kOk);  // at
  EXPECT_EQ(Check("o4", "AAPL", kBuy, 1, 100), Reason::kMaxOpenOrders);
  EXPECT_EQ(engine_->OrderDone("o2"), Reason::kOk);
  EXPECT_EQ(Check("o4", "AAPL", kBuy, 1, 100), Reason::kOk);
  EXPECT_EQ(Fill("o1", "AAPL", kBuy, 1, 100), Reason::kOk);  // fully filled: no longer open
  EXPECT_EQ(Check("o5", "AAPL", kBuy, 1, 100), Reason::kOk);
  EXPECT_EQ(Check("o6", "AAPL", kBuy, 1, 100), Reason::kMaxOpenOrders);
}

TEST_F(LimitTest, DuplicateClientOrderId) {
  Config c = LooseConfig();
  c.limits.max_order_quantity = 10;
  c.limits.max_open_orders = 2;
  c.limits.price_collar = 0.05;
  c.engine.order_id_memory = 3;
  Make(c);
  Mark("AAPL", 100);
  EXPECT_EQ(Check("o1", "AAPL", kBuy, 1, 100), Reason::kOk);
  EXPECT_EQ(Check("o1", "AAPL", kBuy, 1, 100), Reason::kDuplicateOrderId);
  EXPECT_EQ(engine_->OrderDone("o1"), Reason::kOk);
  EXPECT_EQ(Check("o1", "AAPL", kBuy, 1, 100), Reason::kDuplicateOrderId);  // done ids stay used
  // The id is checked before every limit: a duplicate that also breaches one is a duplicate.
  EXPECT_EQ(Check("o1", "AAPL", kBuy, 11, 100), Reason::kDuplicateOrderId);
  EXPECT_EQ(Check("o1", "AAPL", kBuy, 1, 200), Reason::kDuplicateOrderId);  // beyond the price collar
  EXPECT_EQ(Check("o1", "MSFT", kBuy, 1, 100), Reason::kDuplicateOrderId);  // no mark
  // A rejected order's id was never sent, so it may be reused.
  EXPECT_EQ(Check("r1", "AAPL", kBuy, 11, 100), Reason::kMaxOrderQuantity);
  EXPECT_EQ(Check("r1", "AAPL", kBuy, 1, 100), Reason::kOk);
  EXPECT_EQ(engine_->OrderDone("r1"), Reason::kOk);
  // The memory remembers at least the last 3 ids and at most the last 6, forgetting a
  // generation of 3 at a time. o1, r1, o2 fill the first generation.
  EXPECT_EQ(Check("o2", "AAPL", kBuy, 1, 100), Reason::kOk);
  EXPECT_EQ(engine_->OrderDone("o2"), Reason::kOk);
  EXPECT_EQ(Check("o1", "AAPL", kBuy, 1, 100), Reason::kDuplicateOrderId);
  for (const char* id : {"o3", "o4", "o5"}) {  // the second generation
    EXPECT_EQ(Check(id, "AAPL", kBuy, 1, 100), Reason::kOk);
    EXPECT_EQ(engine_->OrderDone(id), Reason::kOk);
  }
  EXPECT_EQ(Check("r1", "AAPL", kBuy, 1, 100), Reason::kDuplicateOrderId);  // 4 ids ago: remembered
  EXPECT_EQ(Check("o1", "AAPL", kBuy, 1, 100), Reason::kDuplicateOrderId);  // 6 ids ago: remembered
  EXPECT_EQ(Check("o6", "AAPL", kBuy, 1, 100), Reason::kOk);  // third generation: o1, r1, o2 forgotten
  EXPECT_EQ(engine_->OrderDone("o6"), Reason::kOk);
  EXPECT_EQ(Check("o3", "AAPL", kBuy, 1, 100), Reason::kDuplicateOrderId);
  EXPECT_EQ(Check("r1", "AAPL", kBuy, 1, 100), Reason::kOk);  // forgotten beyond the memory
  EXPECT_EQ(engine_->OrderDone("r1"), Reason::kOk);
  EXPECT_EQ(Check("o1", "AAPL", kBuy, 1, 100), Reason::kOk);  // forgotten beyond the memory
  // o1 is open now. Push it out of the memory: it is still a duplicate because it is in flight.
  for (const char* id : {"o7", "o8", "o9", "o10", "o11", "o12"}) {
    EXPECT_EQ(Check(id, "AAPL", kBuy, 1, 100), Reason::kOk);
    EXPECT_EQ(engine_->OrderDone(id), Reason::kOk);
  }
  EXPECT_EQ(Check("o1", "AAPL", kBuy, 1, 100), Reason::kDuplicateOrderId);
}

TEST_F(LimitTest, RestrictedSymbolEvenWhenReducing) {
  Config c = LooseConfig();
  Make(c);
  Mark("GME", 10);
  Own("pos", "GME", kBuy, 100, 10);
  Config tighter = c;
  tighter.limits.restricted_symbols = {"GME"};
  ASSERT_TRUE(engine_->Reload(tighter).ok());
  EXPECT_EQ(Check("buy", "GME", kBuy, 1, 10), Reason::kRestrictedSymbol);
  EXPECT_EQ(Check("sell", "GME", kSell, 1, 10), Reason::kRestrictedSymbol);
  EXPECT_EQ(Check("unknown-restricted", "AMC", kBuy, 1, 10), Reason::kStaleMark);
}

TEST_F(LimitTest, StaleMark) {
  Config c = LooseConfig();
  c.limits.stale_mark_seconds = 5;
  Make(c);
  EXPECT_EQ(Check("never", "AAPL", kBuy, 1, 100), Reason::kStaleMark);
  Mark("AAPL", 100);
  clock_.Advance(4'999'999'999);
  EXPECT_EQ(Check("in", "AAPL", kBuy, 1, 100), Reason::kOk);
  clock_.Advance(1);  // exactly 5 s old
  EXPECT_EQ(Check("at", "AAPL", kBuy, 1, 100), Reason::kOk);
  clock_.Advance(1);
  EXPECT_EQ(Check("beyond", "AAPL", kBuy, 1, 100), Reason::kStaleMark);
  // A fill price is used for valuation but does not make a symbol tradeable.
  EXPECT_EQ(Fill("x", "NEW", kBuy, 1, 10), Reason::kUnknownOrder);
  EXPECT_EQ(Check("new", "NEW", kBuy, 1, 10), Reason::kStaleMark);
}

TEST_F(LimitTest, RestoredMarkKeepsItsAge) {
  Config c = LooseConfig();
  c.limits.stale_mark_seconds = 5;
  Make(c);
  // A restarted sidecar gets its client's last mark back, received 3 s ago: 2 s of life left.
  ASSERT_EQ(engine_->RestoreMark("AAPL", 100, 3'000'000'000), Reason::kOk);
  EXPECT_EQ(engine_->State("AAPL").mark, 100);
  EXPECT_EQ(engine_->State("AAPL").mark_age_ns, 3'000'000'000);
  clock_.Advance(2'000'000'000);
  EXPECT_EQ(Check("in", "AAPL", kBuy, 1, 100), Reason::kOk);
  clock_.Advance(1);
  EXPECT_EQ(Check("beyond", "AAPL", kBuy, 1, 100), Reason::kStaleMark);
  // Too old to trade on from the start: valued, but untradeable.
  ASSERT_EQ(engine_->RestoreMark("MSFT", 50, 6'000'000'000), Reason::kOk);
  EXPECT_EQ(engine_->State("MSFT").mark, 50);
  EXPECT_EQ(Check("old", "MSFT", kBuy, 1, 50), Reason::kStaleMark);
}

TEST_F(LimitTest, RestoredMarkNeverReplacesANewerOne) {
  Config c = LooseConfig();
  c.limits.stale_mark_seconds = 5;
  Make(c);
  Mark("AAPL", 100);
  clock_.Advance(1'000'000'000);
  ASSERT_EQ(engine_->RestoreMark("AAPL", 90, 2'000'000'000), Reason::kOk);  // older than the sidecar's own
  EXPECT_EQ(engine_->State("AAPL").mark, 100);
  EXPECT_EQ(engine_->State("AAPL").mark_age_ns, 1'000'000'000);
  ASSERT_EQ(engine_->RestoreMark("AAPL", 110, 500'000'000), Reason::kOk);  // newer: replaces it
  EXPECT_EQ(engine_->State("AAPL").mark, 110);
  EXPECT_EQ(engine_->State("AAPL").mark_age_ns, 500'000'000);
  EXPECT_EQ(engine_->RestoreMark("AAPL", 120, -1), Reason::kMalformed);
  EXPECT_EQ(engine_->RestoreMark("AAPL", 0, 0), Reason::kMalformed);
  EXPECT_EQ(engine_->State("AAPL").mark, 110);
}

TEST_F(LimitTest, InvalidInstrument) {
  Config c = LooseConfig();
  c.instruments["BTC"] = Instrument{"crypto", "crypto"};
  Make(c);
  Mark("BTC", 100);
  Mark("AAPL", 100);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(Check("nan-q", "AAPL", kBuy, nan, 100), Reason::kInvalidInstrument);
  EXPECT_EQ(Check("nan-p", "AAPL", kBuy, 1, nan), Reason::kInvalidInstrument);
  EXPECT_EQ(Check("inf-q", "AAPL", kBuy, inf, 100), Reason::kInvalidInstrument);
  EXPECT_EQ(Check("zero-q", "AAPL", kBuy, 0, 100), Reason::kInvalidInstrument);
  EXPECT_EQ(Check("neg-p", "AAPL", kBuy, 1, -100), Reason::kInvalidInstrument);
  EXPECT_EQ(Check("side", "AAPL", static_cast<Side>(3), 1, 100), Reason::kInvalidInstrument);
  EXPECT_EQ(Check("", "AAPL", kBuy, 1, 100), Reason::kInvalidInstrument);
  EXPECT_EQ(Check(std::string(65, 'x'), "AAPL", kBuy, 1, 100), Reason::kInvalidInstrument);
  // Configured classification must match; an unknown asset class has no cap.
  EXPECT_EQ(Check("cls", "BTC", kBuy, 1, 100, "equity", "crypto"), Reason::kInvalidInstrument);
  EXPECT_EQ(Check("fx", "AAPL", kBuy, 1, 100, "fx", "technology"), Reason::kInvalidInstrument);
  EXPECT_EQ(Check("ok", "BTC", kBuy, 1, 100, "crypto", "crypto"), Reason::kOk);
  // First approved order binds an unlisted symbol's classification.
  EXPECT_EQ(Check("bind", "AAPL", kBuy, 1, 100, "equity", "technology"), Reason::kOk);
  EXPECT_EQ(Check("rebind", "AAPL", kBuy, 1, 100, "equity", "energy"), Reason::kInvalidInstrument);
}

TEST_F(LimitTest, ManualHaltAndResume) {
  Config c = LooseConfig();
  Make(c);
  Mark("AAPL", 100);
  Own("pos", "AAPL", kBuy, 100, 100);
  engine_->Halt();
  EXPECT_EQ(engine_->mode(), Mode::kHalted);
  EXPECT_EQ(Check("buy", "AAPL", kBuy, 1, 100), Reason::kTradingHalted);
  EXPECT_EQ(Check("short", "MSFT", kSell, 1, 100), Reason::kStaleMark);
  EXPECT_EQ(Check("sell-60", "AAPL", kSell, 60, 100), Reason::kOk);
  // 60 already in flight: another 41 could flip the position, so it is not reducing.
  EXPECT_EQ(Check("sell-41", "AAPL", kSell, 41, 100), Reason::kTradingHalted);
  EXPECT_EQ(Check("sell-40", "AAPL", kSell, 40, 100), Reason::kOk);
  EXPECT_EQ(engine_->Resume(), Reason::kOk);
  EXPECT_EQ(Check("buy2", "AAPL", kBuy, 1, 100), Reason::kOk);
}

TEST_F(LimitTest, HaltCanBlockReducingOrdersToo) {
  Config c = LooseConfig();
  c.engine.halt_allows_reducing = false;
  Make(c);
  Mark("AAPL", 100);
  Own("pos", "AAPL", kBuy, 100, 100);
  engine_->Halt();
  EXPECT_EQ(Check("sell", "AAPL", kSell, 1, 100), Reason::kTradingHalted);
}

TEST_F(LimitTest, ReducingOrdersBypassExposureLimits) {
  Config c = LooseConfig();
  c.limits.max_gross_exposure = 10'000;
  Make(c);
  Mark("AAPL", 100);
  Own("pos", "AAPL", kBuy, 100, 100);
  Mark("AAPL", 200);  // gross is now 20k, beyond the limit
  EXPECT_EQ(Check("buy", "AAPL", kBuy, 1, 200), Reason::kMaxGrossExposure);
  EXPECT_EQ(Check("sell", "AAPL", kSell, 50, 200), Reason::kOk);
}

TEST_F(LimitTest, NegativeNavIsReduceOnly) {
  Config c = LooseConfig();  // max_drawdown = 1: only a NAV at or below zero trips it
  Make(c);
  Mark("X", 100);
  Own("short", "X", kSell, 10'000, 100);  // cash 2M, position -1M
  Mark("X", 199.99);
  EXPECT_EQ(engine_->mode(), Mode::kActive);
  Mark("X", 250);  // NAV = 2M - 2.5M < 0
  EXPECT_LT(engine_->State().nav, 0);
  EXPECT_EQ(engine_->mode(), Mode::kReducing);
  Mark("AAPL", 100);
  EXPECT_EQ(Check("buy", "AAPL", kBuy, 1, 100), Reason::kReduceOnly);
  EXPECT_EQ(Check("cover", "X", kBuy, 10, 250), Reason::kOk);
}

}  // namespace
}  // namespace quorum_risk::testing
