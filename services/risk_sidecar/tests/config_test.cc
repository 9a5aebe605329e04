// Config parsing: the example file parses; every error names its key (and line).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "quorum_risk/config.h"

namespace quorum_risk {
namespace {

const char* kValid = R"(
# comment
[account]
initial_cash = 1000000
[limits]
max_order_quantity = 10000
max_order_notional = 250000   # trailing comment
price_collar = 0.05
max_position_quantity = 50000
max_position_notional = 400000
max_gross_exposure = 2000000
max_net_exposure = 1000000
max_drawdown = 0.10
max_daily_loss = 50000
max_orders_per_second = 100
order_burst = 20
max_open_orders = 200
stale_mark_seconds = 5
[asset_class_caps]
equity = 1.0
crypto = 0.2
[sector_caps]
default = 0.3
[restricted]
symbols = GME, AMC
[instruments]
BTC-USD = crypto, crypto
[engine]
max_symbols = 100
halt_allows_reducing = false
)";

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  size_t p = text.find(from);
  EXPECT_NE(p, std::string::npos) << from;
  return text.replace(p, from.size(), to);
}

TEST(ConfigTest, ParsesAllSections) {
  auto c = ParseConfig(kValid);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_DOUBLE_EQ(c->initial_cash, 1e6);
  EXPECT_DOUBLE_EQ(c->limits.max_order_notional, 250000);
  EXPECT_EQ(c->limits.order_burst, 20u);
  EXPECT_DOUBLE_EQ(c->limits.asset_class_caps.at("crypto"), 0.2);
  EXPECT_FALSE(c->limits.asset_class_default_cap.has_value());
  EXPECT_DOUBLE_EQ(*c->limits.sector_default_cap, 0.3);
  EXPECT_EQ(c->limits.restricted_symbols.size(), 2u);
  EXPECT_EQ(c->instruments.at("BTC-USD").sector, "crypto");
  EXPECT_EQ(c->engine.max_symbols, 100u);
  EXPECT_FALSE(c->engine.halt_allows_reducing);
  EXPECT_EQ(c->engine.order_id_memory, 1u << 20);  // default
}

TEST(ConfigTest, ExampleFileParses) {
  auto c = LoadConfigFile(QUORUM_RISK_SOURCE_DIR "/config/sidecar.example.conf");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_DOUBLE_EQ(c->limits.asset_class_caps.at("crypto"), 0.20);
}

void ExpectError(const std::string& text, const std::string& needle) {
  auto c = ParseConfig(text, "test.conf");
  ASSERT_FALSE(c.ok()) << "expected an error mentioning " << needle;
  EXPECT_NE(c.status().message().find(needle), std::string::npos) << c.status().message();
}

TEST(ConfigTest, ErrorsNameTheKey) {
  ExpectError(Replace(kValid, "max_order_quantity = 10000", "max_order_quantity = abc"),
              "[limits] max_order_quantity");
  ExpectError(Replace(kValid, "max_order_quantity = 10000", "max_order_quantity = -5"), "[limits] max_order_quantity");
  ExpectError(Replace(kValid, "max_order_quantity = 10000", "max_order_quantity = 0"), "[limits] max_order_quantity");
  ExpectError(Replace(kValid, "max_order_quantity = 10000", "max_order_quantity = nan"), "max_order_quantity");
  ExpectError(Replace(kValid, "max_order_quantity = 10000", "max_order_quantity = 1e999"), "max_order_quantity");
  ExpectError(Replace(kValid, "max_order_quantity = 10000\n", ""), "missing required key [limits] max_order_quantity");
  ExpectError(Replace(kValid, "order_burst = 20", "order_burst = 2.5"), "[limits] order_burst");
  ExpectError(Replace(kValid, "max_drawdown = 0.10", "max_drawdown = 1.5"), "[limits] max_drawdown");
  ExpectError(Replace(kValid, "stale_mark_seconds = 5", "stale_mark_seconds = 5\nstale_mark_second = 5"),
              "unknown key [limits] stale_mark_second");
  ExpectError(Replace(kValid, "stale_mark_seconds = 5", "stale_mark_seconds = 5\nstale_mark_seconds = 4"),
              "duplicate key [limits] stale_mark_seconds");
  ExpectError(Replace(kValid, "[engine]", "[engin]"), "unknown section [engin]");
  ExpectError(Replace(kValid, "crypto = 0.2", "crypto = lots"), "[asset_class_caps] crypto");
  ExpectError(Replace(kValid, "BTC-USD = crypto, crypto", "BTC-USD = crypto"), "[instruments] BTC-USD");
  ExpectError(Replace(kValid, "symbols = GME, AMC", "symbols = GME, A M C"), "[restricted] symbols");
  ExpectError(Replace(kValid, "halt_allows_reducing = false", "halt_allows_reducing = nope"),
              "[engine] halt_allows_reducing");
  ExpectError(Replace(kValid, "[account]", "[account"), "malformed section header");
  ExpectError(Replace(kValid, "initial_cash = 1000000", "initial_cash 1000000"), "expected 'key = value'");
  ExpectError("max_order_quantity = 1\n", "outside any section");
}

TEST(ConfigTest, ErrorsCarryTheLineNumber) {
  auto c = ParseConfig(Replace(kValid, "price_collar = 0.05", "price_collar = x"), "f.conf");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message().rfind("f.conf:8: [limits] price_collar", 0), 0u) << c.status().message();
}

TEST(ConfigTest, MissingFileIsNotFound) {
  auto c = LoadConfigFile("/nonexistent/sidecar.conf");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace quorum_risk
