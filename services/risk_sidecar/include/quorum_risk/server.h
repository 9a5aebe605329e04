// Single-threaded epoll event loop: the Unix-socket protocol, the metrics HTTP endpoint and
// signals (SIGHUP reloads the configuration; SIGTERM / SIGINT stop the loop).
#ifndef QUORUM_RISK_SERVER_H_
#define QUORUM_RISK_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "quorum_risk/engine.h"
#include "quorum_risk/metrics.h"
#include "quorum_risk/status.h"

namespace quorum_risk {

struct ServerOptions {
  // Path of the Unix stream socket. A stale socket file at this path is replaced; any other kind
  // of file is an error.
  std::string socket_path;
  // Permission bits of the socket file (the execution service must share the group).
  uint32_t socket_mode = 0660;
  // TCP port on 127.0.0.1 serving `GET /metrics` (HTTP/1.0). 0 disables the endpoint.
  uint16_t metrics_port = 0;
  // Configuration file re-read on SIGHUP and on a RELOAD request.
  std::string config_path;
  // Protocol clients served at once; more are accepted and closed immediately.
  uint32_t max_connections = 64;
  // Metrics HTTP clients served at once.
  uint32_t max_http_connections = 8;
  // After any socket activity, keep polling without sleeping for this many microseconds before
  // blocking in epoll_wait again. 0 = always block. Waking a sleeping process costs tens of
  // microseconds on virtualised hosts; spinning trades one busy core (only while traffic flows)
  // for a round trip of a few microseconds.
  uint32_t busy_poll_us = 0;
  // The engine's state file (state_file.h): written, atomically, at most every `state_interval_ms` while
  // the state changes, and when the loop stops. Empty: the state lives in memory only.
  std::string state_path;
  uint32_t state_interval_ms = 100;
};

class Server {
 public:
  // Binds the sockets and installs the signal handling. `engine` and `metrics` must outlive it.
  static Result<std::unique_ptr<Server>> Create(const ServerOptions& options, RiskEngine* engine, Metrics* metrics);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Runs until SIGTERM / SIGINT (then saves the state file one last time). Returns an error only if the event
  // loop itself fails; a state file that cannot be written is logged and tried again at the next change.
  Status Run();
  // Re-reads the configuration file and applies it if it only tightens the limits.
  Status Reload();

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace quorum_risk

#endif  // QUORUM_RISK_SERVER_H_
