// The state a restarted sidecar reads back: export -> file text -> parse -> import into a new engine.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "quorum_risk/state_file.h"
#include "test_util.h"

namespace quorum_risk::testing {
namespace {

constexpr Side kBuy = Side::kBuy;

class StateTest : public EngineFixture {
 protected:
  // A new engine on the same clock with the text of the current one's state, `down_ns` later.
  std::unique_ptr<RiskEngine> Restarted(const Config& c, int64_t down_ns) {
    std::string text = FormatState(engine_->ExportState(), clock_.WallNanos());
    clock_.Advance(down_ns);
    auto e = RiskEngine::Create(c, &clock_);
    EXPECT_TRUE(e.ok());
    Result<SavedState> saved = ParseState(text);
    EXPECT_TRUE(saved.ok()) << saved.status().ToString();
    Status s = (*e)->ImportState(saved->image, clock_.WallNanos() - saved->saved_wall_ns);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return std::move(e).value();
  }
};

TEST_F(StateTest, ARestartedEngineKeepsLedgerHaltsLockAndInFlightOrders) {
  Config c = LooseConfig();
  c.limits.max_drawdown = 0.2;
  c.limits.max_position_quantity = 150;
  c.limits.stale_mark_seconds = 5;
  Make(c);
  Mark("AAPL", 100);
  Own("a", "AAPL", kBuy, 100, 100);
  ASSERT_EQ(Check("resting", "AAPL", kBuy, 30, 100), Reason::kOk);  // in flight
  Mark("AAPL", 1000);      // a peak: NAV 1,090,000
  Mark("AAPL", 50);        // NAV 995,000: (1,090,000 - 995,000) / 1,090,000 < 20 %
  Mark("MSFT", 10);
  engine_->Halt();
  const EngineState before = engine_->State("AAPL");
  clock_.Advance(1'000'000'000);
  auto after = Restarted(c, 2'000'000'000);
  const EngineState st = after->State("AAPL");
  EXPECT_EQ(st.cash, before.cash);
  EXPECT_EQ(st.peak_nav, before.peak_nav);
  EXPECT_EQ(st.nav, before.nav);
  EXPECT_EQ(st.day_start_nav, before.day_start_nav);
  EXPECT_EQ(st.position, 100);
  EXPECT_EQ(st.open_buy, 30);
  EXPECT_EQ(st.open_orders, 1u);
  EXPECT_TRUE(st.manual_halt);
  EXPECT_EQ(st.mark, 50);
  EXPECT_EQ(st.mark_age_ns, 3'000'000'000);  // its age at the save, plus the time the sidecar was down
  EXPECT_EQ(st.gross_exposure, before.gross_exposure);
  engine_ = std::move(after);
  EXPECT_EQ(Check("resting", "AAPL", kBuy, 1, 50), Reason::kDuplicateOrderId);  // still in flight
  EXPECT_EQ(Check("more", "AAPL", kBuy, 1, 50), Reason::kTradingHalted);
  ASSERT_EQ(engine_->Resume(), Reason::kOk);
  EXPECT_EQ(Check("over", "AAPL", kBuy, 21, 50), Reason::kMaxPosition);  // 100 + 30 in flight + 21 > 150
  EXPECT_EQ(Fill("resting", "AAPL", kBuy, 30, 50), Reason::kOk);        // the order it still knows
  EXPECT_EQ(engine_->State("AAPL").position, 130);
  clock_.Advance(3'000'000'001);
  EXPECT_EQ(Check("stale", "MSFT", kBuy, 1, 10), Reason::kStaleMark);  // the restored mark aged on
}

TEST_F(StateTest, TheDrawdownLockAndTheDayRollSurviveAsTheyWould) {
  Config c = LooseConfig();
  c.limits.max_drawdown = 0.05;
  Make(c);
  Mark("AAPL", 100);
  Own("a", "AAPL", kBuy, 1000, 100);
  Mark("AAPL", 40);  // NAV 940,000: 6 % under the peak
  ASSERT_TRUE(engine_->State().drawdown_reduce_only);
  auto same_day = Restarted(c, 1'000'000'000);
  EXPECT_TRUE(same_day->State().drawdown_reduce_only);
  EXPECT_EQ(same_day->State().day_start_nav, 1'000'000);
  engine_ = std::move(same_day);
  auto next_day = Restarted(c, 86'400LL * 1'000'000'000);
  EXPECT_TRUE(next_day->State().drawdown_reduce_only);        // only a RESUME clears the lock
  EXPECT_EQ(next_day->State().day_start_nav, 940'000);          // the day rolled while it was down
}

TEST_F(StateTest, ImportIsRefusedAfterARequestAndForBadEntries) {
  Config c = LooseConfig();
  Make(c);
  Mark("AAPL", 100);
  StateImage image = engine_->ExportState();
  EXPECT_EQ(engine_->ImportState(image, 0).code(), StatusCode::kFailedPrecondition);
  auto fresh = RiskEngine::Create(c, &clock_);
  image.orders.push_back({"o1", "NOPE", 1, 5});
  EXPECT_EQ((*fresh)->ImportState(image, 0).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*fresh)->State().symbols, 0u);  // nothing applied
}

TEST(StateFileTest, TextRoundTripsExactlyAndBadFilesNameTheLine) {
  StateImage s;
  s.cash = 0.1 + 0.2;
  s.peak_nav = 1e6 / 3;
  s.day_start_nav = 999'999.5;
  s.day_index = 19'675;
  s.drawdown_reduce_only = true;
  s.symbols.push_back({"AAPL", -12.5, 187.25, true, 42, "equity", "Information_Technology"});
  s.symbols.push_back({"BTC-USD", 0.5, 30'000.0, false, 0, "", ""});
  s.orders.push_back({"ord-1", "AAPL", 2, 7.25});
  Result<SavedState> back = ParseState(FormatState(s, 123));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->saved_wall_ns, 123);
  EXPECT_EQ(FormatState(back->image, 123), FormatState(s, 123));
  EXPECT_EQ(back->image.cash, 0.1 + 0.2);
  EXPECT_EQ(back->image.symbols[1].asset_class, "");
  std::string text = FormatState(s, 123);
  EXPECT_NE(ParseState(text.substr(0, text.size() - 4)).status().message().find("no 'end' line"), std::string::npos);
  std::string bad = text;
  bad.replace(bad.find("AAPL 2 7.25"), 11, "AAPL 2 lots");
  EXPECT_NE(ParseState(bad).status().message().find("line 6: order ord-1"), std::string::npos);
  EXPECT_FALSE(ParseState("something else\nend\n").ok());
}

TEST(StateFileTest, TheFileIsReplacedWholeAndAMissingOneIsAFirstStart) {
  std::string path = ::testing::TempDir() + "quorum_state_test";
  std::remove(path.c_str());
  auto none = ReadStateFile(path);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(WriteStateFile(path, "one\n").ok());
  ASSERT_TRUE(WriteStateFile(path, "two\n").ok());
  auto got = ReadStateFile(path);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, "two\n");
  std::remove(path.c_str());
}

}  // namespace
}  // namespace quorum_risk::testing
