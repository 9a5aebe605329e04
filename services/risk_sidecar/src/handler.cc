#include "quorum_risk/handler.h"

#include <chrono>

#include "quorum_risk/protocol.h"

namespace quorum_risk {

namespace p = protocol;

Reason ReloadReason(const Status& s) {
  if (s.ok()) return Reason::kOk;
  if (s.code() == StatusCode::kFailedPrecondition) return Reason::kReloadRefused;
  return Reason::kConfigError;
}

RequestHandler::RequestHandler(RiskEngine* engine, Metrics* metrics, ReloadFn reload)
    : engine_(engine), metrics_(metrics), reload_(std::move(reload)) {}

size_t RequestHandler::Consume(const uint8_t* data, size_t len, std::string* out, bool* close) {
  size_t off = 0;
  *close = false;
  while (off < len) {
    p::Frame f = p::ParseFrame(data + off, len - off);
    switch (f.status) {
      case p::FrameStatus::kNeedMore:
        return off;
      case p::FrameStatus::kBadMagic:
        metrics_->RecordError(Reason::kBadMagic);
        p::EncodeError(out, 0, Reason::kBadMagic, "bad magic: framing lost, closing");
        *close = true;
        return len;
      case p::FrameStatus::kUnsupportedVersion:
        metrics_->RecordError(Reason::kUnsupportedVersion);
        p::EncodeError(out, f.header.request_id, Reason::kUnsupportedVersion, "only protocol version 1 is supported");
        *close = true;
        return len;
      case p::FrameStatus::kTooLarge:
        metrics_->RecordError(Reason::kFrameTooLarge);
        p::EncodeError(out, f.header.request_id, Reason::kFrameTooLarge, "payload longer than 1024 bytes");
        *close = true;
        return len;
      case p::FrameStatus::kBadFlags:
        metrics_->RecordError(Reason::kMalformed);
        p::EncodeError(out, f.header.request_id, Reason::kMalformed, "reserved flags must be zero");
        break;
      case p::FrameStatus::kOk:
        Dispatch(f.header.type, f.header.request_id, f.payload, f.header.length, out);
        break;
    }
    off += f.frame_size;
  }
  return off;
}

void RequestHandler::Dispatch(uint8_t type, uint32_t id, const uint8_t* payload, size_t len, std::string* out) {
  metrics_->RecordRequest(type);
  auto malformed = [&](const char* what) {
    metrics_->RecordError(Reason::kMalformed);
    p::EncodeError(out, id, Reason::kMalformed, what);
  };
  auto ack = [&](Reason r) {
    metrics_->RecordAck(type, r);
    p::EncodeAck(out, static_cast<p::MsgType>(type), id, r, engine_->mode());
  };
  switch (static_cast<p::MsgType>(type)) {
    case p::MsgType::kCheckOrder: {
      auto t0 = std::chrono::steady_clock::now();
      OrderRequest o;
      if (p::DecodeCheckOrder(payload, len, &o) != Reason::kOk) return malformed("bad CHECK_ORDER payload");
      Verdict v = engine_->CheckOrder(o);
      p::EncodeVerdict(out, id, v);
      metrics_->RecordVerdict(v);
      metrics_->RecordCheckLatency(
          std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
      return;
    }
    case p::MsgType::kReportFill: {
      FillReport f;
      if (p::DecodeReportFill(payload, len, &f) != Reason::kOk) return malformed("bad REPORT_FILL payload");
      return ack(engine_->ReportFill(f));
    }
    case p::MsgType::kReportMark: {
      std::string_view sym;
      double px = 0;
      if (p::DecodeReportMark(payload, len, &sym, &px) != Reason::kOk) return malformed("bad REPORT_MARK payload");
      return ack(engine_->ReportMark(sym, px));
    }
    case p::MsgType::kRestoreMark: {
      std::string_view sym;
      double px = 0;
      int64_t age_ns = 0;
      if (p::DecodeRestoreMark(payload, len, &sym, &px, &age_ns) != Reason::kOk) {
        return malformed("bad RESTORE_MARK payload");
      }
      return ack(engine_->RestoreMark(sym, px, age_ns));
    }
    case p::MsgType::kOrderDone: {
      std::string_view coid;
      if (p::DecodeOrderDone(payload, len, &coid) != Reason::kOk) return malformed("bad ORDER_DONE payload");
      return ack(engine_->OrderDone(coid));
    }
    case p::MsgType::kHalt:
      if (len != 0) return malformed("HALT has no payload");
      engine_->Halt();
      return ack(Reason::kOk);
    case p::MsgType::kResume:
      if (len != 0) return malformed("RESUME has no payload");
      return ack(engine_->Resume());
    case p::MsgType::kGetState: {
      std::string_view sym;
      if (p::DecodeGetState(payload, len, &sym) != Reason::kOk) return malformed("bad GET_STATE payload");
      p::EncodeState(out, id, engine_->State(sym));
      return;
    }
    case p::MsgType::kReload: {
      if (len != 0) return malformed("RELOAD has no payload");
      Status s = reload_ ? reload_() : Status::Internal("reload is not available");
      Reason r = ReloadReason(s);
      metrics_->RecordReload(r);
      p::EncodeReloadResult(out, id, r, s.ok() ? "reloaded" : s.message());
      return;
    }
    default:
      metrics_->RecordError(Reason::kUnknownMessageType);
      p::EncodeError(out, id, Reason::kUnknownMessageType, "unknown message type");
      return;
  }
}

}  // namespace quorum_risk
