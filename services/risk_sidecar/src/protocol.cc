#include "quorum_risk/protocol.h"

#include <cstring>

namespace quorum_risk {
namespace protocol {
namespace {

uint16_t Load16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t Load32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t Load64(const uint8_t* p) {
  return static_cast<uint64_t>(Load32(p)) | (static_cast<uint64_t>(Load32(p + 4)) << 32);
}
double LoadF64(const uint8_t* p) {
  uint64_t u = Load64(p);
  double d;
  std::memcpy(&d, &u, 8);
  return d;
}

void Put8(std::string* o, uint8_t v) { o->push_back(static_cast<char>(v)); }
void Put16(std::string* o, uint16_t v) {
  Put8(o, static_cast<uint8_t>(v));
  Put8(o, static_cast<uint8_t>(v >> 8));
}
void Put32(std::string* o, uint32_t v) {
  Put16(o, static_cast<uint16_t>(v));
  Put16(o, static_cast<uint16_t>(v >> 16));
}
void Put64(std::string* o, uint64_t v) {
  Put32(o, static_cast<uint32_t>(v));
  Put32(o, static_cast<uint32_t>(v >> 32));
}
void PutF64(std::string* o, double d) {
  uint64_t u;
  std::memcpy(&u, &d, 8);
  Put64(o, u);
}
void PutStr(std::string* o, std::string_view s) {
  size_t n = s.size() > 255 ? 255 : s.size();
  Put8(o, static_cast<uint8_t>(n));
  o->append(s.data(), n);
}

bool Printable(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] < 0x21 || p[i] > 0x7E) return false;
  }
  return true;
}

// Bounds-checked payload reader.
class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  bool F64(double* v) {
    if (n_ - pos_ < 8) return fail();
    *v = LoadF64(p_ + pos_);
    pos_ += 8;
    return true;
  }
  bool U64(uint64_t* v) {
    if (n_ - pos_ < 8) return fail();
    *v = Load64(p_ + pos_);
    pos_ += 8;
    return true;
  }
  bool U8(uint8_t* v) {
    if (n_ - pos_ < 1) return fail();
    *v = p_[pos_++];
    return true;
  }
  // u8 length + printable ASCII bytes, length in [min_len, max_len].
  bool Str(std::string_view* s, size_t min_len, size_t max_len) {
    uint8_t len;
    if (!U8(&len)) return false;
    if (len < min_len || len > max_len || n_ - pos_ < len || !Printable(p_ + pos_, len)) return fail();
    *s = std::string_view(reinterpret_cast<const char*>(p_ + pos_), len);
    pos_ += len;
    return true;
  }
  bool Done() const { return ok_ && pos_ == n_; }

 private:
  bool fail() {
    ok_ = false;
    return false;
  }
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  bool ok_ = true;
};

Reason Finish(bool ok, const Reader& r) { return ok && r.Done() ? Reason::kOk : Reason::kMalformed; }

}  // namespace

Frame ParseFrame(const uint8_t* data, size_t len) {
  Frame f;
  // Check the magic on however many bytes have arrived, so garbage is detected early.
  for (size_t i = 0; i < 4 && i < len; ++i) {
    if (data[i] != kMagic[i]) {
      f.status = FrameStatus::kBadMagic;
      return f;
    }
  }
  if (len < kHeaderSize) return f;
  f.header.version = data[4];
  f.header.type = data[5];
  f.header.flags = Load16(data + 6);
  f.header.request_id = Load32(data + 8);
  f.header.length = Load32(data + 12);
  if (f.header.version != kVersion) {
    f.status = FrameStatus::kUnsupportedVersion;
    return f;
  }
  if (f.header.length > kMaxPayload) {
    f.status = FrameStatus::kTooLarge;
    return f;
  }
  if (len < kHeaderSize + f.header.length) return f;
  f.payload = data + kHeaderSize;
  f.frame_size = kHeaderSize + f.header.length;
  f.status = f.header.flags != 0 ? FrameStatus::kBadFlags : FrameStatus::kOk;
  return f;
}

Reason DecodeCheckOrder(const uint8_t* payload, size_t len, OrderRequest* o) {
  Reader r(payload, len);
  bool ok = r.F64(&o->quantity) && r.F64(&o->price) && r.U8(&o->side) &&
            r.Str(&o->client_order_id, 1, kMaxOrderIdLen) && r.Str(&o->symbol, 1, kMaxNameLen) &&
            r.Str(&o->asset_class, 1, kMaxNameLen) && r.Str(&o->sector, 1, kMaxNameLen);
  return Finish(ok, r);
}

Reason DecodeReportFill(const uint8_t* payload, size_t len, FillReport* f) {
  Reader r(payload, len);
  bool ok = r.F64(&f->quantity) && r.F64(&f->price) && r.U8(&f->side) &&
            r.Str(&f->client_order_id, 1, kMaxOrderIdLen) && r.Str(&f->symbol, 1, kMaxNameLen);
  return Finish(ok, r);
}

Reason DecodeReportMark(const uint8_t* payload, size_t len, std::string_view* symbol, double* price) {
  Reader r(payload, len);
  bool ok = r.F64(price) && r.Str(symbol, 1, kMaxNameLen);
  return Finish(ok, r);
}

Reason DecodeRestoreMark(const uint8_t* payload, size_t len, std::string_view* symbol, double* price,
                         int64_t* age_ns) {
  Reader r(payload, len);
  uint64_t age = 0;
  bool ok = r.F64(price) && r.U64(&age) && r.Str(symbol, 1, kMaxNameLen);
  *age_ns = static_cast<int64_t>(age);
  return Finish(ok, r);
}

Reason DecodeOrderDone(const uint8_t* payload, size_t len, std::string_view* id) {
  Reader r(payload, len);
  bool ok = r.Str(id, 1, kMaxOrderIdLen);
  return Finish(ok, r);
}

Reason DecodeGetState(const uint8_t* payload, size_t len, std::string_view* symbol) {
  Reader r(payload, len);
  bool ok = r.Str(symbol, 0, kMaxNameLen);
  return Finish(ok, r);
}

void AppendHeader(std::string* out, uint8_t type, uint32_t request_id, uint32_t length) {
  out->append(reinterpret_cast<const char*>(kMagic), 4);
  Put8(out, kVersion);
  Put8(out, type);
  Put16(out, 0);
  Put32(out, request_id);
  Put32(out, length);
}

namespace {
uint32_t StrLen(std::string_view s) { return 1 + static_cast<uint32_t>(s.size() > 255 ? 255 : s.size()); }
}  // namespace

void EncodeCheckOrder(std::string* out, uint32_t request_id, const OrderRequest& o) {
  uint32_t len = 17 + StrLen(o.client_order_id) + StrLen(o.symbol) + StrLen(o.asset_class) + StrLen(o.sector);
  AppendHeader(out, static_cast<uint8_t>(MsgType::kCheckOrder), request_id, len);
  PutF64(out, o.quantity);
  PutF64(out, o.price);
  Put8(out, o.side);
  PutStr(out, o.client_order_id);
  PutStr(out, o.symbol);
  PutStr(out, o.asset_class);
  PutStr(out, o.sector);
}

void EncodeReportFill(std::string* out, uint32_t request_id, const FillReport& f) {
  uint32_t len = 17 + StrLen(f.client_order_id) + StrLen(f.symbol);
  AppendHeader(out, static_cast<uint8_t>(MsgType::kReportFill), request_id, len);
  PutF64(out, f.quantity);
  PutF64(out, f.price);
  Put8(out, f.side);
  PutStr(out, f.client_order_id);
  PutStr(out, f.symbol);
}

void EncodeReportMark(std::string* out, uint32_t request_id, std::string_view symbol, double price) {
  AppendHeader(out, static_cast<uint8_t>(MsgType::kReportMark), request_id, 8 + StrLen(symbol));
  PutF64(out, price);
  PutStr(out, symbol);
}

void EncodeRestoreMark(std::string* out, uint32_t request_id, std::string_view symbol, double price, int64_t age_ns) {
  AppendHeader(out, static_cast<uint8_t>(MsgType::kRestoreMark), request_id, 16 + StrLen(symbol));
  PutF64(out, price);
  Put64(out, static_cast<uint64_t>(age_ns));
  PutStr(out, symbol);
}

void EncodeOrderDone(std::string* out, uint32_t request_id, std::string_view id) {
  AppendHeader(out, static_cast<uint8_t>(MsgType::kOrderDone), request_id, StrLen(id));
  PutStr(out, id);
}

void EncodeEmpty(std::string* out, MsgType type, uint32_t request_id) {
  AppendHeader(out, static_cast<uint8_t>(type), request_id, 0);
}

void EncodeGetState(std::string* out, uint32_t request_id, std::string_view symbol) {
  AppendHeader(out, static_cast<uint8_t>(MsgType::kGetState), request_id, StrLen(symbol));
  PutStr(out, symbol);
}

void EncodeVerdict(std::string* out, uint32_t request_id, const Verdict& v) {
  AppendHeader(out, static_cast<uint8_t>(MsgType::kCheckOrder) | kReplyBit, request_id, kVerdictPayload);
  Put8(out, v.approved ? 0 : 1);
  Put8(out, 0);
  Put16(out, static_cast<uint16_t>(v.reason));
}

void EncodeAck(std::string* out, MsgType request_type, uint32_t request_id, Reason reason, Mode mode) {
  AppendHeader(out, static_cast<uint8_t>(request_type) | kReplyBit, request_id, kAckPayload);
  Put16(out, static_cast<uint16_t>(reason));
  Put8(out, static_cast<uint8_t>(mode));
  Put8(out, 0);
}

void EncodeState(std::string* out, uint32_t request_id, const EngineState& st) {
  AppendHeader(out, static_cast<uint8_t>(MsgType::kGetState) | kReplyBit, request_id, kStatePayload);
  size_t start = out->size();
  Put8(out, static_cast<uint8_t>(st.mode));
  Put8(out, static_cast<uint8_t>((st.manual_halt ? 1 : 0) | (st.daily_loss_halt ? 2 : 0) |
                                 (st.drawdown_reduce_only ? 4 : 0) | (st.symbol_found ? 8 : 0)));
  Put16(out, 0);
  Put32(out, st.open_orders);
  Put32(out, st.symbols);
  Put32(out, 0);
  for (double d : {st.cash, st.nav, st.peak_nav, st.day_start_nav, st.gross_exposure, st.net_long, st.net_short,
                   st.position, st.open_buy, st.open_sell, st.mark}) {
    PutF64(out, d);
  }
  Put64(out, static_cast<uint64_t>(st.mark_age_ns));
  out->append(kStatePayload - (out->size() - start), '\0');
}

namespace {
void EncodeText(std::string* out, uint8_t type, uint32_t request_id, Reason reason, std::string_view msg,
                size_t max) {
  if (msg.size() > max) msg = msg.substr(0, max);
  AppendHeader(out, type, request_id, static_cast<uint32_t>(4 + msg.size()));
  Put16(out, static_cast<uint16_t>(reason));
  Put16(out, static_cast<uint16_t>(msg.size()));
  out->append(msg.data(), msg.size());
}
}  // namespace

void EncodeReloadResult(std::string* out, uint32_t request_id, Reason reason, std::string_view message) {
  EncodeText(out, static_cast<uint8_t>(MsgType::kReload) | kReplyBit, request_id, reason, message, 512);
}

void EncodeError(std::string* out, uint32_t request_id, Reason reason, std::string_view message) {
  EncodeText(out, static_cast<uint8_t>(MsgType::kError), request_id, reason, message, 256);
}

}  // namespace protocol
}  // namespace quorum_risk
