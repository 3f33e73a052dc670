// Fuzzes the agent's TOML config (airlock-agent.toml, read from disk at every start).
#include <cstddef>
#include <cstdint>

#include "agent/agent_config.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto path = airlock::fuzz::WriteInput("agent.toml", data, size);
  auto config = airlock::agent::LoadAgentConfig(path);
  if (config) {
    // A loaded config passes its own checks again unchanged.
    airlock::agent::AgentConfig copy = *config;
    if (!airlock::agent::CheckAgentConfig(copy, "fuzz") || copy.server != config->server)
      __builtin_trap();
  }
  return 0;
}
