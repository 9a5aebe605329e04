#include "quorum_risk/reason.h"

namespace quorum_risk {

const char* ReasonName(Reason r) {
  switch (r) {
    case Reason::kOk: return "OK";
    case Reason::kInvalidInstrument: return "INVALID_INSTRUMENT";
    case Reason::kMaxOrderQuantity: return "MAX_ORDER_QUANTITY";
    case Reason::kMaxOrderNotional: return "MAX_ORDER_NOTIONAL";
    case Reason::kPriceCollar: return "PRICE_COLLAR";
    case Reason::kMaxPosition: return "MAX_POSITION";
    case Reason::kMaxGrossExposure: return "MAX_GROSS_EXPOSURE";
    case Reason::kMaxNetExposure: return "MAX_NET_EXPOSURE";
    case Reason::kSectorCap: return "SECTOR_CAP";
    case Reason::kAssetClassCap: return "ASSET_CLASS_CAP";
    case Reason::kReduceOnly: return "REDUCE_ONLY";
    case Reason::kTradingHalted: return "TRADING_HALTED";
    case Reason::kDailyLoss: return "DAILY_LOSS";
    case Reason::kRateLimit: return "RATE_LIMIT";
    case Reason::kMaxOpenOrders: return "MAX_OPEN_ORDERS";
    case Reason::kDuplicateOrderId: return "DUPLICATE_ORDER_ID";
    case Reason::kRestrictedSymbol: return "RESTRICTED_SYMBOL";
    case Reason::kStaleMark: return "STALE_MARK";
    case Reason::kMalformed: return "MALFORMED";
    case Reason::kCapacity: return "CAPACITY";
    case Reason::kUnknownOrder: return "UNKNOWN_ORDER";
    case Reason::kFillMismatch: return "FILL_MISMATCH";
    case Reason::kReloadRefused: return "RELOAD_REFUSED";
    case Reason::kConfigError: return "CONFIG_ERROR";
    case Reason::kUnsupportedVersion: return "UNSUPPORTED_VERSION";
    case Reason::kFrameTooLarge: return "FRAME_TOO_LARGE";
    case Reason::kUnknownMessageType: return "UNKNOWN_MESSAGE_TYPE";
    case Reason::kBadMagic: return "BAD_MAGIC";
  }
  return "UNKNOWN";
}

}  // namespace quorum_risk
