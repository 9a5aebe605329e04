// Shared helpers for the engine tests.
#ifndef QUORUM_RISK_TESTS_TEST_UTIL_H_
#define QUORUM_RISK_TESTS_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "quorum_risk/clock.h"
#include "quorum_risk/config.h"
#include "quorum_risk/engine.h"

namespace quorum_risk::testing {

// Every limit effectively unbounded, so a test tightens only the limit under test.
inline Config LooseConfig() {
  Config c;
  c.initial_cash = 1'000'000;
  Limits& l = c.limits;
  l.max_order_quantity = 1e12;
  l.max_order_notional = 1e15;
  l.price_collar = 10;
  l.max_position_quantity = 1e12;
  l.max_position_notional = 1e15;
  l.max_gross_exposure = 1e15;
  l.max_net_exposure = 1e15;
  l.max_drawdown = 1;
  l.max_daily_loss = 1e15;
  l.max_orders_per_second = 1e9;
  l.order_burst = 1'000'000;
  l.max_open_orders = 1000;
  l.stale_mark_seconds = 86400;
  l.asset_class_caps = {{"equity", 100.0}, {"crypto", 100.0}};
  l.sector_default_cap = 100.0;
  c.engine.max_symbols = 64;
  c.engine.order_id_memory = 4096;
  return c;
}

class EngineFixture : public ::testing::Test {
 protected:
  void Make(const Config& c) {
    auto e = RiskEngine::Create(c, &clock_);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(e).value();
  }
  // Checks an equity / technology order (or the given classification) and returns the reason.
  Reason Check(const std::string& id, const std::string& sym, Side side, double qty, double px,
               const std::string& cls = "equity", const std::string& sector = "technology") {
    OrderRequest o;
    o.client_order_id = id;
    o.symbol = sym;
    o.asset_class = cls;
    o.sector = sector;
    o.side = static_cast<uint8_t>(side);
    o.quantity = qty;
    o.price = px;
    Verdict v = engine_->CheckOrder(o);
    EXPECT_EQ(v.approved, v.reason == Reason::kOk);
    return v.reason;
  }
  Reason Fill(const std::string& id, const std::string& sym, Side side, double qty, double px) {
    FillReport f;
    f.client_order_id = id;
    f.symbol = sym;
    f.side = static_cast<uint8_t>(side);
    f.quantity = qty;
    f.price = px;
    return engine_->ReportFill(f);
  }
  void Mark(const std::string& sym, double px) { ASSERT_EQ(engine_->ReportMark(sym, px), Reason::kOk); }
  // Approves and fully fills an order at `px`.
  void Own(const std::string& id, const std::string& sym, Side side, double qty, double px,
           const std::string& cls = "equity", const std::string& sector = "technology") {
    ASSERT_EQ(Check(id, sym, side, qty, px, cls, sector), Reason::kOk);
    ASSERT_EQ(Fill(id, sym, side, qty, px), Reason::kOk);
  }

  ManualClock clock_;
  std::unique_ptr<RiskEngine> engine_;
};

}  // namespace quorum_risk::testing

#endif  // QUORUM_RISK_TESTS_TEST_UTIL_H_
