// Transport-independent request handling: bytes in, reply frames out. The server feeds it socket
// data; tests and the fuzzer feed it arbitrary bytes.
#ifndef QUORUM_RISK_HANDLER_H_
#define QUORUM_RISK_HANDLER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "quorum_risk/engine.h"
#include "quorum_risk/metrics.h"
#include "quorum_risk/status.h"

namespace quorum_risk {

class RequestHandler {
 public:
  // Called for a RELOAD request; returns the outcome of re-reading and applying the config.
  using ReloadFn = std::function<Status()>;

  // `engine` and `metrics` must outlive the handler. `reload` may be empty (RELOAD then answers
  // CONFIG_ERROR).
  RequestHandler(RiskEngine* engine, Metrics* metrics, ReloadFn reload = {});

  // Consumes complete frames from the start of `data`, appending one reply frame per request to
  // `out`. Returns how many bytes were consumed; the rest (an incomplete frame) must be offered
  // again with more data. Sets `*close` when framing is lost (bad magic, unsupported version,
  // oversized length): an ERROR reply has been appended, all input consumed, and the connection
  // must be closed once `out` is flushed.
  size_t Consume(const uint8_t* data, size_t len, std::string* out, bool* close);

 private:
  void Dispatch(uint8_t type, uint32_t request_id, const uint8_t* payload, size_t len, std::string* out);

  RiskEngine* engine_;
  Metrics* metrics_;
  ReloadFn reload_;
};

// Applies a reload outcome to a reason code: OK, RELOAD_REFUSED (would loosen) or CONFIG_ERROR.
Reason ReloadReason(const Status& s);

}  // namespace quorum_risk

#endif  // QUORUM_RISK_HANDLER_H_
