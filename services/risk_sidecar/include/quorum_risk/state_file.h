// The sidecar's state file: what a restarted sidecar must not forget (RiskEngine::ExportState), as text.
//
//   quorum-risk-state 1
//   saved_wall_ns <int>
//   ledger <cash> <peak_nav> <day_start_nav> <day_index> <manual_halt 0|1> <daily_halt 0|1> <reduce_only 0|1>
//   symbol <name> <position> <mark> <has_mark 0|1> <mark_age_ns> <asset_class|-> <sector|->
//   order <client_order_id> <symbol> <side 1|2> <open_qty>
//   end
//
// Numbers are written so that they read back exactly (%.17g). The file is replaced atomically (a new file,
// fsync, rename), so a crash leaves the previous state or the new one, never half of one; a file without
// its `end` line is refused.
#ifndef QUORUM_RISK_STATE_FILE_H_
#define QUORUM_RISK_STATE_FILE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "quorum_risk/engine.h"
#include "quorum_risk/status.h"

namespace quorum_risk {

struct SavedState {
  StateImage image;
  int64_t saved_wall_ns = 0;
};

std::string FormatState(const StateImage& image, int64_t saved_wall_ns);
// Errors name the line.
Result<SavedState> ParseState(std::string_view text);
// Writes `text` to `path` atomically.
Status WriteStateFile(const std::string& path, const std::string& text);
// The file's text, or nullopt when there is no file (a first start).
Result<std::optional<std::string>> ReadStateFile(const std::string& path);

}  // namespace quorum_risk

#endif  // QUORUM_RISK_STATE_FILE_H_
