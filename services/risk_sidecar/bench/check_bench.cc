// In-process cost of one pre-trade check (target <= 100 ns), with the real system clock.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "quorum_risk/clock.h"
#include "quorum_risk/engine.h"
#include "quorum_risk/handler.h"
#include "quorum_risk/protocol.h"

namespace {

using namespace quorum_risk;

constexpr int kSymbols = 128;

Config BenchConfig() {
  Config c;
  c.initial_cash = 1e9;
  Limits& l = c.limits;
  l.max_order_quantity = 1e6;
  l.max_order_notional = 1e9;
  l.price_collar = 0.05;
  l.max_position_quantity = 1e9;
  l.max_position_notional = 1e12;
  l.max_gross_exposure = 1e13;
  l.max_net_exposure = 1e13;
  l.max_drawdown = 0.2;
  l.max_daily_loss = 1e8;
  l.max_orders_per_second = 1e9;
  l.order_burst = 1'000'000;
  l.max_open_orders = 4096;
  l.stale_mark_seconds = 3600;
  l.asset_class_caps = {{"equity", 1.0}};
  l.sector_caps = {{"technology", 0.35}};
  l.sector_default_cap = 0.5;
  c.engine.order_id_memory = 1 << 16;
  return c;
}

struct Fixture {
  Fixture() {
    engine = std::move(RiskEngine::Create(BenchConfig(), SystemClock::Get())).value();
    for (int i = 0; i < kSymbols; ++i) {
      symbols.push_back("SYM" + std::to_string(i));
      engine->ReportMark(symbols.back(), 100.0);
    }
    ids.reserve(1 << 18);
    for (int i = 0; i < (1 << 18); ++i) ids.push_back("strategy-7/decision-" + std::to_string(100000000 + i));
  }
  OrderRequest Order(int64_t i) const {
    OrderRequest o;
    o.client_order_id = ids[static_cast<size_t>(i) % ids.size()];
    o.symbol = symbols[static_cast<size_t>(i) % kSymbols];
    o.asset_class = "equity";
    o.sector = "industrials";
    o.side = (i & 1) ? 1 : 2;
    o.quantity = 10;
    o.price = 100.5;
    return o;
  }
  std::unique_ptr<RiskEngine> engine;
  std::vector<std::string> symbols;
  std::vector<std::string> ids;
};

// Approved checks: every check runs every limit and records an in-flight order. Batches of 1024
// orders are released (OrderDone) outside the timed region.
void BM_CheckApproved(benchmark::State& state) {
  static Fixture* fx = new Fixture();
  static int64_t next = 0;  // ids repeat every 2^18 orders, beyond the 2^16 id memory (which
                            // remembers at most the last 2 * 2^16 ids)
  int in_batch = 0;
  int64_t batch_start = next;
  for (auto _ : state) {
    Verdict v = fx->engine->CheckOrder(fx->Order(next++));
    benchmark::DoNotOptimize(v);
    if (!v.approved) {
      state.SkipWithError(ReasonName(v.reason));
      break;
    }
    if (++in_batch == 1024) {
      state.PauseTiming();
      for (int64_t i = batch_start; i < next; ++i) fx->engine->OrderDone(fx->ids[static_cast<size_t>(i) % fx->ids.size()]);
      batch_start = next;
      in_batch = 0;
      state.ResumeTiming();
    }
  }
  for (int64_t i = batch_start; i < next; ++i) fx->engine->OrderDone(fx->ids[static_cast<size_t>(i) % fx->ids.size()]);
}
BENCHMARK(BM_CheckApproved);

// Rejected by the last limit evaluated (sector cap): the full evaluation without recording.
void BM_CheckRejectedAtLastLimit(benchmark::State& state) {
  Config c = BenchConfig();
  c.limits.sector_caps["technology"] = 0.0000001;
  auto engine = std::move(RiskEngine::Create(c, SystemClock::Get())).value();
  engine->ReportMark("AAPL", 100);
  OrderRequest o;
  o.client_order_id = "strategy-7/decision-123456789";
  o.symbol = "AAPL";
  o.asset_class = "equity";
  o.sector = "technology";
  o.side = 1;
  o.quantity = 1000;
  o.price = 100.5;
  for (auto _ : state) {
    Verdict v = engine->CheckOrder(o);
    benchmark::DoNotOptimize(v);
  }
  if (engine->CheckOrder(o).reason != Reason::kSectorCap) state.SkipWithError("expected SECTOR_CAP");
}
BENCHMARK(BM_CheckRejectedAtLastLimit);

// Rejected early (duplicate id).
void BM_CheckRejectedDuplicate(benchmark::State& state) {
  auto engine = std::move(RiskEngine::Create(BenchConfig(), SystemClock::Get())).value();
  engine->ReportMark("AAPL", 100);
  OrderRequest o;
  o.client_order_id = "strategy-7/decision-123456789";
  o.symbol = "AAPL";
  o.asset_class = "equity";
  o.sector = "technology";
  o.side = 1;
  o.quantity = 10;
  o.price = 100;
  engine->CheckOrder(o);
  for (auto _ : state) {
    Verdict v = engine->CheckOrder(o);
    benchmark::DoNotOptimize(v);
  }
  if (engine->CheckOrder(o).reason != Reason::kDuplicateOrderId) state.SkipWithError("expected DUPLICATE");
}
BENCHMARK(BM_CheckRejectedDuplicate);

// Frame in -> reply frame out through the request handler (what the server does per request,
// minus the two syscalls): decode, check (rejected at the last limit), encode, metrics.
void BM_HandleCheckFrame(benchmark::State& state) {
  Config c = BenchConfig();
  c.limits.sector_caps["technology"] = 0.0000001;
  auto engine = std::move(RiskEngine::Create(c, SystemClock::Get())).value();
  engine->ReportMark("AAPL", 100);
  Metrics metrics;
  RequestHandler handler(engine.get(), &metrics);
  OrderRequest o;
  o.client_order_id = "strategy-7/decision-123456789";
  o.symbol = "AAPL";
  o.asset_class = "equity";
  o.sector = "technology";
  o.side = 1;
  o.quantity = 1000;
  o.price = 100.5;
  std::string frame;
  protocol::EncodeCheckOrder(&frame, 1, o);
  std::string out;
  out.reserve(4096);
  bool close = false;
  for (auto _ : state) {
    out.clear();
    handler.Consume(reinterpret_cast<const uint8_t*>(frame.data()), frame.size(), &out, &close);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_HandleCheckFrame);

}  // namespace

BENCHMARK_MAIN();
