// The C++ API over agent::Agent: the public types are copied out of the internal ones so that no
// internal type (tl::expected, nlohmann, OpenSSL, SQLite) reaches include/airlock/.
#include "airlock/client.hpp"

#include <exception>
#include <new>

#include "agent/agent.h"
#include "agent/agent_config.h"
#include "sdk/status_map.h"

namespace airlock::sdk {
namespace {

Result<agent::AgentConfig> ToAgentConfig(const Config& c) {
  const auto bad = [](const std::string& m) { return Error(ErrorCode::kInvalidArgument, m); };
  const std::pair<const char*, const std::string*> required[] = {{"server", &c.server},
                                                                 {"app", &c.app},
                                                                 {"channel", &c.channel},
                                                                 {"install_dir", &c.install_dir},
                                                                 {"trusted_root", &c.trusted_root}};
  for (const auto& [name, value] : required) {
    if (value->empty()) return bad(std::string("config: ") + name + " must not be empty");
  }
  agent::AgentConfig a;
  a.server = c.server;
  a.app = c.app;
  a.channel = c.channel;
  a.install_dir = c.install_dir;
  a.trusted_root = c.trusted_root;
  a.enrollment_token = c.enrollment_token;
  a.restart_command = c.restart_command;
  a.health_timeout_seconds = c.health_timeout_seconds;
  a.crash_loop_limit = c.crash_loop_limit;
  a.platform = c.platform;
  a.native_version = c.native_version;
  a.builtin_version = c.builtin_version;
  a.builtin_dir = c.builtin_dir;
  if (auto checked = agent::CheckAgentConfig(a, "config: "); !checked) {
    return bad(checked.error().message());
  }
  if (c.platform.empty()) return bad("config: platform must not be empty");
  return a;
}

// Runs `body`, turning an exception (an allocation failure, a bug) into an Error: nothing throws
// out of the library.
template <typename T, typename F>
Result<T> Guarded(F&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return Error(ErrorCode::kNoMemory, "out of memory");
  } catch (const std::exception& e) {
    return Error(ErrorCode::kInternal, std::string("unexpected exception: ") + e.what());
  } catch (...) {
    return Error(ErrorCode::kInternal, "unexpected exception");
  }
}

InstallStatus ToStatus(const client::InstallStatus& s, const agent::AgentConfig& c) {
  InstallStatus out;
  out.app = c.app;
  out.version = s.version.empty() ? c.builtin_version : s.version;
  out.release = s.release;
  out.state = std::string(client::InstallStateName(s.state));
  out.last_good_release = s.last_good_release;
  out.last_good_version = s.last_good_version;
  out.highest_security_floor = s.highest_floor;
  out.last_rollback_reason = s.last_rollback_reason;
  for (const auto& f : s.failed) out.failed.push_back({f.id, f.version, f.reason});
  return out;
}

}  // namespace

struct Client::Impl {
  std::optional<agent::Agent> agent;
  ProgressCallback progress;
  MessageCallback message;

  template <typename T, typename U, typename F>
  Result<T> Call(airlock::Result<U> (agent::Agent::*method)(), F&& convert) {
    return Guarded<T>([&]() -> Result<T> {
      auto got = ((*agent).*method)();
      if (!got) return PublicError(got.error());
      return convert(*got);
    });
  }
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

Result<Client> Client::Open(const std::string& config_path) {
  return Guarded<Client>([&]() -> Result<Client> {
    if (config_path.empty()) return Error(ErrorCode::kInvalidArgument, "no config file given");
    auto config = agent::LoadAgentConfig(config_path);
    if (!config) return PublicError(config.error());
    Config c;
    c.server = config->server;
    c.app = config->app;
    c.channel = config->channel;
    c.install_dir = config->install_dir.string();
    c.trusted_root = config->trusted_root.string();
    c.enrollment_token = config->enrollment_token;
    c.restart_command = config->restart_command;
    c.health_timeout_seconds = config->health_timeout_seconds;
    c.crash_loop_limit = config->crash_loop_limit;
    c.platform = config->platform;
    c.native_version = config->native_version;
    c.builtin_version = config->builtin_version;
    c.builtin_dir = config->builtin_dir.string();
    return Open(c);
  });
}

Result<Client> Client::Open(const Config& config) {
  return Guarded<Client>([&]() -> Result<Client> {
    Result<agent::AgentConfig> checked = ToAgentConfig(config);
    if (!checked) return checked.error();
    auto impl = std::make_unique<Impl>();
    // The callbacks are looked up when called, so they can be set after Open.
    Impl* raw = impl.get();
    agent::AgentOutput output;
    output.line = [raw](const std::string& line) {
      if (raw->message) raw->message(line);
    };
    output.progress = [raw](uint64_t done, uint64_t total) {
      if (raw->progress) raw->progress(done, total);
    };
    auto opened = agent::Agent::Open(std::move(*checked), std::move(output));
    if (!opened) return PublicError(opened.error());
    impl->agent.emplace(std::move(*opened));
    return Client(std::move(impl));
  });
}

Result<EnrollState> Client::Enroll() {
  return impl_->Call<EnrollState>(&agent::Agent::Enroll, [](const client::EnrollResult& r) {
    return r.status == client::EnrollStatus::kActive ? EnrollState::kActive : EnrollState::kPending;
  });
}

Result<Offer> Client::Check() {
  return impl_->Call<Offer>(&agent::Agent::Check, [](const client::CheckResult& r) {
    Offer o;
    o.update = r.update;
    o.reason = r.reason;
    o.version = r.version;
    o.channel = r.channel;
    o.rollback = r.rollback;
    o.length = r.target.length;
    return o;
  });
}

Result<UpdateOutcome> Client::Update() {
  return impl_->Call<UpdateOutcome>(&agent::Agent::Update, [](const agent::UpdateOutcome& r) {
    UpdateOutcome o;
    switch (r.kind) {  // a switch: the public numbers are a contract (client.hpp)
      case agent::UpdateOutcome::Kind::kUpToDate:
        o.kind = UpdateOutcome::Kind::kUpToDate;
        break;
      case agent::UpdateOutcome::Kind::kInstalled:
        o.kind = UpdateOutcome::Kind::kInstalled;
        break;
      case agent::UpdateOutcome::Kind::kRefused:
        o.kind = UpdateOutcome::Kind::kRefused;
        break;
      case agent::UpdateOutcome::Kind::kRolledBack:
        o.kind = UpdateOutcome::Kind::kRolledBack;
        break;
      case agent::UpdateOutcome::Kind::kAbandoned:
        o.kind = UpdateOutcome::Kind::kAbandoned;
        break;
    }
    o.reason = r.reason_code;
    o.message = r.message;
    if (r.kind == agent::UpdateOutcome::Kind::kRefused) o.code = RefusalCode(r.reason_code);
    if (r.kind == agent::UpdateOutcome::Kind::kRolledBack) o.code = ErrorCode::kRollback;
    return o;
  });
}

Result<InstallStatus> Client::Confirm(const std::string& release_id) {
  return Guarded<InstallStatus>([&]() -> Result<InstallStatus> {
    auto got = impl_->agent->Confirm(release_id);
    if (!got) return PublicError(got.error());
    return ToStatus(*got, impl_->agent->config());
  });
}

Result<InstallStatus> Client::Rollback() {
  return impl_->Call<InstallStatus>(
      &agent::Agent::Rollback,
      [this](const client::InstallStatus& s) { return ToStatus(s, impl_->agent->config()); });
}

Result<InstallStatus> Client::Status() {
  return impl_->Call<InstallStatus>(&agent::Agent::Status, [this](const client::InstallStatus& s) {
    return ToStatus(s, impl_->agent->config());
  });
}

Result<uint64_t> Client::FlushReports() {
  return impl_->Call<uint64_t>(&agent::Agent::FlushReports, [](uint64_t n) { return n; });
}

void Client::SetProgressCallback(ProgressCallback callback) {
  impl_->progress = std::move(callback);
}

void Client::SetMessageCallback(MessageCallback callback) { impl_->message = std::move(callback); }

const char* Version() { return AIRLOCK_SDK_VERSION; }

}  // namespace airlock::sdk
