// quorum-risk-sidecar --config PATH --socket PATH [--metrics-port N] [--busy-poll-us N] [--state-file PATH]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "quorum_risk/clock.h"
#include "quorum_risk/config.h"
#include "quorum_risk/engine.h"
#include "quorum_risk/metrics.h"
#include "quorum_risk/server.h"
#include "quorum_risk/state_file.h"

namespace {

void Usage(FILE* f) {
  std::fprintf(f,
               "usage: quorum-risk-sidecar --config PATH --socket PATH [--metrics-port N] [--busy-poll-us N]\n"
               "                           [--state-file PATH] [--state-interval-ms N]\n"
               "  --config PATH       limits file (see config/sidecar.example.conf); re-read on SIGHUP\n"
               "  --socket PATH       Unix domain socket to serve the risk protocol on\n"
               "  --metrics-port N    serve GET /metrics on 127.0.0.1:N (0 or absent: disabled)\n"
               "  --busy-poll-us N    after activity, poll without sleeping for N us (default 0: block)\n"
               "  --state-file PATH   keep the ledger, halts and in-flight orders in PATH across restarts\n"
               "  --state-interval-ms N  save at most every N ms while the state changes (default 100)\n");
}

long Number(const char* v, const char* flag, long max) {
  char* end = nullptr;
  long n = std::strtol(v, &end, 10);
  if (*v == '\0' || *end != '\0' || n < 0 || n > max) {
    std::fprintf(stderr, "quorum-risk-sidecar: bad %s '%s'\n", flag, v);
    std::exit(2);
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace quorum_risk;
  ServerOptions opts;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* flag) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "quorum-risk-sidecar: %s needs a value\n", flag);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--config") {
      opts.config_path = value("--config");
    } else if (a == "--socket") {
      opts.socket_path = value("--socket");
    } else if (a == "--metrics-port") {
      opts.metrics_port = static_cast<uint16_t>(Number(value("--metrics-port"), "--metrics-port", 65535));
    } else if (a == "--busy-poll-us") {
      opts.busy_poll_us = static_cast<uint32_t>(Number(value("--busy-poll-us"), "--busy-poll-us", 10'000'000));
    } else if (a == "--state-file") {
      opts.state_path = value("--state-file");
    } else if (a == "--state-interval-ms") {
      opts.state_interval_ms = static_cast<uint32_t>(Number(value("--state-interval-ms"), "--state-interval-ms", 600'000));
    } else if (a == "--help" || a == "-h") {
      Usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "quorum-risk-sidecar: unknown argument '%s'\n", a.c_str());
      Usage(stderr);
      return 2;
    }
  }
  if (opts.config_path.empty() || opts.socket_path.empty()) {
    Usage(stderr);
    return 2;
  }
  Result<Config> cfg = LoadConfigFile(opts.config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "quorum-risk-sidecar: %s\n", cfg.status().ToString().c_str());
    return 2;
  }
  auto engine = RiskEngine::Create(*cfg, SystemClock::Get());
  if (!engine.ok()) {
    std::fprintf(stderr, "quorum-risk-sidecar: %s\n", engine.status().ToString().c_str());
    return 2;
  }
  if (!opts.state_path.empty()) {
    // A state that cannot be read or applied stops the start: running without it would forget halts and
    // positions (fail closed; an operator removes the file to start empty on purpose).
    Result<std::optional<std::string>> text = ReadStateFile(opts.state_path);
    Status loaded = text.ok() ? Status::Ok() : text.status();
    if (loaded.ok() && text->has_value()) {
      Result<SavedState> saved = ParseState(**text);
      loaded = saved.ok() ? (*engine)->ImportState(saved->image, SystemClock::Get()->WallNanos() - saved->saved_wall_ns)
                          : saved.status();
      if (loaded.ok()) {
        std::fprintf(stderr, "quorum-risk-sidecar: state restored from %s (%zu symbols, %zu orders in flight)\n",
                     opts.state_path.c_str(), saved->image.symbols.size(), saved->image.orders.size());
      }
    }
    if (!loaded.ok()) {
      std::fprintf(stderr, "quorum-risk-sidecar: %s\n", loaded.ToString().c_str());
      return 2;
    }
  }
  Metrics metrics;
  auto server = Server::Create(opts, engine->get(), &metrics);
  if (!server.ok()) {
    std::fprintf(stderr, "quorum-risk-sidecar: %s\n", server.status().ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "quorum-risk-sidecar: serving %s (metrics port %u)\n", opts.socket_path.c_str(),
               static_cast<unsigned>(opts.metrics_port));
  Status s = (*server)->Run();
  if (!s.ok()) {
    std::fprintf(stderr, "quorum-risk-sidecar: %s\n", s.ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "quorum-risk-sidecar: stopped\n");
  return 0;
}
