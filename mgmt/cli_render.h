// Output of `fulcrum`: a MgmtReply as text for people or JSON for scripts,
// and the one-line form of a reply's error.
//
// Tables have a header row, columns separated by two spaces and padded to
// the widest cell (numbers right-aligned), no trailing blanks; an empty
// cell prints as "-", and control characters or bytes that are not UTF-8
// in a cell print as \xNN, so every row stays one line.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "shared/proto/fulcrum.pb.h"

namespace fulcrum::cli {

using Clock = std::chrono::system_clock;

// What stdout shows for a reply with ok=true to a request whose command was
// `command`; every line ends in '\n', and it is empty when there is nothing
// to say. `now` is the time that SINCE, CONNECTED and LAST-STATUS count from.
//   show_servers     APPLICATION SERVER ADDRESS STATE SINCE LAST-CHECK SESSIONS
//                    (STATE "up,draining" when draining)
//   show_sessions    CLIENT FACADE APPLICATION SERVER STATE AGE EXPIRES ENGINE,
//                    then "(truncated)" when sessions_truncated
//   show_engines     ENGINE VERSION PEER CONNECTED LOOPS GENERATION SESSIONS STORE LAST-STATUS
//                    (SESSIONS as "IN-USE/CAPACITY"; STORE "local", "redis up",
//                    "redis down", "redis connecting", "-" when none was reported)
//   show_affinity_store  ENGINE STORE STATE LAST-ERROR (STORE the address), then,
//                    unless there is no engine, a blank line and a table with
//                    a COUNTER column and one column per engine (titled by its
//                    id), a row for each AffinityStoreStatus counter by its
//                    .proto name (requests ... session_sync_recoveries), "-"
//                    for an engine that reported no store
//   show_commits     COMMIT TIME USER COMMENT (TIME in UTC)
//   show_statistics  sections "totals", "application NAME"..., "control plane",
//                    each a title line and a NAME VALUE table, one blank line between
//   show_config      text as is;  compare: text, or "no changes" when empty
//   commit           "commit N"
//   anything else    text (a confirmation) when not empty
std::string renderText(const pb::MgmtReply& reply, pb::MgmtRequest::CommandCase command,
                       Clock::time_point now);

// The reply as one JSON object and '\n': the proto3 JSON mapping with the
// .proto's field names and fields at their default values included
// (64-bit integers are JSON strings, as the mapping says). nullopt and
// *error when protobuf cannot print it.
std::optional<std::string> renderJson(const pb::MgmtReply& reply, std::string* error);

// The error of a reply with ok=false, in the form of ConfigError::toString():
// "line 3: 'algorithm': MESSAGE", without "line L: " when line is 0 and
// without "'WORD': " when word is empty; one line.
std::string formatReplyError(const pb::MgmtError& error);

// A span for people: "45s", "3m12s", "3m", "2h5m", "3d4h" (the largest unit
// and, when not zero, the next one).
std::string formatDuration(uint64_t seconds);

// "3m12s ago" for a time `unixMs` before `now`; "-" for 0 (never); a time
// after `now` (clocks of two hosts) counts as "0s ago".
std::string formatAgo(int64_t unixMs, Clock::time_point now);

// "2026-11-22 00:10:47", in UTC; "-" for 0.
std::string formatUtc(int64_t unixMs);

}  // namespace fulcrum::cli
