#include "quorum_risk/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "quorum_risk/clock.h"
#include "quorum_risk/handler.h"
#include "quorum_risk/protocol.h"
#include "quorum_risk/state_file.h"

namespace quorum_risk {
namespace {

constexpr size_t kReadBuffer = 16 * 1024;
constexpr size_t kHttpMaxRequest = 4096;
constexpr size_t kMaxPendingOutput = 1 << 20;

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

void Log(const char* fmt, const std::string& arg) {
  std::fprintf(stderr, "quorum-risk-sidecar: ");
  std::fprintf(stderr, fmt, arg.c_str());
  std::fprintf(stderr, "\n");
}

enum class Kind { kUnixListener, kHttpListener, kSignal, kClient, kHttp };

struct Conn {
  int fd = -1;
  Kind kind = Kind::kClient;
  std::vector<uint8_t> in;
  size_t in_len = 0;
  std::string out;
  size_t out_off = 0;
  bool close_after_flush = false;
  bool want_write = false;
};

}  // namespace

struct Server::Impl {
  ServerOptions opts;
  RiskEngine* engine = nullptr;
  Metrics* metrics = nullptr;
  int epfd = -1, unix_fd = -1, http_fd = -1, sig_fd = -1;
  std::unordered_map<int, Conn> conns;
  uint32_t clients = 0, http_clients = 0;
  std::unique_ptr<RequestHandler> handler;
  bool running = true;

  ~Impl() {
    for (auto& kv : conns) ::close(kv.first);
    for (int fd : {unix_fd, http_fd, sig_fd, epfd}) {
      if (fd >= 0) ::close(fd);
    }
    if (unix_fd >= 0) ::unlink(opts.socket_path.c_str());
  }

  Status Watch(int fd, Kind kind) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) return Status::IoError(Errno("epoll_ctl"));
    Conn& c = conns[fd];
    c.fd = fd;
    c.kind = kind;
    return Status::Ok();
  }

  void Close(int fd) {
    auto it = conns.find(fd);
    if (it == conns.end()) return;
    if (it->second.kind == Kind::kClient) {
      --clients;
      metrics->ConnectionClosed();
    } else if (it->second.kind == Kind::kHttp) {
      --http_clients;
    }
    epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nullptr);
    ::close(fd);
    conns.erase(it);
  }

  void Accept(int listen_fd, bool http) {
    for (;;) {
      int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN or transient error: try again on the next event
      uint32_t& count = http ? http_clients : clients;
      uint32_t limit = http ? opts.max_http_connections : opts.max_connections;
      if (count >= limit) {
        if (!http) metrics->ConnectionRefused();
        ::close(fd);
        continue;
      }
      if (!Watch(fd, http ? Kind::kHttp : Kind::kClient).ok()) {
        ::close(fd);
        conns.erase(fd);
        continue;
      }
      ++count;
      Conn& c = conns[fd];
      c.in.resize(http ? kHttpMaxRequest : kReadBuffer);
      if (!http) metrics->ConnectionOpened();
    }
  }

  // Writes as much of `out` as the socket takes; arms EPOLLOUT for the rest.
  void Flush(Conn& c) {
    while (c.out_off < c.out.size()) {
      ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        c.out_off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      Close(c.fd);
      return;
    }
    bool pending = c.out_off < c.out.size();
    if (!pending) {
      c.out.clear();
      c.out_off = 0;
      if (c.close_after_flush) {
        Close(c.fd);
        return;
      }
    }
    if (pending != c.want_write) {
      epoll_event ev{};
      ev.events = static_cast<uint32_t>(EPOLLIN) | (pending ? static_cast<uint32_t>(EPOLLOUT) : 0u);
      ev.data.fd = c.fd;
      epoll_ctl(epfd, EPOLL_CTL_MOD, c.fd, &ev);
      c.want_write = pending;
    }
  }

  // After a framing error (or a finished HTTP reply) input is read and dropped until the reply
  // is flushed, so a level-triggered EPOLLIN cannot spin.
  void Discard(Conn& c) {
    uint8_t scratch[4096];
    ssize_t n = ::recv(c.fd, scratch, sizeof scratch, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) Close(c.fd);
  }

  void ReadClient(Conn& c) {
    if (c.close_after_flush) return Discard(c);
    ssize_t n = ::recv(c.fd, c.in.data() + c.in_len, c.in.size() - c.in_len, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      Close(c.fd);
      return;
    }
    if (n < 0) return;
    c.in_len += static_cast<size_t>(n);
    bool close = false;
    size_t used = handler->Consume(c.in.data(), c.in_len, &c.out, &close);
    if (used < c.in_len) std::memmove(c.in.data(), c.in.data() + used, c.in_len - used);
    c.in_len -= used;
    if (close) c.close_after_flush = true;
    if (c.out.size() - c.out_off > kMaxPendingOutput) {
      Log("%s", "closing a client that does not read its replies");
      Close(c.fd);
      return;
    }
    Flush(c);
  }

  void ReadHttp(Conn& c) {
    if (c.close_after_flush) return Discard(c);
    ssize_t n = ::recv(c.fd, c.in.data() + c.in_len, c.in.size() - c.in_len, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      Close(c.fd);
      return;
    }
    if (n < 0) return;
    c.in_len += static_cast<size_t>(n);
    std::string req(reinterpret_cast<const char*>(c.in.data()), c.in_len);
    bool complete = req.find("\r\n\r\n") != std::string::npos || req.find("\n\n") != std::string::npos;
    if (!complete && c.in_len < c.in.size()) return;
    std::string status = "200 OK", body;
    if (!complete) {
      status = "400 Bad Request";
      body = "request too large\n";
    } else if (req.rfind("GET /metrics ", 0) == 0 || req.rfind("GET /metrics\r", 0) == 0 ||
               req.rfind("GET /metrics\n", 0) == 0) {
      body = metrics->Render(engine->State());
    } else if (req.rfind("GET ", 0) == 0) {
      status = "404 Not Found";
      body = "only GET /metrics is served\n";
    } else {
      status = "405 Method Not Allowed";
      body = "only GET /metrics is served\n";
    }
    c.out = "HTTP/1.0 " + status + "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: " +
            std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    c.out_off = 0;
    c.close_after_flush = true;
    Flush(c);
  }

  // ---- state file ----
  uint64_t saved_version = 0;
  int64_t saved_ns = 0;

  bool StateDirty() const { return !opts.state_path.empty() && engine->state_version() != saved_version; }

  // Milliseconds epoll may block before a save is due (-1: no save pending).
  int SaveTimeoutMs() const {
    if (!StateDirty()) return -1;
    int64_t due = saved_ns + static_cast<int64_t>(opts.state_interval_ms) * 1'000'000 -
                  SystemClock::Get()->MonotonicNanos();
    return due <= 0 ? 0 : static_cast<int>((due + 999'999) / 1'000'000);
  }

  void SaveState(bool force) {
    if (!StateDirty() || (!force && SaveTimeoutMs() > 0)) return;
    const uint64_t version = engine->state_version();
    Status s = WriteStateFile(opts.state_path, FormatState(engine->ExportState(), SystemClock::Get()->WallNanos()));
    saved_ns = SystemClock::Get()->MonotonicNanos();
    metrics->RecordStateSave(s.ok());
    if (s.ok()) {
      saved_version = version;
    } else {
      Log("state not saved: %s", s.ToString());
    }
  }

  void OnSignal() {
    signalfd_siginfo si;
    while (::read(sig_fd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
      if (si.ssi_signo == SIGHUP) {
        Status s = DoReload();
        metrics->RecordReload(ReloadReason(s));
      } else {
        running = false;
      }
    }
  }

  Status DoReload() {
    Result<Config> cfg = LoadConfigFile(opts.config_path);
    if (!cfg.ok()) {
      Log("reload failed, limits unchanged: %s", cfg.status().ToString());
      return cfg.status();
    }
    Status s = engine->Reload(*cfg);
    if (s.ok()) {
      Log("reloaded %s", opts.config_path);
    } else {
      Log("reload refused, limits unchanged: %s", s.ToString());
    }
    return s;
  }
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;

Result<std::unique_ptr<Server>> Server::Create(const ServerOptions& options, RiskEngine* engine, Metrics* metrics) {
  auto m = std::make_unique<Impl>();
  m->opts = options;
  m->engine = engine;
  m->metrics = metrics;
  Impl* raw = m.get();
  m->handler = std::make_unique<RequestHandler>(engine, metrics, [raw] { return raw->DoReload(); });

  sockaddr_un addr{};
  if (options.socket_path.empty() || options.socket_path.size() >= sizeof(addr.sun_path)) {
    return Status::InvalidArgument("socket path empty or longer than " + std::to_string(sizeof(addr.sun_path) - 1));
  }
  m->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (m->epfd < 0) return Status::IoError(Errno("epoll_create1"));

  // Signals: SIGHUP reload, SIGTERM/SIGINT stop; delivered through a signalfd.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGHUP);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  if (sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) return Status::IoError(Errno("sigprocmask"));
  signal(SIGPIPE, SIG_IGN);
  m->sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (m->sig_fd < 0) return Status::IoError(Errno("signalfd"));
  if (Status s = m->Watch(m->sig_fd, Kind::kSignal); !s.ok()) return s;

  struct stat st;
  if (::lstat(options.socket_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return Status::FailedPrecondition("'" + options.socket_path + "' exists and is not a socket");
    }
    ::unlink(options.socket_path.c_str());
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::IoError(Errno("socket(AF_UNIX)"));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, options.socket_path.c_str(), options.socket_path.size() + 1);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::string e = Errno(("bind " + options.socket_path).c_str());
    ::close(fd);
    return Status::IoError(e);
  }
  m->unix_fd = fd;
  ::chmod(options.socket_path.c_str(), options.socket_mode);
  if (::listen(fd, 128) != 0) return Status::IoError(Errno("listen"));
  if (Status s = m->Watch(fd, Kind::kUnixListener); !s.ok()) return s;

  if (options.metrics_port != 0) {
    int h = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (h < 0) return Status::IoError(Errno("socket(AF_INET)"));
    int one = 1;
    setsockopt(h, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(options.metrics_port);
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(h, reinterpret_cast<sockaddr*>(&in), sizeof in) != 0 || ::listen(h, 16) != 0) {
      std::string e = Errno(("metrics port " + std::to_string(options.metrics_port)).c_str());
      ::close(h);
      return Status::IoError(e);
    }
    m->http_fd = h;
    if (Status s = m->Watch(h, Kind::kHttpListener); !s.ok()) return s;
  }
  return std::unique_ptr<Server>(new Server(std::move(m)));
}

Status Server::Reload() { return impl_->DoReload(); }

Status Server::Run() {
  Impl& m = *impl_;
  epoll_event events[64];
  const int64_t spin_ns = static_cast<int64_t>(m.opts.busy_poll_us) * 1000;
  int64_t spin_until = 0;
  m.saved_version = m.engine->state_version();  // what was loaded (or nothing) is on disk already
  m.saved_ns = SystemClock::Get()->MonotonicNanos();
  while (m.running) {
    m.SaveState(false);
    const bool spinning = spin_ns > 0 && SystemClock::Get()->MonotonicNanos() < spin_until;
    int n = epoll_wait(m.epfd, events, 64, spinning ? 0 : m.SaveTimeoutMs());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IoError(Errno("epoll_wait"));
    }
    if (n > 0 && spin_ns > 0) spin_until = SystemClock::Get()->MonotonicNanos() + spin_ns;
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      auto it = m.conns.find(fd);
      if (it == m.conns.end()) continue;  // closed earlier in this batch
      Conn& c = it->second;
      switch (c.kind) {
        case Kind::kUnixListener: m.Accept(fd, false); break;
        case Kind::kHttpListener: m.Accept(fd, true); break;
        case Kind::kSignal: m.OnSignal(); break;
        case Kind::kClient:
        case Kind::kHttp:
          if (events[i].events & EPOLLOUT) {
            m.Flush(c);
            if (m.conns.find(fd) == m.conns.end()) break;
          }
          if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
            if (c.kind == Kind::kClient) {
              m.ReadClient(c);
            } else {
              m.ReadHttp(c);
            }
          }
          break;
      }
    }
  }
  m.SaveState(true);
  return Status::Ok();
}

}  // namespace quorum_risk
