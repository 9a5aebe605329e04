#include "quorum_risk/state_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

namespace quorum_risk {
namespace {

constexpr std::string_view kMagic = "quorum-risk-state 1";

std::string Num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }
std::string FromDash(const std::string& s) { return s == "-" ? "" : s; }

bool ParseDouble(const std::string& s, double* out) {
  char* end = nullptr;
  errno = 0;
  *out = std::strtod(s.c_str(), &end);
  return !s.empty() && *end == '\0' && errno == 0;
}

bool ParseInt(const std::string& s, int64_t* out) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  *out = v;
  return !s.empty() && *end == '\0' && errno == 0;
}

bool ParseFlag(const std::string& s, bool* out) {
  if (s != "0" && s != "1") return false;
  *out = s == "1";
  return true;
}

std::vector<std::string> Words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> w;
  for (std::string t; in >> t;) w.push_back(t);
  return w;
}

}  // namespace

std::string FormatState(const StateImage& s, int64_t saved_wall_ns) {
  std::string out(kMagic);
  out += "\nsaved_wall_ns " + std::to_string(saved_wall_ns) + "\n";
  out += "ledger " + Num(s.cash) + " " + Num(s.peak_nav) + " " + Num(s.day_start_nav) + " " +
         std::to_string(s.day_index) + " " + (s.manual_halt ? "1" : "0") + " " + (s.daily_halt ? "1" : "0") + " " +
         (s.drawdown_reduce_only ? "1" : "0") + "\n";
  for (const SavedSymbol& e : s.symbols) {
    out += "symbol " + e.name + " " + Num(e.position) + " " + Num(e.mark) + " " + (e.has_mark ? "1" : "0") + " " +
           std::to_string(e.mark_age_ns) + " " + OrDash(e.asset_class) + " " + OrDash(e.sector) + "\n";
  }
  for (const SavedOrder& o : s.orders) {
    out += "order " + o.client_order_id + " " + o.symbol + " " + std::to_string(o.side) + " " + Num(o.open_qty) + "\n";
  }
  out += "end\n";
  return out;
}

Result<SavedState> ParseState(std::string_view text) {
  SavedState st;
  std::istringstream in{std::string(text)};
  std::string line;
  int n = 0;
  bool ended = false, ledger = false, wall = false;
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("state file line " + std::to_string(n) + ": " + why);
  };
  while (std::getline(in, line)) {
    ++n;
    if (n == 1) {
      if (line != kMagic) return bad("not a quorum-risk-state 1 file");
      continue;
    }
    if (ended) return bad("text after 'end'");
    std::vector<std::string> w = Words(line);
    if (w.empty()) return bad("empty line");
    if (w[0] == "end" && w.size() == 1) {
      ended = true;
    } else if (w[0] == "saved_wall_ns" && w.size() == 2) {
      if (!ParseInt(w[1], &st.saved_wall_ns)) return bad("saved_wall_ns: not an integer");
      wall = true;
    } else if (w[0] == "ledger" && w.size() == 8) {
      StateImage& s = st.image;
      if (!ParseDouble(w[1], &s.cash) || !ParseDouble(w[2], &s.peak_nav) || !ParseDouble(w[3], &s.day_start_nav) ||
          !ParseInt(w[4], &s.day_index) || !ParseFlag(w[5], &s.manual_halt) || !ParseFlag(w[6], &s.daily_halt) ||
          !ParseFlag(w[7], &s.drawdown_reduce_only)) {
        return bad("ledger: expected cash peak_nav day_start_nav day_index manual_halt daily_halt reduce_only");
      }
      ledger = true;
    } else if (w[0] == "symbol" && w.size() == 8) {
      SavedSymbol e;
      e.name = w[1];
      if (!ParseDouble(w[2], &e.position) || !ParseDouble(w[3], &e.mark) || !ParseFlag(w[4], &e.has_mark) ||
          !ParseInt(w[5], &e.mark_age_ns)) {
        return bad("symbol " + w[1] + ": expected name position mark has_mark mark_age_ns asset_class sector");
      }
      e.asset_class = FromDash(w[6]);
      e.sector = FromDash(w[7]);
      st.image.symbols.push_back(std::move(e));
    } else if (w[0] == "order" && w.size() == 5) {
      SavedOrder o{w[1], w[2], 0, 0};
      int64_t side = 0;
      if (!ParseInt(w[3], &side) || (side != 1 && side != 2) || !ParseDouble(w[4], &o.open_qty)) {
        return bad("order " + w[1] + ": expected client_order_id symbol side(1|2) open_qty");
      }
      o.side = static_cast<uint8_t>(side);
      st.image.orders.push_back(std::move(o));
    } else {
      return bad("unknown or malformed entry '" + w[0] + "'");
    }
  }
  if (!ended) return Status::InvalidArgument("state file: no 'end' line (truncated)");
  if (!wall || !ledger) return Status::InvalidArgument("state file: saved_wall_ns and ledger lines are required");
  return st;
}

Status WriteStateFile(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IoError("state file " + tmp + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    ssize_t w = ::write(fd, text.data() + done, text.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      std::string e = std::strerror(errno);
      ::close(fd);
      return Status::IoError("state file " + tmp + ": " + e);
    }
    done += static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) return Status::IoError("state file " + tmp + ": " + std::strerror(errno));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::IoError("state file " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Result<std::optional<std::string>> ReadStateFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    if (errno == ENOENT) return std::optional<std::string>();
    return Status::IoError("state file " + path + ": " + std::strerror(errno));
  }
  std::ostringstream out;
  out << f.rdbuf();
  return std::optional<std::string>(out.str());
}

}  // namespace quorum_risk
