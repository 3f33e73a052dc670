// The C API (include/airlock/airlock.h) over the C++ one. Each function catches everything (no
// exception crosses into C), checks its pointers, and records the message of a failure on the
// handle. A struct handed out sits first in an owner that also holds its strings, so one free call
// releases everything.
#include "airlock/airlock.h"

#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "airlock/client.hpp"

using airlock::sdk::Client;
using airlock::sdk::Error;
using airlock::sdk::ErrorCode;

struct airlock_client {
  Client client;
  std::string last_error;
};

namespace {

constexpr const char* kNullHandle = "the airlock_client_t handle is NULL";

airlock_status_t ToC(ErrorCode code) { return static_cast<airlock_status_t>(code); }

// The strings (and failed-release array) behind a struct handed out.
struct Storage {
  std::deque<std::string> strings;  // a deque: adding one never moves the others
  std::vector<airlock_failed_release_t> failed;
};

// A struct handed out and its storage. Standard layout with `value` first, so the pointer handed
// out converts back to its Owned (pointer-interconvertible) in the free function.
template <typename T>
struct Owned {
  T value;
  Storage* storage;

  // Until handed out, the owner is released by the unique_ptr (an allocation may still fail).
  struct Deleter {
    void operator()(Owned* o) const { Free(&o->value); }
  };
  static std::unique_ptr<Owned, Deleter> Make() {
    auto storage = std::make_unique<Storage>();
    std::unique_ptr<Owned, Deleter> owned(new Owned{T{}, storage.get()});
    storage.release();
    return owned;
  }
  const char* Keep(std::string s) { return storage->strings.emplace_back(std::move(s)).c_str(); }
  static void Free(T* p) {
    static_assert(std::is_standard_layout_v<Owned>);
    if (p == nullptr) return;
    Owned* owned = reinterpret_cast<Owned*>(p);
    delete owned->storage;
    delete owned;
  }
};

char* CopyString(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out != nullptr) std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

// Runs `body` (returning airlock_status_t) on a handle: NULL checks, exceptions, last error.
template <typename F>
airlock_status_t OnHandle(airlock_client_t* h, F&& body) {
  if (h == nullptr) return AIRLOCK_E_INVALID_ARGUMENT;
  try {
    h->last_error.clear();
    return body();
  } catch (const std::bad_alloc&) {
    h->last_error = "out of memory";
    return AIRLOCK_E_NO_MEMORY;
  } catch (...) {
    h->last_error = "unexpected exception";
    return AIRLOCK_E_INTERNAL;
  }
}

airlock_status_t Fail(airlock_client_t* h, const Error& e) {
  h->last_error = e.message();
  return ToC(e.code());
}

airlock_status_t NullArgument(airlock_client_t* h, const char* name) {
  h->last_error = std::string(name) + " is NULL";
  return AIRLOCK_E_INVALID_ARGUMENT;
}

// The opening both airlock_open and airlock_open_config share: `open` gives the Client (or its
// error), after `check` (an error message, or "" when the arguments are fine).
template <typename Check, typename Open>
airlock_status_t OpenHandle(airlock_client_t** out, char** error_message, Check&& check,
                            Open&& open) {
  if (error_message != nullptr) *error_message = nullptr;
  const auto fail = [&](airlock_status_t code, const std::string& message) {
    if (error_message != nullptr) *error_message = CopyString(message);
    return code;
  };
  if (out == nullptr) return fail(AIRLOCK_E_INVALID_ARGUMENT, "out is NULL");
  *out = nullptr;
  try {
    const std::string bad = check();
    if (!bad.empty()) return fail(AIRLOCK_E_INVALID_ARGUMENT, bad);
    airlock::sdk::Result<Client> opened = open();
    if (!opened) return fail(ToC(opened.error().code()), opened.error().message());
    *out = new airlock_client{std::move(opened).value(), {}};
    return AIRLOCK_OK;
  } catch (const std::bad_alloc&) {
    return fail(AIRLOCK_E_NO_MEMORY, "out of memory");
  } catch (...) {
    return fail(AIRLOCK_E_INTERNAL, "unexpected exception");
  }
}

std::string OrEmpty(const char* s) { return s == nullptr ? std::string() : std::string(s); }

}  // namespace

extern "C" {

const char* airlock_status_name(airlock_status_t status) {
  const int value = static_cast<int>(status);  // a C caller may pass any int
  if (value == AIRLOCK_OK) return "ok";
  if (value < AIRLOCK_E_INVALID_ARGUMENT || value > AIRLOCK_E_NO_MEMORY) return "unknown";
  return airlock::sdk::ErrorCodeName(static_cast<ErrorCode>(status));
}

const char* airlock_version(void) { return airlock::sdk::Version(); }

void airlock_string_free(char* s) { std::free(s); }

airlock_status_t airlock_open(const char* config_path, airlock_client_t** out,
                              char** error_message) {
  return OpenHandle(
      out, error_message,
      [&] { return std::string(config_path == nullptr ? "config_path is NULL" : ""); },
      [&] { return Client::Open(std::string(config_path)); });
}

void airlock_config_init(airlock_config_t* config) {
  if (config == nullptr) return;
  const airlock::sdk::Config defaults;
  *config = airlock_config_t{};
  config->struct_size = sizeof(airlock_config_t);
  config->health_timeout_seconds = defaults.health_timeout_seconds;
  config->crash_loop_limit = defaults.crash_loop_limit;
  // Static strings of the same values as Config's defaults (checked by a test).
  config->platform = "linux";
  config->native_version = "1.0.0";
  config->builtin_version = "0.0.0";
}

airlock_status_t airlock_open_config(const airlock_config_t* config, airlock_client_t** out,
                                     char** error_message) {
  return OpenHandle(
      out, error_message,
      [&] {
        if (config == nullptr) return std::string("config is NULL");
        if (config->struct_size != sizeof(airlock_config_t)) {
          return std::string("config: struct_size ") + std::to_string(config->struct_size) +
                 " is not this library's (" + std::to_string(sizeof(airlock_config_t)) +
                 "): fill the struct with airlock_config_init";
        }
        return std::string();
      },
      [&] {
        airlock::sdk::Config c;
        c.server = OrEmpty(config->server);
        c.app = OrEmpty(config->app);
        c.channel = OrEmpty(config->channel);
        c.install_dir = OrEmpty(config->install_dir);
        c.trusted_root = OrEmpty(config->trusted_root);
        c.enrollment_token = OrEmpty(config->enrollment_token);
        c.restart_command = OrEmpty(config->restart_command);
        c.health_timeout_seconds = config->health_timeout_seconds;
        c.crash_loop_limit = config->crash_loop_limit;
        c.platform = OrEmpty(config->platform);
        c.native_version = OrEmpty(config->native_version);
        c.builtin_version = OrEmpty(config->builtin_version);
        c.builtin_dir = OrEmpty(config->builtin_dir);
        return Client::Open(c);
      });
}

void airlock_close(airlock_client_t* client) { delete client; }

const char* airlock_last_error(const airlock_client_t* client) {
  return client == nullptr ? kNullHandle : client->last_error.c_str();
}

airlock_status_t airlock_set_progress_callback(airlock_client_t* h, airlock_progress_fn fn,
                                               void* user_data) {
  return OnHandle(h, [&] {
    if (fn == nullptr) {
      h->client.SetProgressCallback(nullptr);
    } else {
      h->client.SetProgressCallback(
          [fn, user_data](uint64_t done, uint64_t total) { fn(done, total, user_data); });
    }
    return AIRLOCK_OK;
  });
}

airlock_status_t airlock_set_message_callback(airlock_client_t* h, airlock_message_fn fn,
                                              void* user_data) {
  return OnHandle(h, [&] {
    if (fn == nullptr) {
      h->client.SetMessageCallback(nullptr);
    } else {
      h->client.SetMessageCallback(
          [fn, user_data](const std::string& line) { fn(line.c_str(), user_data); });
    }
    return AIRLOCK_OK;
  });
}

airlock_status_t airlock_enroll(airlock_client_t* h, int* active) {
  return OnHandle(h, [&] {
    auto r = h->client.Enroll();
    if (!r) return Fail(h, r.error());
    if (active != nullptr) *active = *r == airlock::sdk::EnrollState::kActive ? 1 : 0;
    return AIRLOCK_OK;
  });
}

airlock_status_t airlock_check(airlock_client_t* h, airlock_offer_t** out) {
  return OnHandle(h, [&] {
    if (out == nullptr) return NullArgument(h, "out");
    auto r = h->client.Check();
    if (!r) return Fail(h, r.error());
    auto owned = Owned<airlock_offer_t>::Make();
    owned->value.update = r->update ? 1 : 0;
    owned->value.reason = owned->Keep(r->reason);
    owned->value.version = owned->Keep(r->version);
    owned->value.channel = owned->Keep(r->channel);
    owned->value.rollback = r->rollback ? 1 : 0;
    owned->value.length = r->length;
    *out = &owned.release()->value;
    return AIRLOCK_OK;
  });
}

void airlock_offer_free(airlock_offer_t* offer) { Owned<airlock_offer_t>::Free(offer); }

airlock_status_t airlock_update(airlock_client_t* h, airlock_outcome_t** out) {
  return OnHandle(h, [&] {
    if (out == nullptr) return NullArgument(h, "out");
    auto r = h->client.Update();
    if (!r) return Fail(h, r.error());
    auto owned = Owned<airlock_outcome_t>::Make();
    owned->value.kind = static_cast<airlock_outcome_kind_t>(static_cast<int>(r->kind));
    owned->value.code = r->code ? ToC(*r->code) : AIRLOCK_OK;
    owned->value.reason = owned->Keep(r->reason);
    owned->value.message = owned->Keep(r->message);
    *out = &owned.release()->value;
    return AIRLOCK_OK;
  });
}

void airlock_outcome_free(airlock_outcome_t* outcome) { Owned<airlock_outcome_t>::Free(outcome); }

airlock_status_t airlock_confirm(airlock_client_t* h, const char* release_id) {
  return OnHandle(h, [&] {
    if (release_id == nullptr) return NullArgument(h, "release_id");
    auto r = h->client.Confirm(release_id);
    return r ? AIRLOCK_OK : Fail(h, r.error());
  });
}

airlock_status_t airlock_rollback(airlock_client_t* h) {
  return OnHandle(h, [&] {
    auto r = h->client.Rollback();
    return r ? AIRLOCK_OK : Fail(h, r.error());
  });
}

airlock_status_t airlock_get_status(airlock_client_t* h, airlock_install_status_t** out) {
  return OnHandle(h, [&] {
    if (out == nullptr) return NullArgument(h, "out");
    auto r = h->client.Status();
    if (!r) return Fail(h, r.error());
    auto owned = Owned<airlock_install_status_t>::Make();
    airlock_install_status_t& s = owned->value;
    s.app = owned->Keep(r->app);
    s.version = owned->Keep(r->version);
    s.release = owned->Keep(r->release);
    s.state = owned->Keep(r->state);
    s.last_good_release = owned->Keep(r->last_good_release);
    s.last_good_version = owned->Keep(r->last_good_version);
    s.highest_security_floor = r->highest_security_floor;
    s.last_rollback_reason = owned->Keep(r->last_rollback_reason);
    for (const auto& f : r->failed) {
      owned->storage->failed.push_back(
          {owned->Keep(f.release), owned->Keep(f.version), owned->Keep(f.reason)});
    }
    s.failed_count = owned->storage->failed.size();
    s.failed = owned->storage->failed.empty() ? nullptr : owned->storage->failed.data();
    *out = &owned.release()->value;
    return AIRLOCK_OK;
  });
}

void airlock_install_status_free(airlock_install_status_t* status) {
  Owned<airlock_install_status_t>::Free(status);
}

airlock_status_t airlock_flush_reports(airlock_client_t* h, uint64_t* sent) {
  return OnHandle(h, [&] {
    auto r = h->client.FlushReports();
    if (!r) return Fail(h, r.error());
    if (sent != nullptr) *sent = *r;
    return AIRLOCK_OK;
  });
}

}  // extern "C"
