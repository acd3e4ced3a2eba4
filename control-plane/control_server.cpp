#include "control-plane/control_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "shared/config/config_parser.h"
#include "shared/log.h"

namespace fulcrum {

namespace {

constexpr const char* kDefaultSyslog = "/var/log/fulcrum/fulcrum.log";

timeval toTimeval(std::chrono::milliseconds ms) {
  return {static_cast<time_t>(ms.count() / 1000),
          static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

pb::MgmtReply errorReply(const std::string& message, const std::string& word = "",
                         uint32_t line = 0) {
  pb::MgmtReply r;
  r.set_ok(false);
  r.mutable_error()->set_message(message);
  r.mutable_error()->set_word(word);
  r.mutable_error()->set_line(line);
  return r;
}

pb::MgmtReply errorReply(const ConfigError& e) {
  return errorReply(e.message, e.word, e.line);
}

void addCounter(google::protobuf::RepeatedPtrField<pb::Counter>* out, const std::string& name,
                uint64_t value) {
  pb::Counter* c = out->Add();
  c->set_name(name);
  c->set_value(value);
}

bool makeDirs(const std::string& dir) {
  std::string path;
  std::stringstream parts(dir);
  std::string part;
  if (!dir.empty() && dir[0] == '/') path = "/";
  while (std::getline(parts, part, '/')) {
    if (part.empty()) continue;
    path += part + "/";
    if (::mkdir(path.c_str(), 0750) != 0 && errno != EEXIST) return false;
  }
  return true;
}

}  // namespace

ControlServer::ControlServer(event_base* base, Options options)
    : base_(base), options_(std::move(options)) {
  heartbeat_ = event_new(base_, -1, EV_PERSIST, &ControlServer::onHeartbeat, this);
}

ControlServer::~ControlServer() {
  // Nothing may react to the connections closing below: pending requests are
  // dropped first, and onEngineClosed() returns at once while stopping.
  stopping_ = true;
  for (auto& [id, p] : pending_) {
    if (!p.timeout) continue;
    delete static_cast<std::pair<ControlServer*, uint64_t>*>(event_get_callback_arg(p.timeout));
    event_free(p.timeout);
  }
  pending_.clear();
  if (heartbeat_) event_free(heartbeat_);
  for (auto& [c, e] : engines_) e.conn->close("control plane stopping");
}

bool ControlServer::start(std::string* error) {
  if (!options_.stateDir.empty() && !makeDirs(options_.stateDir)) {
    *error = "cannot create state directory " + options_.stateDir + ": " + std::strerror(errno);
    return false;
  }
  const std::string dir = options_.stateDir.empty() ? "/var/lib/fulcrum" : options_.stateDir;
  if (options_.stateDir.empty() && !makeDirs(dir)) {
    *error = "cannot create " + dir + ": " + std::strerror(errno);
    return false;
  }
  store_ = ConfigStore::open(dir + "/config.db", error);
  if (!store_) return false;
  loadDrains();

  monitor_ = std::make_unique<Monitor>(base_, [this](const ServerHealth& h) { onHealth(h); });
  std::optional<CommitRecord> active = store_->active();
  if (!activate(active ? &*active : nullptr, error)) return false;

  std::string listen = options_.listen.empty() ? active_.system.controlChannel : options_.listen;
  auto engineAt = channel::Endpoint::parse(listen);
  if (!engineAt) {
    *error = "cannot listen for engines at '" + listen + "': not ADDR:PORT";
    return false;
  }
  engineListener_ = channel::Listener::listen(
      base_, *engineAt,
      [this](evutil_socket_t fd, std::string peer) {
        channel::Connection::Options o;
        o.idleTimeout = options_.heartbeat * 3;
        channel::Connection::Callbacks cb;
        cb.onFrame = [this](channel::Connection& c, std::string_view p) { onEngineFrame(c, p); };
        cb.onClose = [this](channel::Connection& c, const std::string& r) { onEngineClosed(c, r); };
        auto conn = channel::Connection::adopt(base_, fd, peer, o, std::move(cb));
        if (conn) engines_[conn.get()].conn = conn;
      },
      error);
  if (!engineListener_) return false;

  std::string socketPath = !options_.mgmtSocket.empty() ? options_.mgmtSocket
                           : !options_.stateDir.empty() ? options_.stateDir + "/mgmt.sock"
                                                        : "/run/fulcrum/mgmt.sock";
  std::string socketDir = socketPath.substr(0, socketPath.rfind('/'));
  if (!socketDir.empty() && !makeDirs(socketDir)) {
    *error = "cannot create " + socketDir + ": " + std::strerror(errno);
    return false;
  }
  mgmtListener_ = channel::Listener::listen(
      base_, channel::Endpoint{channel::Endpoint::Kind::kUnix, "", 0, socketPath},
      [this](evutil_socket_t fd, std::string) {
        channel::Connection::Callbacks cb;
        cb.onFrame = [this](channel::Connection& c, std::string_view p) { onMgmtFrame(c, p); };
        cb.onClose = [this](channel::Connection& c, const std::string&) {
          for (auto it = mgmt_.begin(); it != mgmt_.end(); ++it)
            if (it->get() == &c) {
              mgmt_.erase(it);
              break;
            }
        };
        // A client that connects and then says nothing is let go after a while.
        channel::Connection::Options o;
        o.idleTimeout = std::chrono::seconds(60);
        auto conn = channel::Connection::adopt(base_, fd, "management client", o, std::move(cb));
        if (conn) mgmt_.insert(conn);
      },
      error);
  if (!mgmtListener_) return false;

  timeval tv = toTimeval(options_.heartbeat);
  event_add(heartbeat_, &tv);
  log::info("listening for engines on " + engineAt->toString() + ", management on " + socketPath +
            ", syslog " + syslogPath_ + ", generation " + std::to_string(generation_));
  logEvent(Severity::kNotice, "start",
           "control plane started, configuration generation " + std::to_string(generation_));
  return true;
}

void ControlServer::reopenLogs() {
  if (syslog_) syslog_->requestReopen();
}

bool ControlServer::openSyslog(const std::string& path, std::string* error) {
  if (syslog_ && path == syslogPath_) return true;
  SyslogWriter::Options o;
  o.path = path;
  o.alsoHostSyslog = options_.alsoHostSyslog;
  auto writer = SyslogWriter::open(o, error);
  if (!writer) return false;
  syslog_ = std::move(writer);  // the old writer drains and closes in its destructor
  syslogPath_ = path;
  return true;
}

void ControlServer::logEvent(Severity severity, const std::string& msgId,
                             const std::string& message) {
  ++eventLogs_;
  if (!syslog_) return;
  LogRecord r;
  r.timeUnixUs = log::nowUnixUs();
  r.severity = severity;
  r.appName = "fulcrum-control";
  r.msgId = msgId;
  r.message = message;
  syslog_->submit(std::move(r));
}

// ------------------------------------------------------------------ configuration

bool ControlServer::activate(const CommitRecord* record, std::string* error) {
  Config config;
  std::string text;
  if (record) {
    ConfigResult parsed = parseConfig(record->text);
    if (!parsed.ok()) {
      *error = "commit " + std::to_string(record->number) +
               " in the store does not parse: " + parsed.error->toString();
      return false;
    }
    config = parsed.config;
    text = record->text;
  }
  std::string path = options_.syslogFile;
  if (path.empty()) {
    path = config.system.syslogFile;
    if (path == kDefaultSyslog && !options_.stateDir.empty())
      path = options_.stateDir + "/fulcrum.log";
  }
  if (!openSyslog(path, error)) return false;

  active_ = config;
  activeText_ = text;
  generation_ = record ? static_cast<uint64_t>(record->number) : 0;

  // Servers keep their health and drain state by (application, server).
  std::map<ServerKey, ServerStatus> next;
  std::vector<MonitorTarget> targets;
  const int64_t now = log::nowUnixMs();
  for (const ApplicationConfig& app : config.applications) {
    for (const ServerConfig& s : app.servers) {
      ServerKey key{app.name, s.name};
      auto old = servers_.find(key);
      ServerStatus st = old != servers_.end() ? old->second : ServerStatus{};
      if (old == servers_.end()) st.sinceMs = now;
      st.monitored = app.monitor.type != MonitorType::kNone;
      if (!st.monitored) {
        st.up = true;
        st.known = false;
        st.lastCheck.clear();
      }
      next[key] = st;
      if (st.monitored)
        targets.push_back({app.name, s.name, s.address, app.serverPort(s), app.monitor});
    }
  }
  // Drains of servers that are gone are forgotten, those still here kept.
  servers_ = std::move(next);
  monitor_->setTargets(std::move(targets));
  for (auto& [conn, e] : engines_)
    if (e.accepted && !e.closed) sendSnapshot(e);
  saveDrains();
  return true;
}

void ControlServer::onHealth(const ServerHealth& h) {
  auto it = servers_.find({h.application, h.server});
  if (it == servers_.end()) return;
  ServerStatus& st = it->second;
  const bool changed = st.up != h.up || !st.known;
  st.known = h.known;
  st.up = h.up;
  st.sinceMs = h.sinceUnixMs;
  st.lastCheck = h.last.detail;
  if (!changed) return;
  std::string message = "server " + h.application + "/" + h.server + " is " +
                        (h.up ? "up" : "down") + ": " + h.last.detail;
  log::info(message);
  logEvent(h.up ? Severity::kNotice : Severity::kWarning, "server-state", message);
  pushServerState(it->first);
}

void ControlServer::pushServerState(const ServerKey& key) {
  const ServerStatus& st = servers_[key];
  pb::EngineMessage m;
  pb::ConfigUpdate* u = m.mutable_update();
  u->set_generation(generation_);
  pb::ServerState* s = u->add_servers();
  s->set_application(key.first);
  s->set_server(key.second);
  s->set_up(st.up);
  s->set_draining(st.draining);
  broadcast(m);
}

void ControlServer::loadDrains() {
  std::ifstream in(options_.stateDir.empty() ? "/var/lib/fulcrum/drains"
                                             : options_.stateDir + "/drains");
  std::string app, server;
  const int64_t now = log::nowUnixMs();
  while (in >> app >> server) {
    ServerStatus& st = servers_[{app, server}];
    st.draining = true;
    st.sinceMs = now;
  }
}

void ControlServer::saveDrains() const {
  const std::string path =
      (options_.stateDir.empty() ? std::string("/var/lib/fulcrum") : options_.stateDir) + "/drains";
  const std::string tmp = path + ".tmp";
  std::string text;
  for (const auto& [key, st] : servers_)
    if (st.draining) text += key.first + ' ' + key.second + '\n';
  // Written and synced before the rename, so that after a crash or a power
  // loss the file is the old one or the new one, never a torn one.
  FILE* out = std::fopen(tmp.c_str(), "w");
  bool ok = out && std::fwrite(text.data(), 1, text.size(), out) == text.size() &&
            std::fflush(out) == 0 && ::fsync(fileno(out)) == 0;
  if (out && std::fclose(out) != 0) ok = false;
  if (!ok) {
    log::error("cannot write " + tmp + ": drain state not saved");
    return;
  }
  // rename() replaces atomically: a crash leaves the old file or the new one.
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    log::error("cannot replace " + path + ": " + std::strerror(errno));
}

// ------------------------------------------------------------------ engines

void ControlServer::broadcast(const pb::EngineMessage& m) {
  // A send can close a connection (a peer that stopped reading); closing
  // only marks the entry, so iterating here stays valid.
  for (auto& [conn, e] : engines_)
    if (e.accepted && !e.closed) e.conn->send(m);
}

void ControlServer::sendSnapshot(EngineConn& e) {
  pb::EngineMessage m;
  pb::ConfigSnapshot* s = m.mutable_snapshot();
  s->set_generation(generation_);
  s->set_config_text(activeText_);
  for (const auto& [key, st] : servers_) {
    pb::ServerState* state = s->add_servers();
    state->set_application(key.first);
    state->set_server(key.second);
    state->set_up(st.up);
    state->set_draining(st.draining);
  }
  e.conn->send(m);
}

void ControlServer::onEngineFrame(channel::Connection& c, std::string_view payload) {
  auto it = engines_.find(&c);
  if (it == engines_.end()) return;
  EngineConn& e = it->second;
  pb::EngineMessage m;
  if (!m.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    ++badFrames_;
    c.close("engine peer " + c.peer() + " sent a frame that does not parse");
    return;
  }
  e.lastFrameMs = log::nowUnixMs();
  if (!e.accepted && m.body_case() != pb::EngineMessage::kHello) {
    ++badFrames_;
    c.close("engine peer " + c.peer() + " spoke before saying hello");
    return;
  }
  switch (m.body_case()) {
    case pb::EngineMessage::kHello: {
      const pb::Hello& h = m.hello();
      pb::EngineMessage reply;
      pb::HelloReply* r = reply.mutable_hello_reply();
      r->set_protocol_version(channel::kProtocolVersion);
      r->set_software_version(options_.version);
      r->set_heartbeat_interval_ms(static_cast<uint32_t>(options_.heartbeat.count()));
      std::string refusal;
      if (h.protocol_version() != channel::kProtocolVersion)
        refusal = "protocol version " + std::to_string(h.protocol_version()) +
                  " not supported: this control plane speaks version " +
                  std::to_string(channel::kProtocolVersion);
      else if (h.engine_id().empty())
        refusal = "an engine id is required";
      if (!refusal.empty()) {
        r->set_accepted(false);
        r->set_reason(refusal);
        c.send(reply);
        log::warning("refused engine " + h.engine_id() + " from " + c.peer() + ": " + refusal);
        c.closeAfterFlush("refused: " + refusal);
        return;
      }
      // The same engine id again. A restarted engine whose old connection
      // has not timed out yet wins; an old connection that is still talking
      // is a second engine with the same id, and the newcomer is refused
      // (otherwise the two would knock each other off forever).
      const int64_t now = log::nowUnixMs();
      for (auto& [other, oe] : engines_) {
        if (other == &c || !oe.accepted || oe.closed || oe.id != h.engine_id()) continue;
        if (now - oe.lastFrameMs < options_.heartbeat.count() * 3 / 2) {
          std::string why =
              "engine id " + h.engine_id() + " is already connected from " + oe.conn->peer();
          r->set_accepted(false);
          r->set_reason(why);
          c.send(reply);
          log::warning("refused engine from " + c.peer() + ": " + why);
          c.closeAfterFlush("refused: " + why);
          return;
        }
        oe.conn->close("engine " + h.engine_id() + " reconnected from " + c.peer());
        break;
      }
      auto self = engines_.find(&c);
      if (self == engines_.end()) return;
      EngineConn& me = self->second;
      me.accepted = true;
      me.id = h.engine_id();
      me.version = h.software_version();
      me.loops = h.loops();
      me.connectedMs = log::nowUnixMs();
      r->set_accepted(true);
      c.send(reply);
      sendSnapshot(me);
      std::string message = "engine " + me.id + " (version " + me.version + ", " +
                            std::to_string(me.loops) + " loops) connected from " + c.peer();
      log::info(message);
      logEvent(Severity::kNotice, "engine", message);
      return;
    }
    case pb::EngineMessage::kHeartbeat:
      return;
    case pb::EngineMessage::kStatus:
      takeStatus(e, m.status());
      return;
    case pb::EngineMessage::kLogs:
      takeLogs(e, m.logs());
      return;
    case pb::EngineMessage::kDumpReply: {
      auto p = pending_.find(m.dump_reply().request_id());
      if (p == pending_.end()) return;
      for (const pb::Session& s : m.dump_reply().sessions()) {
        pb::SessionRow* row = p->second.reply.add_sessions();
        row->set_engine_id(e.id);
        *row->mutable_session() = s;
      }
      if (m.dump_reply().truncated()) p->second.reply.set_sessions_truncated(true);
      p->second.waiting.erase(&c);
      if (p->second.waiting.empty()) finish(p->first);
      return;
    }
    case pb::EngineMessage::kClearReply: {
      auto p = pending_.find(m.clear_reply().request_id());
      if (p == pending_.end()) return;
      p->second.reply.set_cleared(p->second.reply.cleared() + m.clear_reply().cleared());
      p->second.waiting.erase(&c);
      if (p->second.waiting.empty()) finish(p->first);
      return;
    }
    default:
      ++badFrames_;
      log::warning("engine " + e.id + " sent an unexpected message " +
                   std::to_string(m.body_case()));
  }
}

void ControlServer::onEngineClosed(channel::Connection& c, const std::string& reason) {
  if (stopping_) return;
  auto it = engines_.find(&c);
  if (it == engines_.end() || it->second.closed) return;
  if (it->second.accepted) {
    std::string message = "engine " + it->second.id + " disconnected: " + reason;
    log::warning(message);
    logEvent(Severity::kWarning, "engine", message);
  } else {
    log::warning("engine connection closed before hello: " + reason);
  }
  // Requests waiting on this engine stop waiting for it.
  std::vector<uint64_t> done;
  for (auto& [id, p] : pending_)
    if (p.waiting.erase(&c) && p.waiting.empty()) done.push_back(id);
  it->second.closed = true;
  it->second.accepted = false;
  event_base_once(base_, -1, EV_TIMEOUT, &ControlServer::onSweep, this, nullptr);
  for (uint64_t id : done) finish(id);
}

void ControlServer::onSweep(evutil_socket_t, short, void* arg) {
  static_cast<ControlServer*>(arg)->sweepClosed();
}

void ControlServer::sweepClosed() {
  std::erase_if(engines_, [](const auto& entry) { return entry.second.closed; });
}

void ControlServer::takeLogs(const EngineConn& e, const pb::LogBatch& batch) {
  for (const pb::RequestLog& r : batch.requests()) {
    ++requestLogs_;
    if (!syslog_) continue;
    LogRecord rec;
    rec.timeUnixUs = r.time_unix_us();
    rec.severity = Severity::kInfo;
    rec.appName = "fulcrum-data";
    rec.procId = e.id;
    rec.msgId = "request";
    rec.fields = {{"client", r.client()},
                  {"facade", r.facade()},
                  {"application", r.application()},
                  {"server", r.server()},
                  {"server-address", r.server_address()},
                  {"method", r.method()},
                  {"host", r.host()},
                  {"path", r.path()},
                  {"version", r.version()}};
    rec.message = r.method() + " " + r.host() + " " + r.path() + " " + r.version();
    syslog_->submit(std::move(rec));
  }
  for (const pb::EventLog& ev : batch.events()) {
    ++eventLogs_;
    if (!syslog_) continue;
    LogRecord rec;
    rec.timeUnixUs = ev.time_unix_us();
    rec.severity = static_cast<Severity>(ev.severity() > 7 ? 6 : ev.severity());
    rec.appName = "fulcrum-data";
    rec.procId = e.id;
    rec.msgId = ev.msg_id();
    rec.message = ev.message();
    syslog_->submit(std::move(rec));
  }
}

void ControlServer::takeStatus(EngineConn& e, const pb::EngineStatus& status) {
  e.status = status;
  e.lastStatusMs = log::nowUnixMs();
  if (auto t = watchStore(e.storeWatch, e.id, e.status)) {
    if (t->down) {
      log::warning(t->message);
    } else {
      log::info(t->message);
    }
    logEvent(t->down ? Severity::kWarning : Severity::kNotice, "affinity-store", t->message);
  }
}

void ControlServer::onHeartbeat(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ControlServer*>(arg);
  pb::EngineMessage m;
  m.mutable_heartbeat()->set_time_unix_ms(log::nowUnixMs());
  self->broadcast(m);
}

// ------------------------------------------------------------------ management API

void ControlServer::onMgmtFrame(channel::Connection& c, std::string_view payload) {
  std::shared_ptr<channel::Connection> conn;
  for (const auto& m : mgmt_)
    if (m.get() == &c) conn = m;
  if (!conn) return;
  pb::MgmtRequest request;
  if (!request.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    ++badFrames_;
    log::warning("management client sent a frame that does not parse; closing it");
    c.close("management frame does not parse");
    return;
  }
  ++mgmtRequests_;
  if (request.protocol_version() != channel::kProtocolVersion) {
    c.send(errorReply("protocol version " + std::to_string(request.protocol_version()) +
                      " not supported: this control plane speaks version " +
                      std::to_string(channel::kProtocolVersion)));
    return;
  }
  handle(conn, request);
}

void ControlServer::handle(const std::shared_ptr<channel::Connection>& c,
                           const pb::MgmtRequest& request) {
  pb::MgmtReply reply;
  reply.set_ok(true);
  const std::string user = request.user().empty() ? "unknown" : request.user();
  switch (request.command_case()) {
    case pb::MgmtRequest::kEdit:
      if (auto e = store_->edit(request.edit().statements())) reply = errorReply(*e);
      break;
    case pb::MgmtRequest::kLoad:
      if (auto e = store_->replaceCandidate(request.load().text())) reply = errorReply(*e);
      break;
    case pb::MgmtRequest::kShowConfig:
      reply.set_text(request.show_config().candidate() ? store_->candidateText() : activeText_);
      break;
    case pb::MgmtRequest::kCompare:
      reply.set_text(store_->compare());
      break;
    case pb::MgmtRequest::kCommit: {
      auto result = store_->commit(user, request.commit().comment());
      if (auto* e = std::get_if<ConfigError>(&result)) {
        reply = errorReply(*e);
        break;
      }
      const int64_t number = std::get<int64_t>(result);
      std::optional<CommitRecord> record = store_->commitByNumber(number);
      std::string error;
      if (!record || !activate(&*record, &error)) {
        reply = errorReply("commit " + std::to_string(number) + " stored but not activated: " +
                           (record ? error : store_->lastReadError()));
        break;
      }
      reply.set_commit_number(number);
      std::string message =
          "commit " + std::to_string(number) + " by " + user +
          (request.commit().comment().empty() ? std::string() : ": " + request.commit().comment());
      log::info(message);
      logEvent(Severity::kNotice, "commit", message);
      break;
    }
    case pb::MgmtRequest::kRollback:
      if (auto e = store_->rollback(request.rollback().number()))
        reply = errorReply(*e);
      else
        reply.set_text("commit " + std::to_string(request.rollback().number()) +
                       " is now the candidate; review with 'fulcrum compare', then commit");
      break;
    case pb::MgmtRequest::kShowCommits:
      for (const CommitRecord& r : store_->commits()) {
        pb::CommitInfo* info = reply.add_commits();
        info->set_number(r.number);
        info->set_time_unix_ms(r.timeUnixMs);
        info->set_user(r.user);
        info->set_comment(r.comment);
      }
      break;
    case pb::MgmtRequest::kShowServers:
      fillServers(reply);
      break;
    case pb::MgmtRequest::kShowStatistics:
      fillStatistics(reply);
      break;
    case pb::MgmtRequest::kShowEngines:
    case pb::MgmtRequest::kShowAffinityStore:
      fillEngines(reply);
      break;
    case pb::MgmtRequest::kShowSessions:
    case pb::MgmtRequest::kClearSessions: {
      const std::string& app = request.command_case() == pb::MgmtRequest::kShowSessions
                                   ? request.show_sessions().application()
                                   : request.clear_sessions().application();
      bool known = app.empty();
      for (const ApplicationConfig& a : active_.applications) known = known || a.name == app;
      if (!known) {
        reply = errorReply("no application '" + app + "' in the active configuration", app);
        break;
      }
      fanOut(c, request);
      return;
    }
    case pb::MgmtRequest::kDrain: {
      const pb::DrainRequest& d = request.drain();
      auto it = servers_.find({d.application(), d.server()});
      if (it == servers_.end()) {
        bool appKnown = false;
        for (const ApplicationConfig& a : active_.applications)
          appKnown |= a.name == d.application();
        reply =
            appKnown
                ? errorReply(
                      "application " + d.application() + " has no server '" + d.server() + "'",
                      d.server())
                : errorReply("no application '" + d.application() + "' in the active configuration",
                             d.application());
        break;
      }
      if (it->second.draining != d.drain()) {
        it->second.draining = d.drain();
        saveDrains();
        pushServerState(it->first);
        std::string message = "server " + d.application() + "/" + d.server() +
                              (d.drain() ? " draining" : " no longer draining") + " (by " + user +
                              ")";
        log::info(message);
        logEvent(Severity::kNotice, "drain", message);
      }
      reply.set_text(std::string("server ") + d.application() + "/" + d.server() +
                     (d.drain() ? " is draining: no new sessions, existing ones continue"
                                : " takes new sessions"));
      break;
    }
    case pb::MgmtRequest::COMMAND_NOT_SET:
      reply = errorReply("empty request: no command");
      break;
  }
  c->send(reply);
}

void ControlServer::fillServers(pb::MgmtReply& reply) const {
  std::map<ServerKey, uint64_t> active;
  for (const auto& [conn, e] : engines_)
    for (const pb::ServerSessions& s : e.status.servers())
      active[{s.application(), s.server()}] += s.active();
  for (const ApplicationConfig& app : active_.applications) {
    for (const ServerConfig& s : app.servers) {
      ServerKey key{app.name, s.name};
      const ServerStatus& st = servers_.at(key);
      pb::ServerRow* row = reply.add_servers();
      row->set_application(app.name);
      row->set_server(s.name);
      row->set_address(formatEndpoint(s.address, app.serverPort(s)));
      row->set_state(!st.monitored ? "unmonitored" : !st.known ? "unknown" : st.up ? "up" : "down");
      row->set_draining(st.draining);
      row->set_since_unix_ms(st.sinceMs);
      row->set_last_check(st.lastCheck);
      row->set_active_sessions(active[key]);
    }
  }
}

void ControlServer::fillEngines(pb::MgmtReply& reply) const {
  for (const auto& [conn, e] : engines_) {
    if (!e.accepted) continue;
    pb::EngineRow* row = reply.add_engines();
    row->set_engine_id(e.id);
    row->set_software_version(e.version);
    row->set_connected_since_unix_ms(e.connectedMs);
    row->set_loops(e.loops);
    row->set_last_status_unix_ms(e.lastStatusMs);
    row->set_config_generation(e.status.config_generation());
    row->set_sessions(e.status.sessions());
    row->set_session_capacity(e.status.session_capacity());
    row->set_peer(e.conn->peer());
    if (e.status.has_affinity_store()) *row->mutable_affinity_store() = e.status.affinity_store();
  }
}

void ControlServer::fillStatistics(pb::MgmtReply& reply) const {
  std::map<std::string, uint64_t> totals;
  std::map<std::string, std::map<std::string, uint64_t>> perApp;
  uint64_t sessions = 0, fallbacks = 0, logsDropped = 0, engines = 0;
  std::vector<const pb::EngineStatus*> statuses;
  for (const auto& [conn, e] : engines_) {
    if (!e.accepted) continue;
    ++engines;
    statuses.push_back(&e.status);
    for (const pb::ApplicationCounters& a : e.status.applications())
      for (const pb::Counter& c : a.counters()) perApp[a.application()][c.name()] += c.value();
    for (const pb::LoopStatus& loop : e.status.loops())
      for (const pb::Counter& c : loop.counters()) totals[c.name()] += c.value();
    sessions += e.status.sessions();
    fallbacks += e.status.store_fallbacks();
    logsDropped += e.status.logs_dropped();
  }
  pb::Statistics* s = reply.mutable_statistics();
  for (const auto& [name, value] : totals) addCounter(s->mutable_totals(), name, value);
  for (const auto& [app, counters] : perApp) {
    pb::ApplicationCounters* a = s->add_applications();
    a->set_application(app);
    for (const auto& [name, value] : counters) addCounter(a->mutable_counters(), name, value);
  }
  addCounter(s->mutable_totals(), "sessions", sessions);
  addCounter(s->mutable_totals(), "store_fallbacks", fallbacks);
  addCounter(s->mutable_totals(), "engine_logs_dropped", logsDropped);
  for (const auto& [name, value] : storeTotals(statuses))
    addCounter(s->mutable_totals(), name, value);
  addCounter(s->mutable_control(), "engines_connected", engines);
  addCounter(s->mutable_control(), "config_generation", generation_);
  addCounter(s->mutable_control(), "request_logs_received", requestLogs_);
  addCounter(s->mutable_control(), "events_logged", eventLogs_);
  addCounter(s->mutable_control(), "bad_frames", badFrames_);
  addCounter(s->mutable_control(), "management_requests", mgmtRequests_);
  if (syslog_) {
    SyslogStats st = syslog_->stats();
    for (const SyslogStatInfo& info : kSyslogStatInfo)
      addCounter(s->mutable_control(), "syslog_" + std::string(info.name), st.*info.field);
  }
}

void ControlServer::fanOut(const std::shared_ptr<channel::Connection>& c,
                           const pb::MgmtRequest& request) {
  const uint64_t id = nextRequestId_++;
  Pending& p = pending_[id];
  p.mgmt = c;
  p.reply.set_ok(true);
  pb::EngineMessage m;
  if (request.command_case() == pb::MgmtRequest::kShowSessions) {
    m.mutable_dump_request()->set_request_id(id);
    m.mutable_dump_request()->set_application(request.show_sessions().application());
    m.mutable_dump_request()->set_limit(10000);
  } else {
    m.mutable_clear_request()->set_request_id(id);
    m.mutable_clear_request()->set_application(request.clear_sessions().application());
  }
  for (auto& [conn, e] : engines_) {
    if (!e.accepted || e.closed) continue;
    if (e.conn->send(m)) p.waiting.insert(conn);
  }
  if (p.waiting.empty()) {
    finish(id);
    return;
  }
  // An engine that does not answer in time is left out, not waited for.
  auto* arg = new std::pair<ControlServer*, uint64_t>(this, id);
  p.timeout = event_new(base_, -1, 0, &ControlServer::onFanoutTimeout, arg);
  timeval tv = toTimeval(options_.fanoutTimeout);
  event_add(p.timeout, &tv);
}

void ControlServer::onFanoutTimeout(evutil_socket_t, short, void* arg) {
  auto* pair = static_cast<std::pair<ControlServer*, uint64_t>*>(arg);
  ControlServer* self = pair->first;
  uint64_t id = pair->second;
  auto it = self->pending_.find(id);
  if (it != self->pending_.end()) {
    log::warning(std::to_string(it->second.waiting.size()) +
                 " engine(s) did not answer a session request in time");
    it->second.waiting.clear();
    self->finish(id);
  }
}

void ControlServer::finish(uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending p = std::move(it->second);
  pending_.erase(it);
  if (p.timeout) {
    void* arg = event_get_callback_arg(p.timeout);
    event_free(p.timeout);
    delete static_cast<std::pair<ControlServer*, uint64_t>*>(arg);
  }
  if (p.mgmt && p.mgmt->isOpen()) p.mgmt->send(p.reply);
}

}  // namespace fulcrum
