#include "quorum_risk/engine.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "tables.h"

namespace quorum_risk {

using internal::CopyBytes;
using internal::EqualViews;
using internal::HashBytes;
using internal::IdMemory;
using internal::Index;

const char* ModeName(Mode m) {
  switch (m) {
    case Mode::kActive: return "ACTIVE";
    case Mode::kReducing: return "REDUCING";
    case Mode::kHalted: return "HALTED";
  }
  return "UNKNOWN";
}

namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;
constexpr int64_t kNanosPerDay = 86'400 * kNanosPerSecond;
constexpr size_t kMaxGroups = 1024;
constexpr double kQtyEpsilon = 1e-9;

bool PositiveFinite(double v) { return v > 0 && v < HUGE_VAL; }
bool LenOk(std::string_view s, size_t max) { return !s.empty() && s.size() <= max; }

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

struct Group {
  std::string name;
  double cap = 0;       // fraction of NAV
  double exposure = 0;  // worst-case gross exposure of bound symbols
};

struct SymbolEntry {
  char name[kMaxNameLen + 1] = {};
  uint8_t len = 0;
  uint64_t hash = 0;
  bool restricted = false;
  bool bound = false;  // classification fixed (config or first approved order)
  bool has_mark = false;
  int32_t cls = -1;
  int32_t sector = -1;
  double position = 0;
  double open_buy = 0;
  double open_sell = 0;
  double mark = 0;  // last mark; a fill price stands in for valuation until the first mark
  int64_t mark_ns = 0;
  // Contributions currently included in the engine totals.
  double c_gross = 0, c_long = 0, c_short = 0, c_value = 0;

  std::string_view view() const { return {name, len}; }
};

struct OpenOrder {
  char id[kMaxOrderIdLen] = {};
  uint8_t len = 0;
  uint64_t hash = 0;
  int32_t sym = -1;
  uint8_t side = 0;
  double open_qty = 0;
  int32_t next_free = -1;

  std::string_view view() const { return {id, len}; }
};

std::optional<double> CapFor(const std::map<std::string, double>& caps, const std::optional<double>& dflt,
                             std::string_view name) {
  auto it = caps.find(std::string(name));
  if (it != caps.end()) return it->second;
  return dflt;
}

}  // namespace

struct RiskEngine::Impl {
  Impl(const Config& c, const Clock* clk)
      : cfg(c),
        clock(clk),
        sym_index(c.engine.max_symbols),
        orders(c.limits.max_open_orders),
        order_index(c.limits.max_open_orders),
        ids(c.engine.order_id_memory) {
    symbols.reserve(c.engine.max_symbols);
    for (size_t i = 0; i < orders.size(); ++i) {
      orders[i].next_free = (i + 1 < orders.size()) ? static_cast<int32_t>(i + 1) : -1;
    }
    free_head = orders.empty() ? -1 : 0;
    cash = c.initial_cash;
    peak_nav = day_start_nav = c.initial_cash;
    day_index = DayOf(clock->WallNanos());
    tokens = c.limits.order_burst;
    tokens_ns = clock->MonotonicNanos();
    CacheLimits();
  }

  Config cfg;
  const Clock* clock;
  std::vector<SymbolEntry> symbols;
  Index sym_index;
  std::vector<OpenOrder> orders;
  Index order_index;
  int32_t free_head = -1;
  uint32_t open_count = 0;
  IdMemory ids;
  std::vector<Group> classes, sectors;

  double cash = 0;
  double value_total = 0;  // sum position * mark
  double gross = 0;        // sum worst-case |position| * mark
  double net_long = 0;     // sum (position + open_buy) * mark
  double net_short = 0;    // sum (position - open_sell) * mark
  double peak_nav = 0;
  double day_start_nav = 0;
  int64_t day_index = 0;
  bool manual_halt = false;
  bool daily_halt = false;
  bool dd_lock = false;
  double tokens = 0;
  int64_t tokens_ns = 0;
  int64_t stale_ns = 0;
  uint32_t applies = 0;
  uint64_t version = 0;  // see state_version()

  void CacheLimits() { stale_ns = static_cast<int64_t>(std::llround(cfg.limits.stale_mark_seconds * 1e9)); }

  int64_t DayOf(int64_t wall_ns) const {
    return FloorDiv(wall_ns - static_cast<int64_t>(cfg.engine.daily_reset_utc_hour) * 3600 * kNanosPerSecond,
                    kNanosPerDay);
  }
  double Nav() const { return cash + value_total; }

  // ---- symbols and groups ----
  int32_t FindSymbol(std::string_view s, uint64_t h) const {
    return sym_index.Find(h, [&](int32_t id) { return EqualViews(symbols[static_cast<size_t>(id)].view(), s); });
  }
  // -1 when the table is full.
  int32_t FindOrAddSymbol(std::string_view s) {
    uint64_t h = HashBytes(s);
    int32_t id = FindSymbol(s, h);
    if (id >= 0) return id;
    if (symbols.size() >= cfg.engine.max_symbols) return -1;
    SymbolEntry e;
    std::memcpy(e.name, s.data(), s.size());
    e.len = static_cast<uint8_t>(s.size());
    e.hash = h;
    symbols.push_back(e);
    id = static_cast<int32_t>(symbols.size() - 1);
    sym_index.Insert(h, id);
    return id;
  }
  static int32_t FindGroup(const std::vector<Group>& g, std::string_view name) {
    for (size_t i = 0; i < g.size(); ++i) {
      if (g[i].name == name) return static_cast<int32_t>(i);
    }
    return -1;
  }
  // Finds or creates a group; -1 when it has no cap (unlisted, no default) or too many groups.
  int32_t InternGroup(std::vector<Group>* g, std::string_view name, const std::map<std::string, double>& caps,
                      const std::optional<double>& dflt) {
    int32_t i = FindGroup(*g, name);
    if (i >= 0) return i;
    std::optional<double> cap = CapFor(caps, dflt, name);
    if (!cap || g->size() >= kMaxGroups) return -1;
    g->push_back(Group{std::string(name), *cap, 0});
    return static_cast<int32_t>(g->size() - 1);
  }
  void RefreshGroupCaps() {
    for (Group& g : classes) {
      g.cap = CapFor(cfg.limits.asset_class_caps, cfg.limits.asset_class_default_cap, g.name).value_or(0.0);
    }
    for (Group& g : sectors) {
      g.cap = CapFor(cfg.limits.sector_caps, cfg.limits.sector_default_cap, g.name).value_or(0.0);
    }
    for (const auto& kv : cfg.limits.asset_class_caps) {
      InternGroup(&classes, kv.first, cfg.limits.asset_class_caps, cfg.limits.asset_class_default_cap);
    }
    for (const auto& kv : cfg.limits.sector_caps) {
      InternGroup(&sectors, kv.first, cfg.limits.sector_caps, cfg.limits.sector_default_cap);
    }
  }

  // ---- incremental totals ----
  __attribute__((always_inline)) void Unapply(SymbolEntry& s) {
    value_total -= s.c_value;
    gross -= s.c_gross;
    net_long -= s.c_long;
    net_short -= s.c_short;
    if (s.bound) {
      classes[static_cast<size_t>(s.cls)].exposure -= s.c_gross;
      sectors[static_cast<size_t>(s.sector)].exposure -= s.c_gross;
    }
  }
  __attribute__((always_inline)) void Apply(SymbolEntry& s) {
    const double m = s.mark;
    s.c_value = s.position * m;
    s.c_long = (s.position + s.open_buy) * m;
    s.c_short = (s.position - s.open_sell) * m;
    s.c_gross = std::max(std::fabs(s.position + s.open_buy), std::fabs(s.position - s.open_sell)) * m;
    value_total += s.c_value;
    gross += s.c_gross;
    net_long += s.c_long;
    net_short += s.c_short;
    if (s.bound) {
      classes[static_cast<size_t>(s.cls)].exposure += s.c_gross;
      sectors[static_cast<size_t>(s.sector)].exposure += s.c_gross;
    }
    if (++applies >= (1u << 16)) RecomputeTotals();
  }
  // Unapply + Apply for a new in-flight order (position and mark unchanged, so c_value is too).
  void AddOpen(SymbolEntry& s, bool buy, double q) {
    const double m = s.mark;
    (buy ? s.open_buy : s.open_sell) += q;
    const double c_long = (s.position + s.open_buy) * m;
    const double c_short = (s.position - s.open_sell) * m;
    const double c_gross = std::max(std::fabs(s.position + s.open_buy), std::fabs(s.position - s.open_sell)) * m;
    gross = gross - s.c_gross + c_gross;
    net_long = net_long - s.c_long + c_long;
    net_short = net_short - s.c_short + c_short;
    if (s.bound) {
      double& ce = classes[static_cast<size_t>(s.cls)].exposure;
      double& se = sectors[static_cast<size_t>(s.sector)].exposure;
      ce = ce - s.c_gross + c_gross;
      se = se - s.c_gross + c_gross;
    }
    s.c_long = c_long;
    s.c_short = c_short;
    s.c_gross = c_gross;
    if (++applies >= (1u << 16)) RecomputeTotals();
  }
  // Removes floating-point drift from the running sums.
  void RecomputeTotals() {
    applies = 0;
    value_total = gross = net_long = net_short = 0;
    for (Group& g : classes) g.exposure = 0;
    for (Group& g : sectors) g.exposure = 0;
    for (SymbolEntry& s : symbols) {
      value_total += s.c_value;
      gross += s.c_gross;
      net_long += s.c_long;
      net_short += s.c_short;
      if (s.bound) {
        classes[static_cast<size_t>(s.cls)].exposure += s.c_gross;
        sectors[static_cast<size_t>(s.sector)].exposure += s.c_gross;
      }
    }
  }

  // ---- NAV-driven states ----
  void RollDay() {
    int64_t d = DayOf(clock->WallNanos());
    if (d != day_index) {
      day_index = d;
      day_start_nav = Nav();
      daily_halt = false;
    }
  }
  void EvaluateNav() {
    double nav = Nav();
    if (nav > peak_nav) peak_nav = nav;
    if (peak_nav > 0 && (peak_nav - nav) / peak_nav > cfg.limits.max_drawdown) dd_lock = true;
    if (day_start_nav - nav > cfg.limits.max_daily_loss) daily_halt = true;
  }

  // ---- orders ----
  int32_t FindOrder(std::string_view id, uint64_t h) const {
    return order_index.Find(h, [&](int32_t i) { return EqualViews(orders[static_cast<size_t>(i)].view(), id); });
  }
  // Records an in-flight order (a free slot must exist) and remembers its id.
  __attribute__((always_inline)) void AddOrder(std::string_view id, uint64_t h, int32_t si, uint8_t side, double q) {
    const int32_t oi = free_head;
    OpenOrder& rec = orders[static_cast<size_t>(oi)];
    free_head = rec.next_free;
    CopyBytes(rec.id, id.data(), id.size());
    rec.len = static_cast<uint8_t>(id.size());
    rec.hash = h;
    rec.sym = si;
    rec.side = side;
    rec.open_qty = q;
    order_index.Insert(h, oi);
    ++open_count;
    ids.Insert(h);
    AddOpen(symbols[static_cast<size_t>(si)], side == static_cast<uint8_t>(Side::kBuy), q);
  }
  void RemoveOrder(int32_t oi) {
    OpenOrder& o = orders[static_cast<size_t>(oi)];
    order_index.Erase(o.hash, oi);
    o.next_free = free_head;
    o.len = 0;
    free_head = oi;
    --open_count;
  }

  void Refill(int64_t now) {
    if (now > tokens_ns) {
      tokens = std::min<double>(cfg.limits.order_burst,
                                tokens + static_cast<double>(now - tokens_ns) * cfg.limits.max_orders_per_second / 1e9);
      tokens_ns = now;
    }
  }

  Verdict Check(const OrderRequest& o);
  // The limits checked after the id, in their order of precedence: the first one `o` breaches, or kOk
  // (then `s` is the order's symbol). Changes nothing but the token refill up to `now`.
  Reason FirstBreach(const OrderRequest& o, const SymbolEntry* s, int64_t now);
  Reason Fill(const FillReport& f);
};

Verdict RiskEngine::Impl::Check(const OrderRequest& o) {
  auto reject = [](Reason r) { return Verdict{false, r}; };
  if ((o.side != 1 && o.side != 2) || !PositiveFinite(o.quantity) || !PositiveFinite(o.price) ||
      !LenOk(o.client_order_id, kMaxOrderIdLen) || !LenOk(o.symbol, kMaxNameLen) ||
      !LenOk(o.asset_class, kMaxNameLen) || !LenOk(o.sector, kMaxNameLen)) {
    return reject(Reason::kInvalidInstrument);
  }
  // The id tables are large and randomly accessed: start those cache misses first, then evaluate
  // every limit while they are on their way, and only then look the id up. A duplicate id still
  // takes precedence over any breach (evaluating the limits has no effect a rejection could show:
  // the token refill only accrues to `now`). The clock is read once per check, right after the
  // prefetches: the vDSO read is ordered (lfence; rdtsc), so here it waits for almost nothing and
  // overlaps the prefetches' latency. `now` is the time of the check for every limit that needs one
  // (staleness, rate).
  const uint64_t idh = HashBytes(o.client_order_id);
  ids.Prefetch(idh);
  order_index.Prefetch(idh);
  const uint64_t symh = HashBytes(o.symbol);  // hashed once, used for the lookup below
  sym_index.Prefetch(symh);
  const int64_t now = clock->MonotonicNanos();
  const int32_t si = FindSymbol(o.symbol, symh);
  SymbolEntry* s = si >= 0 ? &symbols[static_cast<size_t>(si)] : nullptr;
  Reason breach = FirstBreach(o, s, now);
  // Have the limits evaluated here, not sunk past the id lookup (whose result makes them moot when it
  // is a duplicate): the compiler would otherwise wait for the cache misses first.
  asm volatile("" : "+r"(breach));
  if (ids.Contains(idh) || FindOrder(o.client_order_id, idh) >= 0) return reject(Reason::kDuplicateOrderId);
  if (breach != Reason::kOk) return reject(breach);

  // Approve: bind the classification, record the in-flight order, remember the id.
  const Limits& L = cfg.limits;
  if (!s->bound) {
    int32_t ci = InternGroup(&classes, o.asset_class, L.asset_class_caps, L.asset_class_default_cap);
    int32_t ki = InternGroup(&sectors, o.sector, L.sector_caps, L.sector_default_cap);
    if (ci < 0 || ki < 0) return reject(Reason::kCapacity);
    Unapply(*s);
    s->bound = true;
    s->cls = ci;
    s->sector = ki;
    Apply(*s);
  }
  tokens -= 1.0;
  AddOrder(o.client_order_id, idh, si, o.side, o.quantity);
  return Verdict{true, Reason::kOk};
}

Reason RiskEngine::Impl::FirstBreach(const OrderRequest& o, const SymbolEntry* s, int64_t now) {
  const Limits& L = cfg.limits;
  const double q = o.quantity, p = o.price;
  if (s != nullptr && s->restricted) return Reason::kRestrictedSymbol;

  // Classification: bound symbols must match; otherwise the class and sector need a cap.
  double cls_cap, cls_exp, sec_cap, sec_exp;
  if (s != nullptr && s->bound) {
    const Group& c = classes[static_cast<size_t>(s->cls)];
    const Group& k = sectors[static_cast<size_t>(s->sector)];
    if (!EqualViews(c.name, o.asset_class) || !EqualViews(k.name, o.sector)) return Reason::kInvalidInstrument;
    cls_cap = c.cap;
    cls_exp = c.exposure - s->c_gross;
    sec_cap = k.cap;
    sec_exp = k.exposure - s->c_gross;
  } else {
    int32_t ci = FindGroup(classes, o.asset_class);
    if (ci >= 0) {
      cls_cap = classes[static_cast<size_t>(ci)].cap;
      cls_exp = classes[static_cast<size_t>(ci)].exposure;
    } else if (L.asset_class_default_cap) {
      cls_cap = *L.asset_class_default_cap;
      cls_exp = 0;
    } else {
      return Reason::kInvalidInstrument;
    }
    int32_t ki = FindGroup(sectors, o.sector);
    if (ki >= 0) {
      sec_cap = sectors[static_cast<size_t>(ki)].cap;
      sec_exp = sectors[static_cast<size_t>(ki)].exposure;
    } else if (L.sector_default_cap) {
      sec_cap = *L.sector_default_cap;
      sec_exp = 0;
    } else {
      return Reason::kInvalidInstrument;
    }
  }

  if (s == nullptr || !s->has_mark || now - s->mark_ns > stale_ns) return Reason::kStaleMark;
  const double m = s->mark;
  if (std::fabs(p - m) / m > L.price_collar) return Reason::kPriceCollar;
  if (q > L.max_order_quantity) return Reason::kMaxOrderQuantity;
  if (q * p > L.max_order_notional) return Reason::kMaxOrderNotional;
  Refill(now);
  if (tokens < 1.0) return Reason::kRateLimit;
  if (open_count >= L.max_open_orders || free_head < 0) return Reason::kMaxOpenOrders;

  const bool buy = o.side == static_cast<uint8_t>(Side::kBuy);
  // Risk-reducing is decided here, from the ledger: the order, together with every in-flight
  // order on the same side, can only move the filled position towards zero.
  const bool reducing = buy ? (s->position < 0 && s->open_buy + q <= -s->position)
                            : (s->position > 0 && s->open_sell + q <= s->position);
  if (manual_halt || daily_halt) {
    if (!reducing || !cfg.engine.halt_allows_reducing) {
      return manual_halt ? Reason::kTradingHalted : Reason::kDailyLoss;
    }
  }
  if (dd_lock && !reducing) return Reason::kReduceOnly;

  if (!reducing) {
    const double nb = s->open_buy + (buy ? q : 0.0);
    const double ns = s->open_sell + (buy ? 0.0 : q);
    const double worst = std::max(std::fabs(s->position + nb), std::fabs(s->position - ns));
    if (worst > L.max_position_quantity || worst * m > L.max_position_notional) return Reason::kMaxPosition;
    const double c_gross = worst * m;
    if (gross - s->c_gross + c_gross > L.max_gross_exposure) return Reason::kMaxGrossExposure;
    const double before = buy ? net_long : net_short;
    const double after = buy ? net_long + q * m : net_short - q * m;
    if (std::fabs(after) > L.max_net_exposure && std::fabs(after) > std::fabs(before)) {
      return Reason::kMaxNetExposure;
    }
    const double nav = Nav();
    if (nav <= 0 || (cls_exp + c_gross) / nav > cls_cap) return Reason::kAssetClassCap;
    if ((sec_exp + c_gross) / nav > sec_cap) return Reason::kSectorCap;
  }
  return Reason::kOk;
}

Reason RiskEngine::Impl::Fill(const FillReport& f) {
  if ((f.side != 1 && f.side != 2) || !PositiveFinite(f.quantity) || !PositiveFinite(f.price) ||
      !LenOk(f.client_order_id, kMaxOrderIdLen) || !IsValidName(f.symbol.data(), f.symbol.size())) {
    return Reason::kMalformed;
  }
  RollDay();
  Reason result = Reason::kOk;
  const bool buy = f.side == static_cast<uint8_t>(Side::kBuy);
  int32_t oi = FindOrder(f.client_order_id, HashBytes(f.client_order_id));
  int32_t si;
  if (oi >= 0) {
    OpenOrder& o = orders[static_cast<size_t>(oi)];
    if (symbols[static_cast<size_t>(o.sym)].view() != f.symbol || o.side != f.side) {
      result = Reason::kFillMismatch;  // applied to the reported symbol; the order is untouched
      oi = -1;
    }
  } else {
    result = Reason::kUnknownOrder;
  }
  si = oi >= 0 ? orders[static_cast<size_t>(oi)].sym : FindOrAddSymbol(f.symbol);
  if (si < 0) {
    // Cannot record a real position: stop trading rather than run with a wrong ledger.
    manual_halt = true;
    return Reason::kCapacity;
  }
  SymbolEntry& s = symbols[static_cast<size_t>(si)];
  Unapply(s);
  if (oi >= 0) {
    OpenOrder& o = orders[static_cast<size_t>(oi)];
    double released = std::min(f.quantity, o.open_qty);
    if (f.quantity > o.open_qty + kQtyEpsilon) result = Reason::kFillMismatch;  // over-fill
    o.open_qty -= released;
    double& side_open = buy ? s.open_buy : s.open_sell;
    side_open -= released;
    if (o.open_qty <= kQtyEpsilon) {
      side_open -= o.open_qty;
      RemoveOrder(oi);
    }
    if (side_open < kQtyEpsilon) side_open = 0;
  }
  s.position += buy ? f.quantity : -f.quantity;
  if (std::fabs(s.position) < kQtyEpsilon) s.position = 0;
  cash += buy ? -f.quantity * f.price : f.quantity * f.price;
  if (!s.has_mark) s.mark = f.price;  // valuation only; the symbol stays untradeable until marked
  Apply(s);
  EvaluateNav();
  return result;
}

// ---------------------------------------------------------------------------------------------

RiskEngine::RiskEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RiskEngine::~RiskEngine() = default;

Result<std::unique_ptr<RiskEngine>> RiskEngine::Create(const Config& config, const Clock* clock) {
  if (clock == nullptr) return Status::InvalidArgument("clock is null");
  if (config.limits.max_open_orders == 0 || config.engine.max_symbols == 0 || config.engine.order_id_memory == 0) {
    return Status::InvalidArgument("table sizes must be positive");
  }
  auto impl = std::make_unique<Impl>(config, clock);
  impl->RefreshGroupCaps();
  for (const std::string& sym : config.limits.restricted_symbols) {
    int32_t si = impl->FindOrAddSymbol(sym);
    if (si < 0) return Status::ResourceExhausted("[engine] max_symbols too small");
    impl->symbols[static_cast<size_t>(si)].restricted = true;
  }
  for (const auto& kv : config.instruments) {
    int32_t si = impl->FindOrAddSymbol(kv.first);
    int32_t ci = impl->InternGroup(&impl->classes, kv.second.asset_class, config.limits.asset_class_caps,
                                   config.limits.asset_class_default_cap);
    int32_t ki = impl->InternGroup(&impl->sectors, kv.second.sector, config.limits.sector_caps,
                                   config.limits.sector_default_cap);
    if (si < 0) return Status::ResourceExhausted("[engine] max_symbols too small");
    if (ci < 0) {
      return Status::InvalidArgument("[instruments] " + kv.first + ": asset class '" + kv.second.asset_class +
                                     "' has no cap in [asset_class_caps] and there is no default");
    }
    if (ki < 0) {
      return Status::InvalidArgument("[instruments] " + kv.first + ": sector '" + kv.second.sector +
                                     "' has no cap in [sector_caps] and there is no default");
    }
    SymbolEntry& s = impl->symbols[static_cast<size_t>(si)];
    s.bound = true;
    s.cls = ci;
    s.sector = ki;
  }
  return std::unique_ptr<RiskEngine>(new RiskEngine(std::move(impl)));
}

Verdict RiskEngine::CheckOrder(const OrderRequest& order) {
  Verdict v = impl_->Check(order);
  impl_->version += v.approved;
  return v;
}

Reason RiskEngine::ReportFill(const FillReport& fill) {
  ++impl_->version;
  return impl_->Fill(fill);
}

Reason RiskEngine::OrderDone(std::string_view id) {
  Impl& m = *impl_;
  if (!LenOk(id, kMaxOrderIdLen)) return Reason::kMalformed;
  int32_t oi = m.FindOrder(id, HashBytes(id));
  if (oi < 0) return Reason::kUnknownOrder;
  OpenOrder& o = m.orders[static_cast<size_t>(oi)];
  SymbolEntry& s = m.symbols[static_cast<size_t>(o.sym)];
  m.Unapply(s);
  double& side_open = o.side == static_cast<uint8_t>(Side::kBuy) ? s.open_buy : s.open_sell;
  side_open -= o.open_qty;
  if (side_open < kQtyEpsilon) side_open = 0;
  m.Apply(s);
  m.RemoveOrder(oi);
  ++m.version;
  return Reason::kOk;
}

Reason RiskEngine::ReportMark(std::string_view symbol, double price) { return RestoreMark(symbol, price, 0); }

Reason RiskEngine::RestoreMark(std::string_view symbol, double price, int64_t age_ns) {
  Impl& m = *impl_;
  if (!PositiveFinite(price) || !IsValidName(symbol.data(), symbol.size()) || age_ns < 0) return Reason::kMalformed;
  m.RollDay();
  int32_t si = m.FindOrAddSymbol(symbol);
  if (si < 0) return Reason::kCapacity;
  SymbolEntry& s = m.symbols[static_cast<size_t>(si)];
  const int64_t received_ns = m.clock->MonotonicNanos() - age_ns;
  // A restored mark never replaces a newer one (a live mark, age 0, always replaces: time only moves on).
  if (age_ns > 0 && s.has_mark && s.mark_ns >= received_ns) return Reason::kOk;
  m.Unapply(s);
  s.mark = price;
  s.has_mark = true;
  s.mark_ns = received_ns;
  m.Apply(s);
  m.EvaluateNav();
  ++m.version;
  return Reason::kOk;
}

void RiskEngine::Halt() {
  impl_->manual_halt = true;
  ++impl_->version;
}

Reason RiskEngine::Resume() {
  Impl& m = *impl_;
  ++m.version;
  m.RollDay();
  m.manual_halt = false;
  m.dd_lock = false;
  m.peak_nav = m.Nav();
  return m.daily_halt ? Reason::kDailyLoss : Reason::kOk;
}

Status RiskEngine::Reload(const Config& next) {
  Impl& m = *impl_;
  Status s = CheckTightenOnly(m.cfg, next);
  if (!s.ok()) return s;
  // Validate everything that can fail before changing anything.
  size_t new_symbols = 0;
  for (const std::string& sym : next.limits.restricted_symbols) {
    if (m.FindSymbol(sym, HashBytes(sym)) < 0) ++new_symbols;
  }
  for (const auto& kv : next.instruments) {
    int32_t si = m.FindSymbol(kv.first, HashBytes(kv.first));
    if (si < 0) {
      ++new_symbols;
    } else {
      const SymbolEntry& e = m.symbols[static_cast<size_t>(si)];
      if (e.bound && (m.classes[static_cast<size_t>(e.cls)].name != kv.second.asset_class ||
                      m.sectors[static_cast<size_t>(e.sector)].name != kv.second.sector)) {
        return Status::FailedPrecondition("[instruments] " + kv.first +
                                          " conflicts with the classification it already trades under");
      }
    }
    if (!CapFor(next.limits.asset_class_caps, next.limits.asset_class_default_cap, kv.second.asset_class) ||
        !CapFor(next.limits.sector_caps, next.limits.sector_default_cap, kv.second.sector)) {
      return Status::InvalidArgument("[instruments] " + kv.first + ": class or sector has no cap");
    }
  }
  if (m.symbols.size() + new_symbols > m.cfg.engine.max_symbols) {
    return Status::ResourceExhausted("[engine] max_symbols too small for the new configuration");
  }
  m.Refill(m.clock->MonotonicNanos());
  m.cfg = next;
  m.CacheLimits();
  m.tokens = std::min<double>(m.tokens, next.limits.order_burst);
  m.RefreshGroupCaps();
  for (const std::string& sym : next.limits.restricted_symbols) {
    m.symbols[static_cast<size_t>(m.FindOrAddSymbol(sym))].restricted = true;
  }
  for (const auto& kv : next.instruments) {
    SymbolEntry& e = m.symbols[static_cast<size_t>(m.FindOrAddSymbol(kv.first))];
    if (!e.bound) {
      int32_t ci = m.InternGroup(&m.classes, kv.second.asset_class, next.limits.asset_class_caps,
                                 next.limits.asset_class_default_cap);
      int32_t ki =
          m.InternGroup(&m.sectors, kv.second.sector, next.limits.sector_caps, next.limits.sector_default_cap);
      if (ci >= 0 && ki >= 0) {
        m.Unapply(e);
        e.bound = true;
        e.cls = ci;
        e.sector = ki;
        m.Apply(e);
      }
    }
  }
  m.EvaluateNav();
  return Status::Ok();
}

Mode RiskEngine::mode() const {
  const Impl& m = *impl_;
  if (m.manual_halt || m.daily_halt) return Mode::kHalted;
  if (m.dd_lock) return Mode::kReducing;
  return Mode::kActive;
}

const Config& RiskEngine::config() const { return impl_->cfg; }

EngineState RiskEngine::State(std::string_view symbol) const {
  const Impl& m = *impl_;
  EngineState st;
  st.mode = mode();
  st.manual_halt = m.manual_halt;
  st.daily_loss_halt = m.daily_halt;
  st.drawdown_reduce_only = m.dd_lock;
  st.open_orders = m.open_count;
  st.symbols = static_cast<uint32_t>(m.symbols.size());
  st.cash = m.cash;
  st.nav = m.Nav();
  st.peak_nav = m.peak_nav;
  st.day_start_nav = m.day_start_nav;
  st.gross_exposure = m.gross;
  st.net_long = m.net_long;
  st.net_short = m.net_short;
  if (!symbol.empty() && symbol.size() <= kMaxNameLen) {
    int32_t si = m.FindSymbol(symbol, HashBytes(symbol));
    if (si >= 0) {
      const SymbolEntry& s = m.symbols[static_cast<size_t>(si)];
      st.symbol_found = true;
      st.position = s.position;
      st.open_buy = s.open_buy;
      st.open_sell = s.open_sell;
      st.mark = s.mark;
      st.mark_age_ns = s.has_mark ? m.clock->MonotonicNanos() - s.mark_ns : -1;
    }
  }
  return st;
}

uint64_t RiskEngine::state_version() const { return impl_->version; }

StateImage RiskEngine::ExportState() const {
  const Impl& m = *impl_;
  StateImage out;
  out.cash = m.cash;
  out.peak_nav = m.peak_nav;
  out.day_start_nav = m.day_start_nav;
  out.day_index = m.day_index;
  out.manual_halt = m.manual_halt;
  out.daily_halt = m.daily_halt;
  out.drawdown_reduce_only = m.dd_lock;
  const int64_t now = m.clock->MonotonicNanos();
  for (const SymbolEntry& s : m.symbols) {
    if (s.position == 0 && !s.has_mark && !s.bound) continue;
    SavedSymbol e{std::string(s.view()), s.position, s.mark, s.has_mark, s.has_mark ? now - s.mark_ns : 0, "", ""};
    if (s.bound) {
      e.asset_class = m.classes[static_cast<size_t>(s.cls)].name;
      e.sector = m.sectors[static_cast<size_t>(s.sector)].name;
    }
    out.symbols.push_back(std::move(e));
  }
  for (const OpenOrder& o : m.orders) {
    if (o.len == 0) continue;  // a free slot
    out.orders.push_back({std::string(o.view()), std::string(m.symbols[static_cast<size_t>(o.sym)].view()), o.side,
                          o.open_qty});
  }
  return out;
}

Status RiskEngine::ImportState(const StateImage& image, int64_t elapsed_ns) {
  Impl& m = *impl_;
  if (m.version != 0 || m.open_count != 0) {
    return Status::FailedPrecondition("a state can only be imported before the first request");
  }
  // Validate everything first.
  size_t new_symbols = 0;
  for (const SavedSymbol& e : image.symbols) {
    if (!IsValidName(e.name.data(), e.name.size()) || !std::isfinite(e.position) || !(e.mark >= 0) ||
        !std::isfinite(e.mark) || (e.has_mark && (e.mark <= 0 || e.mark_age_ns < 0)) ||
        e.asset_class.empty() != e.sector.empty() || e.asset_class.size() > kMaxNameLen ||
        e.sector.size() > kMaxNameLen) {
      return Status::InvalidArgument("symbol " + e.name + ": invalid entry");
    }
    if (m.FindSymbol(e.name, HashBytes(e.name)) < 0) ++new_symbols;
  }
  if (m.symbols.size() + new_symbols > m.cfg.engine.max_symbols) {
    return Status::ResourceExhausted("[engine] max_symbols is smaller than the saved symbols");
  }
  if (image.orders.size() > m.orders.size()) {
    return Status::ResourceExhausted("[limits] max_open_orders is smaller than the saved in-flight orders");
  }
  for (const SavedOrder& o : image.orders) {
    bool known = std::any_of(image.symbols.begin(), image.symbols.end(),
                             [&](const SavedSymbol& e) { return e.name == o.symbol; });
    if (!LenOk(o.client_order_id, kMaxOrderIdLen) || !known || (o.side != 1 && o.side != 2) ||
        !PositiveFinite(o.open_qty)) {
      return Status::InvalidArgument("order " + o.client_order_id + ": invalid entry");
    }
  }
  if (!std::isfinite(image.cash) || !std::isfinite(image.peak_nav) || !std::isfinite(image.day_start_nav)) {
    return Status::InvalidArgument("ledger: cash and NAVs must be finite");
  }
  // Apply.
  const int64_t now = m.clock->MonotonicNanos();
  for (const SavedSymbol& e : image.symbols) {
    SymbolEntry& s = m.symbols[static_cast<size_t>(m.FindOrAddSymbol(e.name))];
    m.Unapply(s);
    s.position = e.position;
    s.mark = e.mark;
    s.has_mark = e.has_mark;
    s.mark_ns = now - e.mark_age_ns - std::max<int64_t>(elapsed_ns, 0);
    if (!s.bound && !e.asset_class.empty()) {
      const Limits& L = m.cfg.limits;
      int32_t ci = m.InternGroup(&m.classes, e.asset_class, L.asset_class_caps, L.asset_class_default_cap);
      int32_t ki = m.InternGroup(&m.sectors, e.sector, L.sector_caps, L.sector_default_cap);
      if (ci >= 0 && ki >= 0) {
        s.bound = true;
        s.cls = ci;
        s.sector = ki;
      }
    }
    m.Apply(s);
  }
  for (const SavedOrder& o : image.orders) {
    m.AddOrder(o.client_order_id, HashBytes(o.client_order_id), m.FindSymbol(o.symbol, HashBytes(o.symbol)), o.side,
               o.open_qty);
  }
  m.cash = image.cash;
  m.peak_nav = image.peak_nav;
  m.day_start_nav = image.day_start_nav;
  m.day_index = image.day_index;
  m.manual_halt = image.manual_halt;
  m.daily_halt = image.daily_halt;
  m.dd_lock = image.drawdown_reduce_only;
  m.RecomputeTotals();
  m.RollDay();  // the trading day may have changed while the sidecar was down
  m.EvaluateNav();
  ++m.version;
  return Status::Ok();
}

}  // namespace quorum_risk
