// The sidecar's own ledger: in-flight orders, partial fills, cash, NAV from marks.
#include "test_util.h"

namespace quorum_risk::testing {
namespace {

constexpr Side kBuy = Side::kBuy;
constexpr Side kSell = Side::kSell;

class LedgerTest : public EngineFixture {
 protected:
  void SetUp() override { Make(LooseConfig()); }
};

TEST_F(LedgerTest, PartialFillsMoveQuantityFromInFlightToPosition) {
  Mark("AAPL", 100);
  ASSERT_EQ(Check("o1", "AAPL", kBuy, 100, 100), Reason::kOk);
  EngineState st = engine_->State("AAPL");
  EXPECT_EQ(st.open_orders, 1u);
  EXPECT_DOUBLE_EQ(st.open_buy, 100);
  EXPECT_DOUBLE_EQ(st.position, 0);
  EXPECT_DOUBLE_EQ(st.gross_exposure, 10'000);  // in-flight counts

  EXPECT_EQ(Fill("o1", "AAPL", kBuy, 30, 99), Reason::kOk);
  st = engine_->State("AAPL");
  EXPECT_EQ(st.open_orders, 1u);
  EXPECT_DOUBLE_EQ(st.open_buy, 70);
  EXPECT_DOUBLE_EQ(st.position, 30);
  EXPECT_DOUBLE_EQ(st.cash, 1'000'000 - 30 * 99);
  EXPECT_DOUBLE_EQ(st.nav, 1'000'000 - 30 * 99 + 30 * 100);  // valued at the mark
  EXPECT_DOUBLE_EQ(st.gross_exposure, 10'000);

  EXPECT_EQ(Fill("o1", "AAPL", kBuy, 70, 101), Reason::kOk);
  st = engine_->State("AAPL");
  EXPECT_EQ(st.open_orders, 0u);
  EXPECT_DOUBLE_EQ(st.open_buy, 0);
  EXPECT_DOUBLE_EQ(st.position, 100);
  EXPECT_DOUBLE_EQ(st.cash, 1'000'000 - 30 * 99 - 70 * 101);
  // Fully filled orders are closed: a further fill is unknown (but still applied: it happened).
  EXPECT_EQ(Fill("o1", "AAPL", kBuy, 1, 100), Reason::kUnknownOrder);
  EXPECT_DOUBLE_EQ(engine_->State("AAPL").position, 101);
}

TEST_F(LedgerTest, PartiallyFilledOrderStillCountsAgainstLimits) {
  Config c = LooseConfig();
  c.limits.max_position_quantity = 100;
  Make(c);
  Mark("AAPL", 100);
  ASSERT_EQ(Check("o1", "AAPL", kBuy, 100, 100), Reason::kOk);
  ASSERT_EQ(Fill("o1", "AAPL", kBuy, 40, 100), Reason::kOk);
  EXPECT_EQ(Check("o2", "AAPL", kBuy, 1, 100), Reason::kMaxPosition);  // 40 filled + 60 open
  ASSERT_EQ(engine_->OrderDone("o1"), Reason::kOk);                    // rest cancelled
  EXPECT_DOUBLE_EQ(engine_->State("AAPL").open_buy, 0);
  EXPECT_EQ(Check("o3", "AAPL", kBuy, 60, 100), Reason::kOk);
  EXPECT_EQ(Check("o4", "AAPL", kBuy, 1, 100), Reason::kMaxPosition);
}

TEST_F(LedgerTest, SellsAndShortsCashAndNav) {
  Mark("AAPL", 100);
  Own("b", "AAPL", kBuy, 10, 100);
  ASSERT_EQ(Check("s", "AAPL", kSell, 30, 100), Reason::kOk);
  EXPECT_EQ(Fill("s", "AAPL", kSell, 10, 110), Reason::kOk);
  EXPECT_EQ(Fill("s", "AAPL", kSell, 20, 110), Reason::kOk);
  EngineState st = engine_->State("AAPL");
  EXPECT_DOUBLE_EQ(st.position, -20);
  EXPECT_DOUBLE_EQ(st.cash, 1'000'000 - 1000 + 3300);
  Mark("AAPL", 120);
  st = engine_->State("AAPL");
  EXPECT_DOUBLE_EQ(st.nav, 1'000'000 - 1000 + 3300 - 20 * 120);
  EXPECT_DOUBLE_EQ(st.gross_exposure, 20 * 120);
  EXPECT_DOUBLE_EQ(st.net_long, -2400);
  EXPECT_DOUBLE_EQ(st.net_short, -2400);
}

TEST_F(LedgerTest, FillMismatchAndOverfillAreFlaggedButApplied) {
  Mark("AAPL", 100);
  Mark("MSFT", 100);
  ASSERT_EQ(Check("o1", "AAPL", kBuy, 10, 100), Reason::kOk);
  EXPECT_EQ(Fill("o1", "MSFT", kBuy, 5, 100), Reason::kFillMismatch);
  EXPECT_DOUBLE_EQ(engine_->State("MSFT").position, 5);
  EXPECT_DOUBLE_EQ(engine_->State("AAPL").open_buy, 10);  // order untouched
  EXPECT_EQ(Fill("o1", "AAPL", kSell, 5, 100), Reason::kFillMismatch);
  EXPECT_DOUBLE_EQ(engine_->State("AAPL").position, -5);
  EXPECT_EQ(Fill("o1", "AAPL", kBuy, 12, 100), Reason::kFillMismatch);  // over-fill
  EngineState st = engine_->State("AAPL");
  EXPECT_DOUBLE_EQ(st.position, 7);
  EXPECT_DOUBLE_EQ(st.open_buy, 0);
  EXPECT_EQ(st.open_orders, 0u);
}

TEST_F(LedgerTest, OrderDoneAndUnknownIds) {
  Mark("AAPL", 100);
  EXPECT_EQ(engine_->OrderDone("nope"), Reason::kUnknownOrder);
  ASSERT_EQ(Check("o1", "AAPL", kSell, 10, 100), Reason::kOk);
  EXPECT_DOUBLE_EQ(engine_->State("AAPL").open_sell, 10);
  EXPECT_EQ(engine_->OrderDone("o1"), Reason::kOk);
  EXPECT_EQ(engine_->OrderDone("o1"), Reason::kUnknownOrder);
  EngineState st = engine_->State("AAPL");
  EXPECT_DOUBLE_EQ(st.open_sell, 0);
  EXPECT_DOUBLE_EQ(st.gross_exposure, 0);
  EXPECT_EQ(st.open_orders, 0u);
}

TEST_F(LedgerTest, MalformedReportsChangeNothing) {
  Mark("AAPL", 100);
  EXPECT_EQ(Fill("o", "AAPL", kBuy, -1, 100), Reason::kMalformed);
  EXPECT_EQ(Fill("o", "AAPL", kBuy, 1, 0), Reason::kMalformed);
  EXPECT_EQ(Fill("o", "bad sym", kBuy, 1, 10), Reason::kMalformed);
  EXPECT_EQ(engine_->ReportMark("AAPL", -1), Reason::kMalformed);
  EXPECT_EQ(engine_->ReportMark("", 1), Reason::kMalformed);
  EXPECT_DOUBLE_EQ(engine_->State().nav, 1'000'000);
  EXPECT_DOUBLE_EQ(engine_->State("AAPL").mark, 100);
}

TEST_F(LedgerTest, SymbolTableCapacityFailsClosed) {
  Config c = LooseConfig();
  c.engine.max_symbols = 2;
  Make(c);
  Mark("A", 1);
  Mark("B", 1);
  EXPECT_EQ(engine_->ReportMark("C", 1), Reason::kCapacity);
  // A fill that cannot be recorded halts trading rather than run on a wrong ledger.
  EXPECT_EQ(Fill("x", "C", kBuy, 1, 1), Reason::kCapacity);
  EXPECT_EQ(engine_->mode(), Mode::kHalted);
}

TEST_F(LedgerTest, ManyOrdersChurnKeepsTablesConsistent) {
  Config c = LooseConfig();
  c.limits.max_open_orders = 64;
  c.engine.order_id_memory = 100;
  Make(c);
  Mark("AAPL", 100);
  for (int i = 0; i < 20'000; ++i) {
    std::string id = "id-" + std::to_string(i);
    ASSERT_EQ(Check(id, "AAPL", i % 2 ? kBuy : kSell, 1, 100), Reason::kOk) << i;
    if (i >= 50) {
      std::string old = "id-" + std::to_string(i - 50);
      if (i % 3 == 0) {
        ASSERT_EQ(engine_->OrderDone(old), Reason::kOk);
      } else {
        ASSERT_EQ(Fill(old, "AAPL", (i - 50) % 2 ? kBuy : kSell, 1, 100), Reason::kOk);
      }
    }
  }
  EngineState st = engine_->State("AAPL");
  EXPECT_EQ(st.open_orders, 50u);
  EXPECT_DOUBLE_EQ(st.open_buy + st.open_sell, 50);
  EXPECT_NEAR(st.nav, 1'000'000, 1e-6);
}

}  // namespace
}  // namespace quorum_risk::testing
