#include "mgmt/cli_render.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <ctime>
#include <string_view>
#include <utility>
#include <vector>

#include "mgmt/cli_text.h"
#include "shared/config/config_parser.h"

namespace fulcrum::cli {

namespace {

class Table {
 public:
  struct Column {
    std::string_view title;
    bool rightAligned = false;
  };

  explicit Table(std::vector<Column> columns) : columns_(std::move(columns)) {
    widths_.resize(columns_.size());
    for (size_t c = 0; c < columns_.size(); ++c) widths_[c] = displayWidth(columns_[c].title);
  }

  // Cells come from the control plane, so they are made safe for one line here.
  void add(std::vector<std::string> cells) {
    cells.resize(columns_.size());
    for (size_t c = 0; c < cells.size(); ++c) {
      cells[c] = cells[c].empty() ? "-" : escapeForDisplay(cells[c]);
      widths_[c] = std::max(widths_[c], displayWidth(cells[c]));
    }
    rows_.push_back(std::move(cells));
  }

  // Lines up several tables printed one after another (statistics sections).
  void widen(std::vector<size_t>& widths) const {
    widths.resize(std::max(widths.size(), widths_.size()));
    for (size_t c = 0; c < widths_.size(); ++c) widths[c] = std::max(widths[c], widths_[c]);
  }

  std::string render(const std::vector<size_t>& minWidths = {}) const {
    std::vector<size_t> widths = widths_;
    for (size_t c = 0; c < widths.size() && c < minWidths.size(); ++c) {
      widths[c] = std::max(widths[c], minWidths[c]);
    }
    std::string out;
    std::vector<std::string> header;
    for (const Column& column : columns_) header.emplace_back(column.title);
    appendRow(out, header, widths);
    for (const auto& row : rows_) appendRow(out, row, widths);
    return out;
  }

 private:
  void appendRow(std::string& out, const std::vector<std::string>& cells,
                 const std::vector<size_t>& widths) const {
    std::string line;
    for (size_t c = 0; c < cells.size(); ++c) {
      if (c) line += "  ";
      const std::string padding(widths[c] - displayWidth(cells[c]), ' ');
      if (columns_[c].rightAligned) {
        line += padding + cells[c];
      } else {
        line += cells[c] + padding;
      }
    }
    // The last column's padding, or a cell that ends in blanks.
    line.erase(line.find_last_not_of(' ') + 1);
    out += line;
    out += '\n';
  }

  std::vector<Column> columns_;
  std::vector<size_t> widths_;
  std::vector<std::vector<std::string>> rows_;
};

std::string number(uint64_t n) {
  return std::to_string(n);
}

std::string withNewline(const std::string& text) {
  if (text.empty() || text.back() == '\n') return text;
  return text + "\n";
}

std::string renderServers(const pb::MgmtReply& reply, Clock::time_point now) {
  Table table({{"APPLICATION"},
               {"SERVER"},
               {"ADDRESS"},
               {"STATE"},
               {"SINCE"},
               {"LAST-CHECK"},
               {"SESSIONS", true}});
  for (const pb::ServerRow& s : reply.servers()) {
    std::string state = s.state();
    if (s.draining()) state += state.empty() ? "draining" : ",draining";
    table.add({s.application(), s.server(), s.address(), state, formatAgo(s.since_unix_ms(), now),
               s.last_check(), number(s.active_sessions())});
  }
  return table.render();
}

std::string renderSessions(const pb::MgmtReply& reply) {
  Table table({{"CLIENT"},
               {"FACADE"},
               {"APPLICATION"},
               {"SERVER"},
               {"STATE"},
               {"AGE", true},
               {"EXPIRES", true},
               {"ENGINE"}});
  for (const pb::SessionRow& row : reply.sessions()) {
    const pb::Session& s = row.session();
    table.add({s.client(), s.facade(), s.application(),
               s.server().empty() ? s.server_address() : s.server(), s.state(),
               formatDuration(s.age_seconds()), formatDuration(s.expires_in_seconds()),
               row.engine_id()});
  }
  std::string out = table.render();
  if (reply.sessions_truncated()) out += "(truncated)\n";
  return out;
}

// The STORE column of `show engines`: "local", "redis up", "redis down",
// "redis connecting"; empty (so "-") when the engine reported no store.
std::string storeSummary(const pb::EngineRow& e) {
  if (!e.has_affinity_store()) return "";
  const pb::AffinityStoreStatus& s = e.affinity_store();
  if (s.kind() == "local" || s.state() == "local") return "local";
  std::string out = s.kind().empty() ? "store" : s.kind();
  if (!s.state().empty()) out += " " + s.state();
  return out;
}

std::string renderEngines(const pb::MgmtReply& reply, Clock::time_point now) {
  Table table({{"ENGINE"},
               {"VERSION"},
               {"PEER"},
               {"CONNECTED"},
               {"LOOPS", true},
               {"GENERATION", true},
               {"SESSIONS", true},
               {"STORE"},
               {"LAST-STATUS"}});
  for (const pb::EngineRow& e : reply.engines()) {
    std::string sessions = number(e.sessions());
    if (e.session_capacity() != 0) sessions += "/" + number(e.session_capacity());
    table.add({e.engine_id(), e.software_version(), e.peer(),
               formatAgo(e.connected_since_unix_ms(), now), number(e.loops()),
               number(e.config_generation()), sessions, storeSummary(e),
               formatAgo(e.last_status_unix_ms(), now)});
  }
  return table.render();
}

// The counters of `show affinity-store`, as AffinityStoreStatus names them.
struct StoreCounter {
  std::string_view name;
  uint64_t (pb::AffinityStoreStatus::*get)() const;
};
constexpr StoreCounter kStoreCounters[] = {
    {"requests", &pb::AffinityStoreStatus::requests},
    {"answered", &pb::AffinityStoreStatus::answered},
    {"failed", &pb::AffinityStoreStatus::failed},
    {"timeouts", &pb::AffinityStoreStatus::timeouts},
    {"down_decisions", &pb::AffinityStoreStatus::down_decisions},
    {"cache_hits", &pb::AffinityStoreStatus::cache_hits},
    {"cache_misses", &pb::AffinityStoreStatus::cache_misses},
    {"reconnects", &pb::AffinityStoreStatus::reconnects},
    {"latency_avg_us", &pb::AffinityStoreStatus::latency_avg_us},
    {"latency_max_us", &pb::AffinityStoreStatus::latency_max_us},
    {"session_sync_writes", &pb::AffinityStoreStatus::session_sync_writes},
    {"session_sync_recoveries", &pb::AffinityStoreStatus::session_sync_recoveries},
};

// One row per engine (what its store is, its state, the last error), then
// the counters with one column per engine, so that engines compare at a glance.
std::string renderAffinityStore(const pb::MgmtReply& reply) {
  Table stores({{"ENGINE"}, {"STORE"}, {"STATE"}, {"LAST-ERROR"}});
  for (const pb::EngineRow& e : reply.engines()) {
    const pb::AffinityStoreStatus& s = e.affinity_store();
    stores.add(
        {e.engine_id(), s.address().empty() ? s.kind() : s.address(), s.state(), s.last_error()});
  }
  std::string out = stores.render();
  if (reply.engines().empty()) return out;

  // Column titles are engine ids from the control plane: made safe here, as
  // Table does for cells. They must outlive `counters`, which views them.
  std::vector<std::string> titles;
  for (const pb::EngineRow& e : reply.engines()) {
    titles.push_back(e.engine_id().empty() ? "-" : escapeForDisplay(e.engine_id()));
  }
  std::vector<Table::Column> columns = {{"COUNTER"}};
  for (const std::string& title : titles) columns.push_back({title, true});
  Table counters(std::move(columns));
  for (const StoreCounter& c : kStoreCounters) {
    std::vector<std::string> row = {std::string(c.name)};
    for (const pb::EngineRow& e : reply.engines()) {
      row.push_back(e.has_affinity_store() ? number((e.affinity_store().*c.get)()) : "");
    }
    counters.add(std::move(row));
  }
  return out + "\n" + counters.render();
}

std::string renderCommits(const pb::MgmtReply& reply) {
  Table table({{"COMMIT", true}, {"TIME"}, {"USER"}, {"COMMENT"}});
  for (const pb::CommitInfo& c : reply.commits()) {
    table.add({std::to_string(c.number()), formatUtc(c.time_unix_ms()), c.user(), c.comment()});
  }
  return table.render();
}

Table counterTable(const google::protobuf::RepeatedPtrField<pb::Counter>& counters) {
  Table table({{"NAME"}, {"VALUE", true}});
  for (const pb::Counter& c : counters) table.add({c.name(), number(c.value())});
  return table;
}

std::string renderStatistics(const pb::MgmtReply& reply) {
  const pb::Statistics& stats = reply.statistics();
  std::vector<std::pair<std::string, Table>> sections;
  sections.emplace_back("totals", counterTable(stats.totals()));
  for (const pb::ApplicationCounters& a : stats.applications()) {
    sections.emplace_back("application " + escapeForDisplay(a.application()),
                          counterTable(a.counters()));
  }
  sections.emplace_back("control plane", counterTable(stats.control()));
  std::vector<size_t> widths;
  for (const auto& section : sections) section.second.widen(widths);
  std::string out;
  for (const auto& [title, table] : sections) {
    if (!out.empty()) out += '\n';
    out += title + "\n" + table.render(widths);
  }
  return out;
}

}  // namespace

std::string renderText(const pb::MgmtReply& reply, pb::MgmtRequest::CommandCase command,
                       Clock::time_point now) {
  using Case = pb::MgmtRequest::CommandCase;
  switch (command) {
    case Case::kShowServers:
      return renderServers(reply, now);
    case Case::kShowSessions:
      return renderSessions(reply);
    case Case::kShowEngines:
      return renderEngines(reply, now);
    case Case::kShowAffinityStore:
      return renderAffinityStore(reply);
    case Case::kShowCommits:
      return renderCommits(reply);
    case Case::kShowStatistics:
      return renderStatistics(reply);
    case Case::kCompare:
      return reply.text().empty() ? "no changes\n" : withNewline(reply.text());
    case Case::kCommit:
      return "commit " + std::to_string(reply.commit_number()) + "\n";
    case Case::kShowConfig:
    case Case::kEdit:
    case Case::kLoad:
    case Case::kRollback:
    case Case::kClearSessions:
    case Case::kDrain:
    case Case::COMMAND_NOT_SET:
      break;
  }
  return withNewline(reply.text());
}

std::optional<std::string> renderJson(const pb::MgmtReply& reply, std::string* error) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string out;
  const auto status = google::protobuf::util::MessageToJsonString(reply, &out, options);
  if (!status.ok()) {
    *error = std::string(status.message());
    return std::nullopt;
  }
  return out + "\n";
}

std::string formatReplyError(const pb::MgmtError& error) {
  if (error.message().empty() && error.word().empty() && error.line() == 0) {
    return "the control plane refused the request without saying why";
  }
  // The control plane's errors are mostly ConfigErrors; one format for both.
  return ConfigError{error.line(), error.word(), error.message()}.toString();
}

std::string formatDuration(uint64_t seconds) {
  struct Unit {
    uint64_t seconds;
    char name;
  };
  static constexpr Unit kUnits[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
  for (size_t u = 0; u + 1 < std::size(kUnits); ++u) {
    if (seconds < kUnits[u].seconds) continue;
    std::string out = std::to_string(seconds / kUnits[u].seconds) + kUnits[u].name;
    const uint64_t next = seconds % kUnits[u].seconds / kUnits[u + 1].seconds;
    if (next != 0) out += std::to_string(next) + kUnits[u + 1].name;
    return out;
  }
  return std::to_string(seconds) + "s";
}

std::string formatAgo(int64_t unixMs, Clock::time_point now) {
  if (unixMs == 0) return "-";
  const int64_t nowMs =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const int64_t elapsed = std::max<int64_t>(0, nowMs - unixMs);
  return formatDuration(static_cast<uint64_t>(elapsed / 1000)) + " ago";
}

std::string formatUtc(int64_t unixMs) {
  if (unixMs == 0) return "-";
  // Floor, so that a time before 1970 still names the second it falls in.
  int64_t seconds = unixMs / 1000;
  if (unixMs % 1000 < 0) --seconds;
  const auto t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  char buffer[32];
  if (!gmtime_r(&t, &tm) || std::strftime(buffer, sizeof(buffer), "%Y-%m-%d %H:%M:%S", &tm) == 0) {
    return std::to_string(unixMs);
  }
  return buffer;
}

}  // namespace fulcrum::cli
