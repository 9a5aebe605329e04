// Counters and a latency histogram, rendered in the Prometheus text exposition format.
#ifndef QUORUM_RISK_METRICS_H_
#define QUORUM_RISK_METRICS_H_

#include <array>
#include <cstdint>
#include <string>

#include "quorum_risk/engine.h"
#include "quorum_risk/reason.h"

namespace quorum_risk {

class Metrics {
 public:
  // Upper bounds (nanoseconds) of the check latency histogram buckets; +Inf is implicit.
  static constexpr std::array<int64_t, 12> kLatencyBucketsNs = {250,   500,    1000,   2500,    5000,     10000,
                                                                25000, 50000, 100000, 250000, 1000000, 10000000};
  static constexpr int kMessageTypes = 10;  // request types 1..9; index 0 counts unknown types

  void RecordVerdict(const Verdict& v) { ++verdicts_[v.approved ? 0 : 1][Index(v.reason)]; }
  void RecordCheckLatency(int64_t ns);
  void RecordRequest(uint8_t type) { ++requests_[type < kMessageTypes ? type : 0]; }
  void RecordAck(uint8_t type, Reason r) { ++acks_[type < kMessageTypes ? type : 0][Index(r)]; }
  void RecordError(Reason r) { ++errors_[Index(r)]; }
  void RecordReload(Reason r) { ++reloads_[Index(r)]; }
  void RecordStateSave(bool ok) { ++state_saves_[ok ? 0 : 1]; }
  void ConnectionOpened() { ++connections_total_, ++connections_open_; }
  void ConnectionClosed() { --connections_open_; }
  void ConnectionRefused() { ++connections_refused_; }

  uint64_t verdicts(bool approved, Reason r) const { return verdicts_[approved ? 0 : 1][Index(r)]; }
  uint64_t errors(Reason r) const { return errors_[Index(r)]; }
  uint64_t latency_count() const { return latency_count_; }

  // Prometheus text format (version 0.0.4), with gauges taken from `state`.
  std::string Render(const EngineState& state) const;

 private:
  static size_t Index(Reason r) {
    size_t i = static_cast<size_t>(r);
    return i < kReasonCount ? i : 0;
  }
  uint64_t verdicts_[2][kReasonCount] = {};
  uint64_t acks_[kMessageTypes][kReasonCount] = {};
  uint64_t errors_[kReasonCount] = {};
  uint64_t reloads_[kReasonCount] = {};
  uint64_t state_saves_[2] = {};  // ok, failed
  uint64_t requests_[kMessageTypes] = {};
  uint64_t latency_buckets_[kLatencyBucketsNs.size() + 1] = {};
  uint64_t latency_count_ = 0;
  int64_t latency_sum_ns_ = 0;
  uint64_t connections_total_ = 0;
  int64_t connections_open_ = 0;
  uint64_t connections_refused_ = 0;
};

}  // namespace quorum_risk

#endif  // QUORUM_RISK_METRICS_H_
