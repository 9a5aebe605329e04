// Reason codes carried on the wire (u16). Keep in sync with schemas/risk_sidecar_protocol.md.
#ifndef QUORUM_RISK_REASON_H_
#define QUORUM_RISK_REASON_H_

#include <cstdint>

namespace quorum_risk {

enum class Reason : uint16_t {
  kOk = 0,
  // Verdict reasons (CHECK_ORDER).
  kInvalidInstrument = 1,
  kMaxOrderQuantity = 2,
  kMaxOrderNotional = 3,
  kPriceCollar = 4,
  kMaxPosition = 5,
  kMaxGrossExposure = 6,
  kMaxNetExposure = 7,
  kSectorCap = 8,
  kAssetClassCap = 9,
  kReduceOnly = 10,
  kTradingHalted = 11,
  kDailyLoss = 12,
  kRateLimit = 13,
  kMaxOpenOrders = 14,
  kDuplicateOrderId = 15,
  kRestrictedSymbol = 16,
  kStaleMark = 17,
  kMalformed = 18,
  kCapacity = 19,
  // Acknowledgement reasons (fills, order done, resume).
  kUnknownOrder = 20,
  kFillMismatch = 21,
  // Reload.
  kReloadRefused = 22,
  kConfigError = 23,
  // Framing errors (ERROR reply).
  kUnsupportedVersion = 24,
  kFrameTooLarge = 25,
  kUnknownMessageType = 26,
  kBadMagic = 27,
};

inline constexpr int kReasonCount = 28;

// "OK", "MAX_ORDER_QUANTITY", ...; "UNKNOWN" for values outside the enum.
const char* ReasonName(Reason r);

}  // namespace quorum_risk

#endif  // QUORUM_RISK_REASON_H_
