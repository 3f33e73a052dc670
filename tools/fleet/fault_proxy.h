// A fault-injecting HTTP proxy on 127.0.0.1 for the fleet simulation (bench/fleet.sh) and the
// scale-out test (tests/fleet_scaleout_test.sh): it stands between agents and airlockd and, at
// configurable rates, damages the replies it forwards. Requests and replies are read and written
// with Boost.Beast (no HTTP parsing of its own); each request goes to the next upstream in turn
// (round-robin), on a connection of its own. One draw per reply picks at most one fault:
//   truncate  the reply's bytes are cut at a random point (a strict prefix is sent), then the
//             connection is closed;
//   corrupt   one byte of the reply (of its body when it has one) is XORed with a non-zero value;
//   stall     the reply is held for `stall_ms`, then sent intact;
//   reset     nothing is sent: the connection is closed with a TCP reset (SO_LINGER 0);
//   replay    instead of this reply, the bytes of the most recent earlier reply to the same target
//             are sent (of any target when there is none; no fault when nothing was sent before).
// With every rate 0 it is a plain round-robin proxy. Each request is forwarded on a connection of
// its own, so faults are drawn per reply.
#ifndef AIRLOCK_TOOLS_FLEET_FAULT_PROXY_H_
#define AIRLOCK_TOOLS_FLEET_FAULT_PROXY_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace airlock::fleet {

enum class Fault { kNone = 0, kTruncate, kCorrupt, kStall, kReset, kReplay };
inline constexpr int kFaultKinds = 6;
const char* FaultName(Fault fault);

struct FaultRates {
  double truncate = 0;
  double corrupt = 0;
  double stall = 0;
  double reset = 0;
  double replay = 0;
  // Each of the five at total / 5.
  static FaultRates Spread(double total);
  double Total() const { return truncate + corrupt + stall + reset + replay; }
};

struct FaultProxyOptions {
  uint16_t listen_port = 0;              // 0: a free port (see FaultProxy::port)
  std::vector<uint16_t> upstream_ports;  // on 127.0.0.1, used in turn; at least one
  FaultRates rates;
  int64_t stall_ms = 1000;
  uint64_t seed = 1;
  uint64_t max_body_bytes = 256ull << 20;  // a bigger request or reply is refused (502)
  // > 1: the requests to the upstreams come in turn from this many loopback source addresses
  // (127.1.0.1, 127.1.0.2, ...; the destination stays 127.0.0.1), as a fleet's devices come from
  // many addresses (airlockd limits enrollments per source address). 1: from 127.0.0.1.
  uint32_t source_addresses = 1;
};

class FaultProxy {
 public:
  // Binds 127.0.0.1 (kInvalidArgument: no upstream or a rate outside [0, 1] or a sum above 1;
  // kIo: the port cannot be bound) and starts serving on a thread of its own.
  static Result<std::unique_ptr<FaultProxy>> Start(const FaultProxyOptions& options);
  ~FaultProxy();  // stops: closes the listener and every connection, joins the threads
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  uint16_t port() const;
  // How many replies got each fault so far (index: Fault).
  std::array<uint64_t, kFaultKinds> Counts() const;

  struct Impl;

 private:
  explicit FaultProxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace airlock::fleet

#endif  // AIRLOCK_TOOLS_FLEET_FAULT_PROXY_H_
