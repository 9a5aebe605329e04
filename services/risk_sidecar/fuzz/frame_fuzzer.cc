// libFuzzer target: arbitrary bytes through the frame parser, every payload decoder and the
// request handler (with a live engine), as the server would feed them from a socket.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "quorum_risk/clock.h"
#include "quorum_risk/engine.h"
#include "quorum_risk/handler.h"
#include "quorum_risk/protocol.h"

namespace {

using namespace quorum_risk;

Config FuzzConfig() {
  Config c;
  c.initial_cash = 1e6;
  Limits& l = c.limits;
  l.max_order_quantity = 1e4;
  l.max_order_notional = 1e6;
  l.price_collar = 0.5;
  l.max_position_quantity = 1e5;
  l.max_position_notional = 1e7;
  l.max_gross_exposure = 1e8;
  l.max_net_exposure = 1e8;
  l.max_drawdown = 0.5;
  l.max_daily_loss = 1e5;
  l.max_orders_per_second = 1e6;
  l.order_burst = 100;
  l.max_open_orders = 64;
  l.stale_mark_seconds = 60;
  l.asset_class_default_cap = 1.0;
  l.sector_default_cap = 1.0;
  c.engine.max_symbols = 64;
  c.engine.order_id_memory = 256;
  return c;
}

struct State {
  ManualClock clock;
  std::unique_ptr<RiskEngine> engine = std::move(RiskEngine::Create(FuzzConfig(), &clock)).value();
  Metrics metrics;
  RequestHandler handler{engine.get(), &metrics, [] { return Status::FailedPrecondition("fuzz: no reload"); }};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The engine persists across inputs (like a long-lived sidecar); the clock moves a little.
  static State* st = new State();
  st->clock.Advance(1'000'000);

  // 1. The parser on its own, at every prefix length of the first frame.
  protocol::Frame f = protocol::ParseFrame(data, size);
  if (f.status == protocol::FrameStatus::kOk && f.frame_size > size) __builtin_trap();

  // 2. Every decoder on the raw bytes (as if they were a payload).
  OrderRequest o;
  FillReport fill;
  std::string_view sv;
  double px;
  protocol::DecodeCheckOrder(data, size, &o);
  protocol::DecodeReportFill(data, size, &fill);
  protocol::DecodeReportMark(data, size, &sv, &px);
  protocol::DecodeOrderDone(data, size, &sv);
  protocol::DecodeGetState(data, size, &sv);

  // 3. The handler, fed in two chunks split at a data-dependent point, like a socket would.
  std::string out;
  bool close = false;
  size_t split = size > 0 ? data[0] % (size + 1) : 0;
  size_t used = st->handler.Consume(data, split, &out, &close);
  if (used > split) __builtin_trap();
  if (!close) {
    std::string rest(reinterpret_cast<const char*>(data + used), size - used);
    size_t used2 = st->handler.Consume(reinterpret_cast<const uint8_t*>(rest.data()), rest.size(), &out, &close);
    if (used2 > rest.size()) __builtin_trap();
  }
  // Every reply the handler produced must itself be a well-formed frame.
  size_t off = 0;
  while (off < out.size()) {
    protocol::Frame r = protocol::ParseFrame(reinterpret_cast<const uint8_t*>(out.data()) + off, out.size() - off);
    if (r.status != protocol::FrameStatus::kOk) __builtin_trap();
    off += r.frame_size;
  }
  return 0;
}
