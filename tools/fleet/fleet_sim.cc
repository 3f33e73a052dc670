// fleet-sim: N in-process agents over libairlock-client's public API (include/airlock/), each with
// its own install_dir under --dir, enrolled to a real airlockd (usually through fault-proxy), then
// poll cycles. A poll cycle: every agent not yet on --version runs one Update (the agent daemon's
// cycle); after an Update that failed with an error (not an outcome), the agent retries as the
// daemon does within its poll interval (--retries: how many back-off retries fit in one interval;
// the waits themselves are not simulated). After each cycle it prints
//   cycle=K on_new=M agents=N share=S bad_installs=C updates=U errors=E refused=R rolled_back=B
// A bad install: an agent whose `current` files differ from the published release's (--release-dir,
// hashed here: what the publisher signed), or whose status claims a version its `current` does not
// hold. Each agent confirms its release the way an app does: a second handle on its install_dir
// confirms the release awaiting confirmation (from Update's message callback, on its thread).
// Ends with `fleet_within_3_cycles share=S ...` and `fleet_bad_installs count=C ...`; exit 0 when
// every agent converged within --cycles and no install is bad, else 1.
#include <openssl/evp.h>
#include <CLI/CLI.hpp>
#include <airlock/client.hpp>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using airlock::sdk::Client;

namespace {

std::string Sha256File(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  std::string hex;
  char two[3];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(two, sizeof two, "%02x", md[i]);
    hex += two;
  }
  return hex;
}

// Relative path -> sha256 of every regular file under `root` (empty when root does not exist).
std::map<std::string, std::string> TreeHashes(const fs::path& root) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  if (!fs::exists(root, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file())
      out[fs::relative(it->path(), root).string()] = Sha256File(it->path());
  }
  return out;
}

struct Agent {
  airlock::sdk::Config config;
  std::optional<Client> client;
  std::optional<Client> app;  // the "app": confirms the release awaiting confirmation
  bool on_new = false;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"fleet-sim: a fleet of in-process agents through a faulty network", "fleet-sim"};
  std::string server, app_id, root, token, dir, version, release_dir;
  int agents_n = 1000, threads = 16, cycles = 3, retries = 6, enroll_attempts = 20;
  cli.add_option("--server", server, "airlockd's URL as the agents see it (the proxy)")->required();
  cli.add_option("--app", app_id)->required();
  cli.add_option("--root", root, "the app's trusted root.json")->required();
  cli.add_option("--enrollment-token", token)->required();
  cli.add_option("--dir", dir, "the agents' install dirs go under DIR/agent-K")->required();
  cli.add_option("--version", version, "the release the fleet should reach")->required();
  cli.add_option("--release-dir", release_dir, "the folder published as --version")->required();
  cli.add_option("--agents", agents_n)->check(CLI::Range(1, 100000));
  cli.add_option("--threads", threads)->check(CLI::Range(1, 512));
  cli.add_option("--cycles", cycles)->check(CLI::Range(1, 100));
  cli.add_option("--retries", retries, "back-off retries after an error within a cycle")
      ->check(CLI::Range(0, 100));
  cli.add_option("--enroll-attempts", enroll_attempts)->check(CLI::Range(1, 1000));
  CLI11_PARSE(cli, argc, argv);

  const auto want = TreeHashes(release_dir);
  if (want.empty()) {
    std::cerr << "fleet-sim: error: no files under " << release_dir << "\n";
    return 2;
  }
  std::error_code mkdir_error;
  fs::create_directories(dir, mkdir_error);
  std::vector<Agent> fleet(agents_n);
  for (int i = 0; i < agents_n; ++i) {
    auto& c = fleet[i].config;
    c.server = server;
    c.app = app_id;
    c.channel = "production";
    c.install_dir = (fs::path(dir) / ("agent-" + std::to_string(i))).string();
    c.trusted_root = root;
    c.enrollment_token = token;
    c.health_timeout_seconds = 30;
    c.builtin_version = "0.0.0";
  }

  // Runs fn(agent index) on `threads` threads over all agents.
  auto parallel = [&](const std::function<void(int)>& fn) {
    std::atomic<int> next{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        for (int i = next++; i < agents_n; i = next++) fn(i);
      });
    }
    for (auto& th : pool) th.join();
  };

  std::mutex out_mu;
  std::atomic<int> enroll_failed{0};
  parallel([&](int i) {
    Agent& a = fleet[i];
    auto opened = Client::Open(a.config);
    auto app = Client::Open(a.config);
    if (!opened || !app) {
      std::lock_guard lock(out_mu);
      std::cerr << "agent " << i
                << ": open: " << (!opened ? opened.error() : app.error()).ToString() << "\n";
      enroll_failed++;
      return;
    }
    a.client.emplace(std::move(*opened));
    a.app.emplace(std::move(*app));
    for (int attempt = 0; attempt < enroll_attempts; ++attempt) {
      auto enrolled = a.client->Enroll();
      if (enrolled && *enrolled == airlock::sdk::EnrollState::kActive) return;
      if (attempt + 1 == enroll_attempts) {
        std::lock_guard lock(out_mu);
        std::cerr << "agent " << i << ": enroll: "
                  << (enrolled ? std::string("pending") : enrolled.error().ToString()) << "\n";
      }
    }
    enroll_failed++;
  });
  if (enroll_failed > 0) {
    std::cerr << "fleet-sim: error: " << enroll_failed << " agents did not enroll\n";
    return 1;
  }
  for (Agent& a : fleet) {
    Client* confirmer = &*a.app;
    a.client->SetMessageCallback([confirmer](const std::string&) {
      auto status = confirmer->Status();
      if (status && status->state == "awaiting_health") (void)confirmer->Confirm(status->release);
    });
  }
  std::cout << "enrolled " << agents_n << " agents" << std::endl;

  auto bad_install = [&](Agent& a, std::string* why) {
    auto status = a.client->Status();
    if (!status) {
      *why = "status: " + status.error().ToString();
      return true;
    }
    const auto have = TreeHashes(fs::path(a.config.install_dir) / "current");
    if (status->version == version) {
      if (have != want) *why = "claims " + version + " but its current files differ";
      return have != want;
    }
    if (status->version == a.config.builtin_version && status->release.empty()) {
      if (!have.empty()) *why = "claims the built-in release but has a current tree";
      return !have.empty();
    }
    *why = "claims version " + status->version;
    return true;
  };

  double share3 = 0;
  int bad = 0;
  for (int cycle = 1; cycle <= cycles; ++cycle) {
    std::atomic<int> updates{0}, errors{0}, refused{0}, rolled_back{0};
    parallel([&](int i) {
      Agent& a = fleet[i];
      if (a.on_new) return;
      for (int attempt = 0; attempt <= retries; ++attempt) {
        updates++;
        auto outcome = a.client->Update();
        if (!outcome) {
          errors++;
          std::lock_guard lock(out_mu);
          std::cerr << "cycle " << cycle << " agent " << i << ": " << outcome.error().ToString()
                    << "\n";
          continue;  // the daemon's back-off retry
        }
        using Kind = airlock::sdk::UpdateOutcome::Kind;
        if (outcome->kind != Kind::kInstalled) {
          std::lock_guard lock(out_mu);
          std::cerr << "cycle " << cycle << " agent " << i << ": " << outcome->message << "\n";
        }
        if (outcome->kind == Kind::kRefused) refused++;
        if (outcome->kind == Kind::kRolledBack) rolled_back++;
        break;  // an outcome: the daemon waits for the next poll
      }
      auto status = a.client->Status();
      a.on_new = status && status->version == version && status->state == "confirmed";
    });
    int on_new = 0;
    bad = 0;
    for (int i = 0; i < agents_n; ++i) {
      on_new += fleet[i].on_new;
      std::string why;
      if (bad_install(fleet[i], &why)) {
        bad++;
        std::cerr << "bad install: agent " << i << ": " << why << "\n";
      }
    }
    const double share = static_cast<double>(on_new) / agents_n;
    if (cycle <= 3) share3 = share;
    std::printf(
        "cycle=%d on_new=%d agents=%d share=%.4f bad_installs=%d updates=%d errors=%d refused=%d "
        "rolled_back=%d\n",
        cycle, on_new, agents_n, share, bad, updates.load(), errors.load(), refused.load(),
        rolled_back.load());
    std::fflush(stdout);
  }
  std::printf("fleet_within_3_cycles share=%.4f goal>=0.999 %s\n", share3,
              share3 >= 0.999 ? "met" : "missed");
  std::printf("fleet_bad_installs count=%d goal=0 %s\n", bad, bad == 0 ? "met" : "missed");
  int on_new = 0;
  for (const Agent& a : fleet) on_new += a.on_new;
  return on_new == agents_n && bad == 0 ? 0 : 1;
}
