#include "data-plane/engine_config.h"

#include "data-plane/affinity_store.h"

namespace fulcrum {

std::unique_ptr<EngineConfig> EngineConfig::build(const Config& config, std::string* error,
                                                  uint32_t maglevTableSize) {
  auto fail = [&](std::string message) {
    if (error) *error = std::move(message);
    return std::unique_ptr<EngineConfig>();
  };
  if (config.serviceSets.size() > 0xffff) return fail("more than 65535 service sets");
  if (config.applications.size() > 0xffff) return fail("more than 65535 applications");
  auto ec = std::unique_ptr<EngineConfig>(new EngineConfig());
  ec->config_ = config;
  for (const ApplicationConfig& a : config.applications) {
    int ss = ec->serviceSetIndex(a.serviceSet);
    if (ss < 0) return fail("application " + a.name + ": unknown service set " + a.serviceSet);
    if (!a.facade.isV4()) return fail("application " + a.name + ": IPv6 is not supported yet");
    if (a.servers.size() > 0xffff)
      return fail("application " + a.name + ": more than 65535 servers");
    auto app = std::make_unique<AppRuntime>();
    app->name = a.name;
    app->index = static_cast<uint16_t>(ec->apps_.size());
    app->serviceSet = static_cast<uint16_t>(ss);
    app->facade = a.facade.v4HostOrder();
    app->port = a.port;
    app->persistence = a.persistence;
    app->persistenceTimeout = a.persistenceTimeoutSeconds;
    app->sessionTimeout = a.sessionTimeoutSeconds;
    app->httpFilter = a.httpFilter;
    app->sessionSync = a.sessionSync;
    app->affinityScope = stableNameId(a.name);
    app->sessionSyncScope = stableNameId("session-sync/" + a.name);
    std::vector<PoolServer> servers;
    for (const ServerConfig& s : a.servers) {
      if (!s.address.isV4()) return fail("server " + s.name + ": IPv6 is not supported yet");
      const auto index = static_cast<uint16_t>(servers.size());
      servers.push_back({s.name, s.address, a.serverPort(s), s.weight, s.maxConnections});
      app->serverAddress.push_back(s.address.v4HostOrder());
      app->serverPort.push_back(a.serverPort(s));
      const auto id = static_cast<uint32_t>(stableNameId(s.name));
      app->serverStableId.push_back(id);
      if (!app->serverByStableId.emplace(id, index).second)
        return fail("application " + a.name + ": server names " + s.name +
                    " and another hash alike for persistence; rename one");
      app->serverByName.emplace(s.name, index);
      if (a.sessionSync)
        ec->syncServers_.emplace((uint64_t{s.address.v4HostOrder()} << 16) | a.serverPort(s),
                                 app->index);
    }
    app->pool = std::make_unique<ServerPool>(a.algorithm, std::move(servers), maglevTableSize);
    uint64_t key = facadeKey(app->serviceSet, app->facade, app->port);
    if (!ec->byFacade_.emplace(key, app->index).second)
      return fail("application " + a.name + ": facade already used in its service set");
    ec->appByName_.emplace(app->name, app->index);
    ec->apps_.push_back(std::move(app));
  }
  return ec;
}

int EngineConfig::serviceSetIndex(std::string_view name) const {
  for (size_t i = 0; i < config_.serviceSets.size(); ++i)
    if (config_.serviceSets[i].name == name) return static_cast<int>(i);
  return -1;
}

}  // namespace fulcrum
