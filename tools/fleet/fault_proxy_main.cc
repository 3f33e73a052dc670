// fault-proxy: tools/fleet/fault_proxy.h as a program. Prints "listening on 127.0.0.1:PORT" once
// it accepts connections, runs until SIGTERM or SIGINT, then prints the count of each fault.
//   fault-proxy --upstream PORT [--upstream PORT ...] [--listen PORT] [--fault-rate R]
//               [--truncate-rate R] [--corrupt-rate R] [--stall-rate R] [--reset-rate R]
//               [--replay-rate R] [--stall-ms MS] [--source-addresses N] [--seed N] [--port-file
//               FILE]
#include <signal.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>

#include "fault_proxy.h"

int main(int argc, char** argv) {
  CLI::App app{"fault-proxy: a fault-injecting round-robin HTTP proxy on 127.0.0.1", "fault-proxy"};
  airlock::fleet::FaultProxyOptions options;
  double total = -1;
  std::string port_file;
  app.add_option("--upstream", options.upstream_ports, "an upstream port on 127.0.0.1 (repeat)")
      ->required();
  app.add_option("--listen", options.listen_port, "the port to listen on (0: a free one)");
  app.add_option("--fault-rate", total, "the share of replies damaged, spread over the five faults")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--truncate-rate", options.rates.truncate)->check(CLI::Range(0.0, 1.0));
  app.add_option("--corrupt-rate", options.rates.corrupt)->check(CLI::Range(0.0, 1.0));
  app.add_option("--stall-rate", options.rates.stall)->check(CLI::Range(0.0, 1.0));
  app.add_option("--reset-rate", options.rates.reset)->check(CLI::Range(0.0, 1.0));
  app.add_option("--replay-rate", options.rates.replay)->check(CLI::Range(0.0, 1.0));
  app.add_option("--stall-ms", options.stall_ms, "how long a stalled reply is held")
      ->check(CLI::Range(0, 600000));
  app.add_option("--source-addresses", options.source_addresses,
                 "forward from this many loopback source addresses (127.1.0.1, ...)")
      ->check(CLI::Range(1, 65000));
  app.add_option("--seed", options.seed, "the seed of the fault draws");
  app.add_option("--port-file", port_file, "write the port listened on to FILE");
  CLI11_PARSE(app, argc, argv);
  if (total >= 0) {
    if (options.rates.Total() > 0) {
      std::cerr << "fault-proxy: error: --fault-rate and the per-fault rates exclude each other\n";
      return 2;
    }
    options.rates = airlock::fleet::FaultRates::Spread(total);
  }
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);  // before any thread starts: only sigwait sees them
  auto proxy = airlock::fleet::FaultProxy::Start(options);
  if (!proxy) {
    std::cerr << "fault-proxy: error: " << proxy.error().message() << "\n";
    return 1;
  }
  const uint16_t port = (*proxy)->port();
  if (!port_file.empty()) {
    std::ofstream(port_file + ".tmp") << port << "\n";
    std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  }
  std::cout << "listening on 127.0.0.1:" << port << std::endl;
  int signal = 0;
  sigwait(&stop, &signal);
  const auto counts = (*proxy)->Counts();
  proxy->reset();
  for (int i = 0; i < airlock::fleet::kFaultKinds; ++i) {
    std::cout << airlock::fleet::FaultName(static_cast<airlock::fleet::Fault>(i)) << "="
              << counts[i] << (i + 1 < airlock::fleet::kFaultKinds ? " " : "\n");
  }
  return 0;
}
