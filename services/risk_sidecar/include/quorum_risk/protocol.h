// Wire protocol: versioned, length-prefixed binary frames over a Unix stream socket.
// Normative description: schemas/risk_sidecar_protocol.md. All integers and floats little-endian.
//
//   offset size field
//   0      4    magic        "QRSK"
//   4      1    version      1
//   5      1    type         message type (replies: request type | 0x80; 0xFF = ERROR)
//   6      2    flags        0 (reserved)
//   8      4    request_id   chosen by the client, echoed in the reply
//   12     4    length       payload length, <= kMaxPayload
//   16     ...  payload
#ifndef QUORUM_RISK_PROTOCOL_H_
#define QUORUM_RISK_PROTOCOL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "quorum_risk/engine.h"
#include "quorum_risk/reason.h"

namespace quorum_risk {
namespace protocol {

inline constexpr uint8_t kMagic[4] = {'Q', 'R', 'S', 'K'};
inline constexpr uint8_t kVersion = 1;
inline constexpr size_t kHeaderSize = 16;
inline constexpr size_t kMaxPayload = 1024;
inline constexpr size_t kMaxFrame = kHeaderSize + kMaxPayload;
inline constexpr uint8_t kReplyBit = 0x80;

enum class MsgType : uint8_t {
  kCheckOrder = 0x01,
  kReportFill = 0x02,
  kReportMark = 0x03,
  kOrderDone = 0x04,
  kHalt = 0x05,
  kResume = 0x06,
  kGetState = 0x07,
  kReload = 0x08,
  kRestoreMark = 0x09,
  kError = 0xFF,
};

struct Header {
  uint8_t version = kVersion;
  uint8_t type = 0;
  uint16_t flags = 0;
  uint32_t request_id = 0;
  uint32_t length = 0;
};

enum class FrameStatus {
  kNeedMore,            // fewer bytes than a complete frame
  kOk,                  // a complete frame
  kBadMagic,            // framing lost: reply ERROR and close
  kUnsupportedVersion,  // reply ERROR (version 1) and close
  kTooLarge,            // length > kMaxPayload: reply ERROR and close
  kBadFlags,            // non-zero reserved flags: reply ERROR, frame skipped
};

struct Frame {
  FrameStatus status = FrameStatus::kNeedMore;
  Header header;
  const uint8_t* payload = nullptr;
  size_t frame_size = 0;  // header + payload, valid for kOk and kBadFlags
};

// Parses the frame at the start of `data`. Never reads beyond `len`.
Frame ParseFrame(const uint8_t* data, size_t len);

// Payload decoders. String views point into `payload`. Return kOk or kMalformed (wrong length,
// bad string, trailing bytes).
Reason DecodeCheckOrder(const uint8_t* payload, size_t len, OrderRequest* out);
Reason DecodeReportFill(const uint8_t* payload, size_t len, FillReport* out);
Reason DecodeReportMark(const uint8_t* payload, size_t len, std::string_view* symbol, double* price);
Reason DecodeRestoreMark(const uint8_t* payload, size_t len, std::string_view* symbol, double* price,
                         int64_t* age_ns);
Reason DecodeOrderDone(const uint8_t* payload, size_t len, std::string_view* client_order_id);
Reason DecodeGetState(const uint8_t* payload, size_t len, std::string_view* symbol);

// Encoders append one complete frame to `out`.
void AppendHeader(std::string* out, uint8_t type, uint32_t request_id, uint32_t length);
void EncodeCheckOrder(std::string* out, uint32_t request_id, const OrderRequest& o);
void EncodeReportFill(std::string* out, uint32_t request_id, const FillReport& f);
void EncodeReportMark(std::string* out, uint32_t request_id, std::string_view symbol, double price);
void EncodeRestoreMark(std::string* out, uint32_t request_id, std::string_view symbol, double price, int64_t age_ns);
void EncodeOrderDone(std::string* out, uint32_t request_id, std::string_view client_order_id);
void EncodeEmpty(std::string* out, MsgType type, uint32_t request_id);  // HALT, RESUME, RELOAD
void EncodeGetState(std::string* out, uint32_t request_id, std::string_view symbol);

void EncodeVerdict(std::string* out, uint32_t request_id, const Verdict& v);
// ACK for REPORT_FILL / REPORT_MARK / RESTORE_MARK / ORDER_DONE / HALT / RESUME: reason u16, mode u8, pad u8.
void EncodeAck(std::string* out, MsgType request_type, uint32_t request_id, Reason reason, Mode mode);
void EncodeState(std::string* out, uint32_t request_id, const EngineState& st);
// RELOAD reply: reason u16, message length u16, message (truncated to 512 bytes).
void EncodeReloadResult(std::string* out, uint32_t request_id, Reason reason, std::string_view message);
// ERROR reply: reason u16, message length u16, message (truncated to 256 bytes).
void EncodeError(std::string* out, uint32_t request_id, Reason reason, std::string_view message);

inline constexpr size_t kVerdictPayload = 4;
inline constexpr size_t kAckPayload = 4;
inline constexpr size_t kStatePayload = 128;

}  // namespace protocol
}  // namespace quorum_risk

#endif  // QUORUM_RISK_PROTOCOL_H_
