#include "agent/agent_commands.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <iostream>
#include <memory>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "agent/agent_config.h"

namespace airlock::agent {
namespace {

struct Options {
  std::string config;
  std::string release;
  bool json = false;
};

// Progress on a terminal: one line redrawn; otherwise nothing (the start and end are said).
AgentOutput ConsoleOutput() {
  AgentOutput out;
  out.line = [](const std::string& line) { std::cout << line << "\n" << std::flush; };
  if (::isatty(STDERR_FILENO)) {
    out.progress = [](uint64_t done, uint64_t total) {
      const int percent = total == 0 ? 100 : static_cast<int>(done * 100 / total);
      std::cerr << "\rdownloading: " << percent << " % (" << done << " of " << total << " bytes)"
                << (done >= total ? "\n" : "") << std::flush;
    };
  }
  return out;
}

Result<Agent> OpenAgent(const Options& o, Agent::OpenMode mode) {
  if (o.config.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "--config FILE is required");
  }
  AIRLOCK_ASSIGN_OR_RETURN(AgentConfig config, LoadAgentConfig(o.config));
  return Agent::Open(std::move(config), ConsoleOutput(), mode);
}

nlohmann::json StatusJson(const client::InstallStatus& s, const AgentConfig& c) {
  nlohmann::json failed = nlohmann::json::array();
  for (const auto& f : s.failed) {
    failed.push_back({{"release", f.id}, {"version", f.version}, {"reason", f.reason}});
  }
  return {{"app", c.app},
          {"version", s.version.empty() ? c.builtin_version : s.version},
          {"release", s.release},
          {"state", std::string(client::InstallStateName(s.state))},
          {"last_good_release", s.last_good_release},
          {"highest_security_floor", s.highest_floor},
          {"last_rollback_reason", s.last_rollback_reason},
          {"failed", failed}};
}

Result<void> RunUpdate(Agent& agent) {
  AIRLOCK_ASSIGN_OR_RETURN(UpdateOutcome outcome, agent.Update());
  switch (outcome.kind) {
    case UpdateOutcome::Kind::kUpToDate:
    case UpdateOutcome::Kind::kInstalled:
    case UpdateOutcome::Kind::kAbandoned:  // only under `run` (SetStopRequested)
      std::cout << outcome.message << "\n";
      return {};
    case UpdateOutcome::Kind::kRefused:
      return MakeError(RefusalCode(outcome.reason_code), outcome.message);
    case UpdateOutcome::Kind::kRolledBack:
      return MakeError(ErrorCode::kRollback, outcome.message);
  }
  return {};
}

// The daemon loop: a cycle, then the poll interval (+-10 % jitter; after an error a back-off from
// 30 s doubling up to the interval; at least what the server asked with Retry-After), said on one
// line. SIGTERM and SIGINT are held while a cycle runs: its steps that change the disk finish
// (every one is journaled), its waits (a confirmation, key_pending) are given up; then the loop
// stops.
Result<void> RunLoop(Agent& agent) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  if (::pthread_sigmask(SIG_BLOCK, &stop, nullptr) != 0) {
    return MakeError(ErrorCode::kIo, "cannot block SIGTERM");
  }
  agent.SetStopRequested([] {
    sigset_t pending;
    return ::sigpending(&pending) == 0 &&
           (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1);
  });
  std::mt19937_64 rng(std::random_device{}());
  const int64_t interval = agent.config().poll_interval_seconds;
  int64_t backoff = 30;
  for (;;) {
    int64_t wait = interval;
    std::string why;
    auto outcome = agent.Update();
    if (outcome) {
      std::cout << outcome->message << "\n";
      backoff = 30;
    } else {
      std::cout << "update failed: " << outcome.error().message() << "\n";
      wait = std::min(backoff, interval);
      backoff = std::min(backoff * 2, interval);
      why = " (back-off after an error)";
    }
    std::uniform_int_distribution<int64_t> jitter(-wait / 10, wait / 10);
    wait = std::max<int64_t>(1, wait + jitter(rng));
    if (agent.retry_after_seconds() >= wait) {
      wait = agent.retry_after_seconds();
      why = " (the server's Retry-After)";
    }
    std::cout << "next check in " << wait << " s" << why << "\n" << std::flush;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait);
    for (;;) {
      const auto left = deadline - std::chrono::steady_clock::now();
      if (left <= std::chrono::nanoseconds::zero()) break;
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      timespec timeout{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
      if (::sigtimedwait(&stop, nullptr, &timeout) > 0) {
        std::cout << "stopping\n" << std::flush;
        return {};
      }
      if (errno != EINTR && errno != EAGAIN) break;
    }
  }
}

}  // namespace

void AddAgentCommands(CLI::App& app, std::function<Result<void>()>& action) {
  auto o = std::make_shared<Options>();
  app.add_option("--config", o->config, "The agent's TOML configuration file")
      ->envname("AIRLOCK_AGENT_CONFIG");
  auto add = [&](const char* name, const char* help,
                 std::function<Result<void>(Agent&, const Options&)> run,
                 Agent::OpenMode mode = Agent::OpenMode::kWait) {
    CLI::App* c = app.add_subcommand(name, help);
    c->callback([o, run, mode, &action] {
      action = [o, run, mode]() -> Result<void> {
        AIRLOCK_ASSIGN_OR_RETURN(Agent agent, OpenAgent(*o, mode));
        return run(agent, *o);
      };
    });
    return c;
  };
  add("enroll", "Make this device's keys (once) and enroll it with the server",
      [](Agent& agent, const Options&) -> Result<void> {
        AIRLOCK_ASSIGN_OR_RETURN(client::EnrollResult r, agent.Enroll());
        std::cout << "enrolled with " << agent.config().server << ": "
                  << (r.status == client::EnrollStatus::kActive ? "active"
                                                                : "pending (an operator approves)")
                  << "\n";
        return {};
      });
  add("check", "Ask the server what it offers (nothing is downloaded or verified)",
      [](Agent& agent, const Options&) -> Result<void> {
        AIRLOCK_ASSIGN_OR_RETURN(client::CheckResult r, agent.Check());
        if (r.update) {
          std::cout << "offered " << r.version << " on channel " << r.channel
                    << (r.rollback ? " (a rollback)" : "") << ", " << r.target.length << " bytes\n";
        } else {
          std::cout << "no update: " << r.reason << "\n";
        }
        return {};
      });
  add("update", "One whole update: check, verify, download, install, confirm or roll back",
      [](Agent& agent, const Options&) { return RunUpdate(agent); });
  CLI::App* confirm =
      add("confirm", "Confirm that the running release is healthy",
          [](Agent& agent, const Options& opts) -> Result<void> {
            AIRLOCK_ASSIGN_OR_RETURN(client::InstallStatus s, agent.Confirm(opts.release));
            std::cout << "confirmed release " << s.release << " (" << s.version << ")\n";
            return {};
          });
  confirm->add_option("--release", o->release, "The release id (AIRLOCK_RELEASE)")->required();
  CLI::App* status = add("status", "The installed release and the agent's state",
                         [](Agent& agent, const Options& opts) -> Result<void> {
                           AIRLOCK_ASSIGN_OR_RETURN(client::InstallStatus s, agent.Status());
                           nlohmann::json j = StatusJson(s, agent.config());
                           if (opts.json) {
                             std::cout << j.dump(2) << "\n";
                           } else {
                             std::cout << agent.config().app << ": "
                                       << j["version"].get<std::string>() << " (release "
                                       << (s.release.empty() ? "built-in" : s.release) << "), "
                                       << j["state"].get<std::string>() << "\n";
                           }
                           return {};
                         });
  status->add_flag("--json", o->json, "Print JSON");
  add("rollback", "Go back to the last good release now",
      [](Agent& agent, const Options&) -> Result<void> {
        AIRLOCK_ASSIGN_OR_RETURN(client::InstallStatus s, agent.Rollback());
        std::cout << "rolled back; running "
                  << (s.version.empty() ? "the built-in release" : s.version) << "\n";
        return {};
      });
  // Exit 0 whether a start was counted, the release rolled back or nothing awaits: in every case
  // the supervisor goes on and starts the app from `current` (after a rollback: the last good
  // release). Exit 1 only when the agent itself fails (config, journal).
  add(
      "started", "The app starts: count a start of the unconfirmed release (crash loop rollback)",
      [](Agent& agent, const Options&) -> Result<void> {
        AIRLOCK_ASSIGN_OR_RETURN(StartOutcome r, agent.RecordStart());
        std::cout << r.message << "\n";
        return {};
      },
      Agent::OpenMode::kNoWait);
  add("run", "Check and update in a loop (poll_interval), until SIGTERM",
      [](Agent& agent, const Options&) { return RunLoop(agent); });
}

}  // namespace airlock::agent
