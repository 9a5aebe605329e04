// The risk engine: hard pre-trade limits over its own ledger. Single-threaded; not thread-safe.
//
// The check path (CheckOrder) does not allocate once a symbol has been seen: symbols, in-flight
// orders and remembered order ids live in fixed-capacity open-addressing tables sized at Create().
#ifndef QUORUM_RISK_ENGINE_H_
#define QUORUM_RISK_ENGINE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "quorum_risk/clock.h"
#include "quorum_risk/config.h"
#include "quorum_risk/reason.h"
#include "quorum_risk/status.h"

namespace quorum_risk {

enum class Side : uint8_t { kBuy = 1, kSell = 2 };

// ACTIVE -> REDUCING (drawdown: reduce-only) -> HALTED (manual halt or daily loss).
enum class Mode : uint8_t { kActive = 0, kReducing = 1, kHalted = 2 };
const char* ModeName(Mode m);

// An order to check. Views must stay valid for the duration of the call only.
struct OrderRequest {
  std::string_view client_order_id;  // 1..64 bytes, unique per order
  std::string_view symbol;           // 1..31 bytes
  std::string_view asset_class;      // 1..31 bytes, e.g. "equity", "crypto"
  std::string_view sector;           // 1..31 bytes
  uint8_t side = 0;                  // Side::kBuy or Side::kSell
  double quantity = 0;               // > 0, finite
  double price = 0;                  // limit / reference price, > 0, finite
};

struct Verdict {
  bool approved = false;
  Reason reason = Reason::kMalformed;
};

struct FillReport {
  std::string_view client_order_id;
  std::string_view symbol;
  uint8_t side = 0;
  double quantity = 0;  // this fill's quantity (> 0)
  double price = 0;     // this fill's price (> 0)
};

// A read-only snapshot of the engine's state (and of one symbol, when asked).
struct EngineState {
  Mode mode = Mode::kActive;
  bool manual_halt = false;
  bool daily_loss_halt = false;
  bool drawdown_reduce_only = false;
  uint32_t open_orders = 0;
  uint32_t symbols = 0;
  double cash = 0;
  double nav = 0;
  double peak_nav = 0;
  double day_start_nav = 0;
  double gross_exposure = 0;  // worst-case, counting in-flight orders
  double net_long = 0;        // sum (position + open buys) * mark
  double net_short = 0;       // sum (position - open sells) * mark
  // Per-symbol detail, when a symbol was asked for and is known.
  bool symbol_found = false;
  double position = 0;
  double open_buy = 0;
  double open_sell = 0;
  double mark = 0;
  int64_t mark_age_ns = -1;  // -1: never marked
};

// What a restarted sidecar must not forget (ExportState / ImportState; the file format is state_file.h).
// Not in it: the duplicate-id memory of finished orders and the order-rate bucket.
struct SavedSymbol {
  std::string name;
  double position = 0;
  double mark = 0;            // the last mark (a fill price until the first mark)
  bool has_mark = false;
  int64_t mark_age_ns = 0;    // when has_mark: the mark's age at the export
  std::string asset_class;    // empty: not bound to a classification yet
  std::string sector;
};
struct SavedOrder {
  std::string client_order_id;
  std::string symbol;
  uint8_t side = 0;
  double open_qty = 0;
};
struct StateImage {
  double cash = 0;
  double peak_nav = 0;
  double day_start_nav = 0;
  int64_t day_index = 0;  // trading day (daily_reset_utc_hour) of day_start_nav
  bool manual_halt = false;
  bool daily_halt = false;
  bool drawdown_reduce_only = false;
  std::vector<SavedSymbol> symbols;  // those with a position, a mark or a classification
  std::vector<SavedOrder> orders;    // in flight
};

class RiskEngine {
 public:
  // Validates sizes and preallocates every table. `clock` must outlive the engine.
  static Result<std::unique_ptr<RiskEngine>> Create(const Config& config, const Clock* clock);
  ~RiskEngine();
  RiskEngine(const RiskEngine&) = delete;
  RiskEngine& operator=(const RiskEngine&) = delete;

  // Pre-trade check. On approval the order is recorded as in-flight and its id remembered.
  Verdict CheckOrder(const OrderRequest& order);
  // A (partial) fill. Always applied to the position and cash (the fill happened). Returns OK,
  // UNKNOWN_ORDER (no such in-flight order), FILL_MISMATCH (symbol/side differ from the order,
  // or more than the open quantity) or MALFORMED (nothing applied).
  Reason ReportFill(const FillReport& fill);
  // The order will not fill further (cancelled, expired, rejected by the venue): releases its
  // remaining in-flight quantity. OK or UNKNOWN_ORDER.
  Reason OrderDone(std::string_view client_order_id);
  // Last price for a symbol. OK, MALFORMED (bad price/symbol) or CAPACITY (symbol table full).
  Reason ReportMark(std::string_view symbol, double price);
  // A mark the client received `age_ns` ago (a restarted sidecar gets its client's last marks back):
  // it counts as that old for stale_mark_seconds, and it never replaces a newer mark (then nothing
  // changes). OK, MALFORMED (bad price/symbol, negative age) or CAPACITY.
  Reason RestoreMark(std::string_view symbol, double price, int64_t age_ns);
  // Kill switch: stops every risk-increasing order until Resume().
  void Halt();
  // Clears a manual halt and the drawdown reduce-only lock (re-basing peak NAV on current NAV).
  // A daily-loss halt persists until the next trading day: returns DAILY_LOSS then, else OK.
  Reason Resume();
  // Replaces the limits if `next` only tightens them (see CheckTightenOnly); else the old limits
  // stay and the refusal is returned.
  Status Reload(const Config& next);
  EngineState State(std::string_view symbol = {}) const;
  // The ledger, halts and in-flight orders (marks with their age now).
  StateImage ExportState() const;
  // Puts an exported state into an engine that has handled no request yet; each mark is `elapsed_ns` older
  // than at the export (the time the sidecar was down). The trading day rolls if it changed meanwhile. A
  // symbol whose classification has no cap any more stays unbound. Validates everything before changing
  // anything: FailedPrecondition after a request, InvalidArgument naming a bad entry, ResourceExhausted when
  // a table is too small.
  Status ImportState(const StateImage& image, int64_t elapsed_ns);
  // Changes with every request that changes what ExportState returns (a server saves only then).
  uint64_t state_version() const;
  Mode mode() const;
  const Config& config() const;

 private:
  struct Impl;
  explicit RiskEngine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace quorum_risk

#endif  // QUORUM_RISK_ENGINE_H_
