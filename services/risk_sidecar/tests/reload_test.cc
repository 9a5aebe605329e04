// Reloads may only tighten the limits; a loosening reload is refused and the old limits stay.
#include "test_util.h"

namespace quorum_risk::testing {
namespace {

constexpr Side kBuy = Side::kBuy;

class ReloadTest : public EngineFixture {
 protected:
  void SetUp() override {
    base_ = LooseConfig();
    base_.limits.max_order_quantity = 1000;
    base_.limits.asset_class_caps["crypto"] = 0.2;
    base_.limits.sector_default_cap = 0.5;
    base_.limits.restricted_symbols = {"GME"};
    Make(base_);
    Mark("AAPL", 100);
  }
  Config base_;
};

TEST_F(ReloadTest, TighteningIsApplied) {
  Config next = base_;
  next.limits.max_order_quantity = 500;
  ASSERT_TRUE(engine_->Reload(next).ok());
  EXPECT_EQ(Check("a", "AAPL", kBuy, 500, 100), Reason::kOk);
  EXPECT_EQ(Check("b", "AAPL", kBuy, 501, 100), Reason::kMaxOrderQuantity);
}

TEST_F(ReloadTest, IdenticalReloadIsAccepted) { EXPECT_TRUE(engine_->Reload(base_).ok()); }

TEST_F(ReloadTest, LooseningIsRefusedAndOldLimitsStay) {
  Config next = base_;
  next.limits.max_order_quantity = 2000;
  next.limits.price_collar = 0.01;  // tighter, but the reload is all or nothing
  Status s = engine_->Reload(next);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("max_order_quantity"), std::string::npos) << s.message();
  EXPECT_EQ(Check("a", "AAPL", kBuy, 1001, 100), Reason::kMaxOrderQuantity);
  EXPECT_EQ(Check("b", "AAPL", kBuy, 1, 103), Reason::kOk) << "collar unchanged";
}

TEST_F(ReloadTest, EveryScalarLimitIsTightenOnly) {
  using Field = double Limits::*;
  for (Field f : {&Limits::max_order_notional, &Limits::price_collar, &Limits::max_position_quantity,
                  &Limits::max_position_notional, &Limits::max_gross_exposure, &Limits::max_net_exposure,
                  &Limits::max_drawdown, &Limits::max_daily_loss, &Limits::max_orders_per_second,
                  &Limits::stale_mark_seconds}) {
    Config looser = base_;
    looser.limits.*f *= 1.5;
    EXPECT_FALSE(CheckTightenOnly(base_, looser).ok());
    Config tighter = base_;
    tighter.limits.*f *= 0.5;
    EXPECT_TRUE(CheckTightenOnly(base_, tighter).ok());
  }
  Config c = base_;
  c.limits.order_burst += 1;
  EXPECT_FALSE(CheckTightenOnly(base_, c).ok());
  c = base_;
  c.limits.max_open_orders += 1;
  EXPECT_FALSE(CheckTightenOnly(base_, c).ok());
  c = base_;
  c.limits.max_open_orders -= 1;
  EXPECT_TRUE(CheckTightenOnly(base_, c).ok());
}

TEST_F(ReloadTest, CapsRestrictedAndNonReloadableKeys) {
  Config c = base_;
  c.limits.asset_class_caps.erase("crypto");  // would fall back to... no default: forbidden = tighter
  EXPECT_TRUE(CheckTightenOnly(base_, c).ok());
  c = base_;
  c.limits.asset_class_default_cap = 0.1;  // new default loosens unlisted classes (were forbidden)
  EXPECT_FALSE(CheckTightenOnly(base_, c).ok());
  c = base_;
  c.limits.asset_class_caps["crypto"] = 0.25;
  EXPECT_FALSE(CheckTightenOnly(base_, c).ok());
  c = base_;
  c.limits.sector_caps["energy"] = 0.6;  // above the default it used to fall under
  EXPECT_FALSE(CheckTightenOnly(base_, c).ok());
  c = base_;
  c.limits.sector_caps["energy"] = 0.4;
  EXPECT_TRUE(CheckTightenOnly(base_, c).ok());
  c = base_;
  c.limits.restricted_symbols.clear();
  Status s = CheckTightenOnly(base_, c);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("GME"), std::string::npos);
  c = base_;
  c.limits.restricted_symbols.insert("AAPL");
  ASSERT_TRUE(engine_->Reload(c).ok());
  EXPECT_EQ(Check("r", "AAPL", kBuy, 1, 100), Reason::kRestrictedSymbol);
  c = base_;
  c.initial_cash = 2e6;
  EXPECT_FALSE(CheckTightenOnly(base_, c).ok());
  c = base_;
  c.engine.max_symbols = 128;
  EXPECT_FALSE(CheckTightenOnly(base_, c).ok());
  c = base_;
  c.engine.halt_allows_reducing = false;
  EXPECT_TRUE(CheckTightenOnly(base_, c).ok());
}

TEST_F(ReloadTest, TighterDrawdownTakesEffectImmediately) {
  Own("p", "AAPL", kBuy, 1000, 100);
  Mark("AAPL", 50);  // NAV 950k: 5 % drawdown
  EXPECT_EQ(engine_->mode(), Mode::kActive);
  Config c = base_;
  c.limits.max_drawdown = 0.04;
  ASSERT_TRUE(engine_->Reload(c).ok());
  EXPECT_EQ(engine_->mode(), Mode::kReducing);
}

TEST_F(ReloadTest, InstrumentsMayBeAddedNotChanged) {
  ASSERT_EQ(Check("bind", "AAPL", kBuy, 1, 100, "equity", "technology"), Reason::kOk);
  Config c = base_;
  c.instruments["AAPL"] = Instrument{"equity", "energy"};
  Status s = engine_->Reload(c);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("AAPL"), std::string::npos);
  c.instruments["AAPL"] = Instrument{"equity", "technology"};
  ASSERT_TRUE(engine_->Reload(c).ok());
  Config d = c;
  d.instruments.erase("AAPL");
  EXPECT_FALSE(engine_->Reload(d).ok());
}

}  // namespace
}  // namespace quorum_risk::testing
