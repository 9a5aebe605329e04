#include "quorum_risk/metrics.h"

#include <cstdarg>
#include <cstdio>

namespace quorum_risk {
namespace {

const char* TypeName(int t) {
  static const char* kNames[Metrics::kMessageTypes] = {"UNKNOWN",  "CHECK_ORDER", "REPORT_FILL",
                                                       "REPORT_MARK", "ORDER_DONE", "HALT",
                                                       "RESUME",   "GET_STATE",   "RELOAD",
                                                       "RESTORE_MARK"};
  return kNames[t];
}

void Line(std::string* out, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void Line(std::string* out, const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0) out->append(buf, static_cast<size_t>(n) < sizeof buf ? static_cast<size_t>(n) : sizeof buf - 1);
}

}  // namespace

void Metrics::RecordCheckLatency(int64_t ns) {
  size_t i = 0;
  while (i < kLatencyBucketsNs.size() && ns > kLatencyBucketsNs[i]) ++i;
  ++latency_buckets_[i];
  ++latency_count_;
  latency_sum_ns_ += ns;
}

std::string Metrics::Render(const EngineState& st) const {
  std::string o;
  o.reserve(8192);
  Line(&o, "# HELP quorum_risk_verdicts_total Order checks by verdict and reason.\n");
  Line(&o, "# TYPE quorum_risk_verdicts_total counter\n");
  Line(&o, "quorum_risk_verdicts_total{verdict=\"approve\",reason=\"OK\"} %llu\n",
       static_cast<unsigned long long>(verdicts_[0][0]));
  for (int r = 1; r < kReasonCount; ++r) {
    Line(&o, "quorum_risk_verdicts_total{verdict=\"reject\",reason=\"%s\"} %llu\n",
         ReasonName(static_cast<Reason>(r)), static_cast<unsigned long long>(verdicts_[1][r]));
  }
  Line(&o, "# HELP quorum_risk_check_latency_seconds Time to decode, check and encode one CHECK_ORDER.\n");
  Line(&o, "# TYPE quorum_risk_check_latency_seconds histogram\n");
  uint64_t cum = 0;
  for (size_t i = 0; i < kLatencyBucketsNs.size(); ++i) {
    cum += latency_buckets_[i];
    Line(&o, "quorum_risk_check_latency_seconds_bucket{le=\"%g\"} %llu\n",
         static_cast<double>(kLatencyBucketsNs[i]) / 1e9, static_cast<unsigned long long>(cum));
  }
  cum += latency_buckets_[kLatencyBucketsNs.size()];
  Line(&o, "quorum_risk_check_latency_seconds_bucket{le=\"+Inf\"} %llu\n", static_cast<unsigned long long>(cum));
  Line(&o, "quorum_risk_check_latency_seconds_sum %.9f\n", static_cast<double>(latency_sum_ns_) / 1e9);
  Line(&o, "quorum_risk_check_latency_seconds_count %llu\n", static_cast<unsigned long long>(latency_count_));

  Line(&o, "# HELP quorum_risk_requests_total Well-framed requests by message type.\n");
  Line(&o, "# TYPE quorum_risk_requests_total counter\n");
  for (int t = 0; t < kMessageTypes; ++t) {
    Line(&o, "quorum_risk_requests_total{type=\"%s\"} %llu\n", TypeName(t),
         static_cast<unsigned long long>(requests_[t]));
  }
  Line(&o, "# HELP quorum_risk_acks_total Acknowledgements (fills, marks, done, halt, resume) by reason.\n");
  Line(&o, "# TYPE quorum_risk_acks_total counter\n");
  for (int t = 0; t < kMessageTypes; ++t) {
    for (int r = 0; r < kReasonCount; ++r) {
      if (acks_[t][r] == 0) continue;
      Line(&o, "quorum_risk_acks_total{type=\"%s\",reason=\"%s\"} %llu\n", TypeName(t),
           ReasonName(static_cast<Reason>(r)), static_cast<unsigned long long>(acks_[t][r]));
    }
  }
  Line(&o, "# HELP quorum_risk_protocol_errors_total ERROR replies by reason.\n");
  Line(&o, "# TYPE quorum_risk_protocol_errors_total counter\n");
  for (Reason r : {Reason::kMalformed, Reason::kUnsupportedVersion, Reason::kFrameTooLarge,
                   Reason::kUnknownMessageType, Reason::kBadMagic}) {
    Line(&o, "quorum_risk_protocol_errors_total{reason=\"%s\"} %llu\n", ReasonName(r),
         static_cast<unsigned long long>(errors_[Index(r)]));
  }
  Line(&o, "# HELP quorum_risk_reloads_total Configuration reloads by result.\n");
  Line(&o, "# TYPE quorum_risk_reloads_total counter\n");
  for (Reason r : {Reason::kOk, Reason::kReloadRefused, Reason::kConfigError}) {
    Line(&o, "quorum_risk_reloads_total{result=\"%s\"} %llu\n", ReasonName(r),
         static_cast<unsigned long long>(reloads_[Index(r)]));
  }
  Line(&o, "# HELP quorum_risk_state_saves_total State file writes (--state-file) by result.\n");
  Line(&o, "# TYPE quorum_risk_state_saves_total counter\n");
  Line(&o, "quorum_risk_state_saves_total{result=\"ok\"} %llu\n", static_cast<unsigned long long>(state_saves_[0]));
  Line(&o, "quorum_risk_state_saves_total{result=\"failed\"} %llu\n",
       static_cast<unsigned long long>(state_saves_[1]));
  Line(&o, "# TYPE quorum_risk_connections_total counter\nquorum_risk_connections_total %llu\n",
       static_cast<unsigned long long>(connections_total_));
  Line(&o, "# TYPE quorum_risk_connections_refused_total counter\nquorum_risk_connections_refused_total %llu\n",
       static_cast<unsigned long long>(connections_refused_));
  Line(&o, "# TYPE quorum_risk_connections_open gauge\nquorum_risk_connections_open %lld\n",
       static_cast<long long>(connections_open_));

  Line(&o, "# HELP quorum_risk_mode Trading mode: 0 ACTIVE, 1 REDUCING (reduce-only), 2 HALTED.\n");
  Line(&o, "# TYPE quorum_risk_mode gauge\nquorum_risk_mode %d\n", static_cast<int>(st.mode));
  Line(&o, "# TYPE quorum_risk_halted gauge\nquorum_risk_halted{cause=\"manual\"} %d\n", st.manual_halt ? 1 : 0);
  Line(&o, "quorum_risk_halted{cause=\"daily_loss\"} %d\n", st.daily_loss_halt ? 1 : 0);
  Line(&o, "# TYPE quorum_risk_reduce_only gauge\nquorum_risk_reduce_only %d\n", st.drawdown_reduce_only ? 1 : 0);
  Line(&o, "# TYPE quorum_risk_open_orders gauge\nquorum_risk_open_orders %u\n", st.open_orders);
  Line(&o, "# TYPE quorum_risk_symbols gauge\nquorum_risk_symbols %u\n", st.symbols);
  Line(&o, "# TYPE quorum_risk_nav gauge\nquorum_risk_nav %.6f\n", st.nav);
  Line(&o, "# TYPE quorum_risk_peak_nav gauge\nquorum_risk_peak_nav %.6f\n", st.peak_nav);
  Line(&o, "# TYPE quorum_risk_day_start_nav gauge\nquorum_risk_day_start_nav %.6f\n", st.day_start_nav);
  Line(&o, "# TYPE quorum_risk_cash gauge\nquorum_risk_cash %.6f\n", st.cash);
  Line(&o, "# TYPE quorum_risk_gross_exposure gauge\nquorum_risk_gross_exposure %.6f\n", st.gross_exposure);
  Line(&o, "# TYPE quorum_risk_net_exposure gauge\nquorum_risk_net_exposure{side=\"long\"} %.6f\n", st.net_long);
  Line(&o, "quorum_risk_net_exposure{side=\"short\"} %.6f\n", st.net_short);
  return o;
}

}  // namespace quorum_risk
