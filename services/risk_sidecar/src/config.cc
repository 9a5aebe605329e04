#include "quorum_risk/config.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <vector>

namespace quorum_risk {
namespace {

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
  return s.substr(b, e - b);
}

std::string FormatDouble(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

bool ParseDouble(const std::string& s, double* out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || end != s.c_str() + s.size() || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

bool ParseUint(const std::string& s, uint32_t* out) {
  if (s.empty() || s.size() > 10) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > 0xFFFFFFFFull) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream is(s);
  while (std::getline(is, cur, ',')) out.push_back(Trim(cur));
  return out;
}

// One scalar key: how to parse and validate it, where to store it.
struct KeySpec {
  const char* section;
  const char* key;
  bool required;
  // Parses `value` into the config; returns an empty string or a description of the problem.
  std::function<std::string(const std::string& value, Config*)> parse;
};


template <typename F>
std::function<std::string(const std::string&, Config*)> DoubleField(F field, double lo_exclusive,
                                                                    double hi_inclusive) {
  return [field, lo_exclusive, hi_inclusive](const std::string& v, Config* c) -> std::string {
    double d;
    if (!ParseDouble(v, &d)) return "expected a finite number, got '" + v + "'";
    if (!(d > lo_exclusive) || !(d <= hi_inclusive)) {
      return "value " + v + " out of range (" + FormatDouble(lo_exclusive) + ", " +
             FormatDouble(hi_inclusive) + "]";
    }
    field(c) = d;
    return "";
  };
}

template <typename F>
std::function<std::string(const std::string&, Config*)> UintField(F field, uint32_t lo, uint32_t hi) {
  return [field, lo, hi](const std::string& v, Config* c) -> std::string {
    uint32_t u;
    if (!ParseUint(v, &u)) return "expected a non-negative integer, got '" + v + "'";
    if (u < lo || u > hi) {
      return "value " + v + " out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    }
    field(c) = u;
    return "";
  };
}

const std::vector<KeySpec>& Specs() {
  constexpr double kInf = INFINITY;
  static const std::vector<KeySpec> specs = {
      {"account", "initial_cash", true, DoubleField([](Config* c) -> double& { return c->initial_cash; }, 0, kInf)},
      {"limits", "max_order_quantity", true, DoubleField([](Config* c) -> double& { return c->limits.max_order_quantity; }, 0, kInf)},
      {"limits", "max_order_notional", true, DoubleField([](Config* c) -> double& { return c->limits.max_order_notional; }, 0, kInf)},
      {"limits", "price_collar", true, DoubleField([](Config* c) -> double& { return c->limits.price_collar; }, 0, 10)},
      {"limits", "max_position_quantity", true, DoubleField([](Config* c) -> double& { return c->limits.max_position_quantity; }, 0, kInf)},
      {"limits", "max_position_notional", true, DoubleField([](Config* c) -> double& { return c->limits.max_position_notional; }, 0, kInf)},
      {"limits", "max_gross_exposure", true, DoubleField([](Config* c) -> double& { return c->limits.max_gross_exposure; }, 0, kInf)},
      {"limits", "max_net_exposure", true, DoubleField([](Config* c) -> double& { return c->limits.max_net_exposure; }, 0, kInf)},
      {"limits", "max_drawdown", true, DoubleField([](Config* c) -> double& { return c->limits.max_drawdown; }, 0, 1)},
      {"limits", "max_daily_loss", true, DoubleField([](Config* c) -> double& { return c->limits.max_daily_loss; }, 0, kInf)},
      {"limits", "max_orders_per_second", true, DoubleField([](Config* c) -> double& { return c->limits.max_orders_per_second; }, 0, 1e9)},
      {"limits", "order_burst", true, UintField([](Config* c) -> uint32_t& { return c->limits.order_burst; }, 1, 1000000)},
      {"limits", "max_open_orders", true, UintField([](Config* c) -> uint32_t& { return c->limits.max_open_orders; }, 1, 1000000)},
      {"limits", "stale_mark_seconds", true, DoubleField([](Config* c) -> double& { return c->limits.stale_mark_seconds; }, 0, 86400)},
      {"engine", "max_symbols", false, UintField([](Config* c) -> uint32_t& { return c->engine.max_symbols; }, 1, 1000000)},
      {"engine", "order_id_memory", false, UintField([](Config* c) -> uint32_t& { return c->engine.order_id_memory; }, 1, 1u << 26)},
      {"engine", "daily_reset_utc_hour", false, UintField([](Config* c) -> uint32_t& { return c->engine.daily_reset_utc_hour; }, 0, 23)},
      {"engine", "halt_allows_reducing", false,
       [](const std::string& v, Config* c) -> std::string {
         if (v == "true") c->engine.halt_allows_reducing = true;
         else if (v == "false") c->engine.halt_allows_reducing = false;
         else return "expected true or false, got '" + v + "'";
         return "";
       }},
  };
  return specs;
}

}  // namespace

bool IsValidName(const char* p, size_t n) {
  if (n == 0 || n > kMaxNameLen) return false;
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(p[i]);
    if (c < 0x21 || c > 0x7E) return false;
  }
  return true;
}

Result<Config> ParseConfig(const std::string& text, const std::string& origin) {
  Config cfg;
  std::set<std::string> seen;  // "section.key"
  std::string section;
  std::istringstream in(text);
  std::string raw;
  int line_no = 0;
  auto err = [&](const std::string& what) {
    return Status::InvalidArgument(origin + ":" + std::to_string(line_no) + ": " + what);
  };
  auto valid_name = [](const std::string& s) { return IsValidName(s.data(), s.size()); };

  while (std::getline(in, raw)) {
    ++line_no;
    std::string line = raw;
    size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    line = Trim(line);
    if (line.empty()) continue;
    if (line.front() == '[') {
      if (line.back() != ']') return err("malformed section header '" + line + "'");
      section = Trim(line.substr(1, line.size() - 2));
      static const std::set<std::string> kSections = {"account", "limits", "asset_class_caps", "sector_caps",
                                                      "restricted", "instruments", "engine"};
      if (!kSections.count(section)) return err("unknown section [" + section + "]");
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string::npos) return err("expected 'key = value', got '" + line + "'");
    std::string key = Trim(line.substr(0, eq));
    std::string value = Trim(line.substr(eq + 1));
    if (section.empty()) return err("key '" + key + "' outside any section");
    std::string full = "[" + section + "] " + key;
    if (key.empty()) return err("empty key in [" + section + "]");
    if (!seen.insert(section + "." + key).second) return err("duplicate key " + full);

    if (section == "asset_class_caps" || section == "sector_caps") {
      double d;
      if (!ParseDouble(value, &d) || d < 0 || d > 100) {
        return err(full + ": expected a fraction of NAV in [0, 100], got '" + value + "'");
      }
      bool asset = section == "asset_class_caps";
      if (key == "default") {
        (asset ? cfg.limits.asset_class_default_cap : cfg.limits.sector_default_cap) = d;
      } else {
        if (!valid_name(key)) return err(full + ": invalid name (1-31 printable ASCII, no spaces)");
        (asset ? cfg.limits.asset_class_caps : cfg.limits.sector_caps)[key] = d;
      }
      continue;
    }
    if (section == "restricted") {
      if (key != "symbols") return err("unknown key " + full);
      if (value.empty()) continue;
      for (const std::string& s : SplitComma(value)) {
        if (!valid_name(s)) return err(full + ": invalid symbol '" + s + "'");
        cfg.limits.restricted_symbols.insert(s);
      }
      continue;
    }
    if (section == "instruments") {
      if (!valid_name(key)) return err(full + ": invalid symbol");
      std::vector<std::string> parts = SplitComma(value);
      if (parts.size() != 2 || !valid_name(parts[0]) || !valid_name(parts[1])) {
        return err(full + ": expected 'asset_class, sector', got '" + value + "'");
      }
      cfg.instruments[key] = Instrument{parts[0], parts[1]};
      continue;
    }
    const KeySpec* spec = nullptr;
    for (const KeySpec& s : Specs()) {
      if (section == s.section && key == s.key) spec = &s;
    }
    if (spec == nullptr) return err("unknown key " + full);
    std::string problem = spec->parse(value, &cfg);
    if (!problem.empty()) return err(full + ": " + problem);
  }
  line_no = 0;
  for (const KeySpec& s : Specs()) {
    if (s.required && !seen.count(std::string(s.section) + "." + s.key)) {
      return Status::InvalidArgument(origin + ": missing required key [" + s.section + "] " + s.key);
    }
  }
  if (cfg.limits.max_open_orders > cfg.engine.order_id_memory) {
    return Status::InvalidArgument(origin + ": [engine] order_id_memory must be >= [limits] max_open_orders");
  }
  if (cfg.instruments.size() + cfg.limits.restricted_symbols.size() > cfg.engine.max_symbols) {
    return Status::InvalidArgument(origin + ": [engine] max_symbols is smaller than the configured symbols");
  }
  return cfg;
}

Result<Config> LoadConfigFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::NotFound("cannot open config file '" + path + "'");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return Status::IoError("error reading config file '" + path + "'");
  return ParseConfig(ss.str(), path);
}

namespace {

Status Loosens(const std::string& key, double from, double to) {
  return Status::FailedPrecondition(key + " would loosen from " + FormatDouble(from) + " to " + FormatDouble(to));
}

// Effective cap for `name`: listed value, else default, else 0 (unlisted and no default = forbidden).
double EffectiveCap(const std::map<std::string, double>& caps, const std::optional<double>& dflt,
                    const std::string& name) {
  auto it = caps.find(name);
  if (it != caps.end()) return it->second;
  return dflt.value_or(0.0);
}

Status CheckCaps(const char* section, const std::map<std::string, double>& old_caps,
                 const std::optional<double>& old_default, const std::map<std::string, double>& new_caps,
                 const std::optional<double>& new_default) {
  double od = old_default.value_or(0.0), nd = new_default.value_or(0.0);
  if (nd > od) return Loosens(std::string("[") + section + "] default", od, nd);
  std::set<std::string> names;
  for (const auto& kv : old_caps) names.insert(kv.first);
  for (const auto& kv : new_caps) names.insert(kv.first);
  for (const std::string& n : names) {
    double o = EffectiveCap(old_caps, old_default, n), v = EffectiveCap(new_caps, new_default, n);
    if (v > o) return Loosens(std::string("[") + section + "] " + n, o, v);
  }
  return Status::Ok();
}

}  // namespace

Status CheckTightenOnly(const Config& cur, const Config& next) {
  const Limits& a = cur.limits;
  const Limits& b = next.limits;
  struct Pair {
    const char* key;
    double from, to;
  };
  const Pair pairs[] = {
      {"[limits] max_order_quantity", a.max_order_quantity, b.max_order_quantity},
      {"[limits] max_order_notional", a.max_order_notional, b.max_order_notional},
      {"[limits] price_collar", a.price_collar, b.price_collar},
      {"[limits] max_position_quantity", a.max_position_quantity, b.max_position_quantity},
      {"[limits] max_position_notional", a.max_position_notional, b.max_position_notional},
      {"[limits] max_gross_exposure", a.max_gross_exposure, b.max_gross_exposure},
      {"[limits] max_net_exposure", a.max_net_exposure, b.max_net_exposure},
      {"[limits] max_drawdown", a.max_drawdown, b.max_drawdown},
      {"[limits] max_daily_loss", a.max_daily_loss, b.max_daily_loss},
      {"[limits] max_orders_per_second", a.max_orders_per_second, b.max_orders_per_second},
      {"[limits] order_burst", static_cast<double>(a.order_burst), static_cast<double>(b.order_burst)},
      {"[limits] max_open_orders", static_cast<double>(a.max_open_orders), static_cast<double>(b.max_open_orders)},
      {"[limits] stale_mark_seconds", a.stale_mark_seconds, b.stale_mark_seconds},
  };
  for (const Pair& p : pairs) {
    if (p.to > p.from) return Loosens(p.key, p.from, p.to);
  }
  Status s = CheckCaps("asset_class_caps", a.asset_class_caps, a.asset_class_default_cap, b.asset_class_caps,
                       b.asset_class_default_cap);
  if (!s.ok()) return s;
  s = CheckCaps("sector_caps", a.sector_caps, a.sector_default_cap, b.sector_caps, b.sector_default_cap);
  if (!s.ok()) return s;
  for (const std::string& sym : a.restricted_symbols) {
    if (!b.restricted_symbols.count(sym)) {
      return Status::FailedPrecondition("[restricted] symbols would loosen: '" + sym + "' removed");
    }
  }
  for (const auto& kv : cur.instruments) {
    auto it = next.instruments.find(kv.first);
    if (it == next.instruments.end() || it->second.asset_class != kv.second.asset_class ||
        it->second.sector != kv.second.sector) {
      return Status::FailedPrecondition("[instruments] " + kv.first + " is not reloadable (removed or reclassified)");
    }
  }
  if (next.initial_cash != cur.initial_cash) {
    return Status::FailedPrecondition("[account] initial_cash is not reloadable");
  }
  const EngineOptions& e = cur.engine;
  const EngineOptions& f = next.engine;
  if (e.max_symbols != f.max_symbols) return Status::FailedPrecondition("[engine] max_symbols is not reloadable");
  if (e.order_id_memory != f.order_id_memory) {
    return Status::FailedPrecondition("[engine] order_id_memory is not reloadable");
  }
  if (e.daily_reset_utc_hour != f.daily_reset_utc_hour) {
    return Status::FailedPrecondition("[engine] daily_reset_utc_hour is not reloadable");
  }
  if (!e.halt_allows_reducing && f.halt_allows_reducing) {
    return Status::FailedPrecondition("[engine] halt_allows_reducing would loosen from false to true");
  }
  return Status::Ok();
}

}  // namespace quorum_risk
