// Sidecar configuration: hard limits, account, instruments and engine sizing.
//
// File format (see config/sidecar.example.conf): `# comment` lines, `[section]` headers and
// `key = value` lines. Every key in [account] and [limits] is required; unknown sections or keys,
// duplicates and out-of-range values are errors that name the offending key and line.
#ifndef QUORUM_RISK_CONFIG_H_
#define QUORUM_RISK_CONFIG_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "quorum_risk/status.h"

namespace quorum_risk {

// Hard limits. All are "maximum" limits: a value exactly at the limit passes, anything beyond
// fails. Positions and exposures are worst-case: in-flight (approved, not yet filled or done)
// orders count as if they were filled.
struct Limits {
  // [limits] max_order_quantity: largest quantity of a single order, in units (> 0).
  double max_order_quantity = 0;
  // [limits] max_order_notional: largest quantity * limit price of a single order (> 0).
  double max_order_notional = 0;
  // [limits] price_collar: largest |limit price - last mark| / last mark, a fraction (> 0).
  double price_collar = 0;
  // [limits] max_position_quantity: largest worst-case |position| per symbol, in units (> 0).
  double max_position_quantity = 0;
  // [limits] max_position_notional: largest worst-case |position| * mark per symbol (> 0).
  double max_position_notional = 0;
  // [limits] max_gross_exposure: largest sum over symbols of worst-case |position| * mark (> 0).
  double max_gross_exposure = 0;
  // [limits] max_net_exposure: largest |sum over symbols of signed worst-case position * mark| (> 0).
  double max_net_exposure = 0;
  // [limits] max_drawdown: (peak NAV - NAV) / peak NAV beyond this fraction switches the
  // engine to reduce-only until a RESUME (> 0, <= 1).
  double max_drawdown = 0;
  // [limits] max_daily_loss: (NAV at start of the trading day - NAV) beyond this amount halts
  // trading until the next trading day (> 0).
  double max_daily_loss = 0;
  // [limits] max_orders_per_second: token-bucket refill rate for approved orders (> 0).
  double max_orders_per_second = 0;
  // [limits] order_burst: token-bucket size, i.e. approvals allowed back to back (integer >= 1).
  uint32_t order_burst = 0;
  // [limits] max_open_orders: largest number of in-flight orders (integer >= 1).
  uint32_t max_open_orders = 0;
  // [limits] stale_mark_seconds: a symbol whose last mark is older than this is untradeable (> 0).
  double stale_mark_seconds = 0;
  // [asset_class_caps] NAME = fraction: worst-case gross exposure of an asset class / NAV.
  // Key `default` applies to classes not listed; without it, unlisted classes are rejected.
  std::map<std::string, double> asset_class_caps;
  std::optional<double> asset_class_default_cap;
  // [sector_caps] NAME = fraction: as asset_class_caps, per sector.
  std::map<std::string, double> sector_caps;
  std::optional<double> sector_default_cap;
  // [restricted] symbols = A, B, ...: symbols that may not be traded at all.
  std::set<std::string> restricted_symbols;
};

// A symbol's classification. Orders must agree with it (else INVALID_INSTRUMENT).
struct Instrument {
  std::string asset_class;
  std::string sector;
};

// Engine sizing and behaviour. Fixed at start-up (a reload must not change these).
struct EngineOptions {
  // [engine] max_symbols: capacity of the preallocated symbol table (default 4096).
  uint32_t max_symbols = 4096;
  // [engine] order_id_memory: duplicate-detection window N for approved client order ids
  // (default 1048576). The last N approved ids are always remembered; older ones are forgotten
  // N at a time (a whole generation), so at most the last 2N are remembered. An id approved
  // more than 2N approvals ago is never a duplicate unless it is still in flight. Memory: three
  // hash tables of 8 * 2^ceil(log2(2N)) bytes each (48 MiB for the default).
  uint32_t order_id_memory = 1u << 20;
  // [engine] halt_allows_reducing: while HALTED, still approve orders that strictly reduce an
  // existing position (default true, as the desk's kill switch stops risk-increasing orders).
  bool halt_allows_reducing = true;
  // [engine] daily_reset_utc_hour: hour (0-23, UTC) at which a new trading day starts (default 0).
  uint32_t daily_reset_utc_hour = 0;
};

struct Config {
  // [account] initial_cash: cash at start-up; NAV = cash + sum(position * mark) (> 0).
  double initial_cash = 0;
  Limits limits;
  // [instruments] SYMBOL = asset_class, sector: fixed classification for known symbols. Symbols
  // not listed take the classification of their first approved order and keep it.
  std::map<std::string, Instrument> instruments;
  EngineOptions engine;
};

// Parses configuration text. `origin` (a file name) prefixes error messages.
Result<Config> ParseConfig(const std::string& text, const std::string& origin = "config");
// Reads and parses a configuration file.
Result<Config> LoadConfigFile(const std::string& path);
// OK when `next` is at least as tight as `current` in every limit and changes nothing that is not
// reloadable; otherwise FAILED_PRECONDITION naming the first offending key.
Status CheckTightenOnly(const Config& current, const Config& next);

// A symbol / class / sector name: 1..31 bytes of printable, non-space ASCII.
bool IsValidName(const char* p, size_t n);
inline constexpr size_t kMaxNameLen = 31;
inline constexpr size_t kMaxOrderIdLen = 64;

}  // namespace quorum_risk

#endif  // QUORUM_RISK_CONFIG_H_
