// libairlock-client's C++ API: the device side of Airlock (check, download, verify, decrypt,
// install atomically, confirm or roll back, report), the same update cycle as `airlock-agent`
// (docs/operations/agent.md). docs/operations/device-client.md describes it; airlock/airlock.h is
// the C API over the same library (use that one across a language or compiler boundary: this one
// passes std::string and std::function, so the app must use the library's C++ standard library).
//
// Errors are values: every fallible call returns a Result<T> holding the value or an Error (a code
// of airlock::sdk::ErrorCode, whose numbers are those of the C API's airlock_status_t, and a
// message). Nothing here throws.
//
// Thread safety: a Client must not be used by two threads at once (one Client per thread).
// Separate Clients are independent, also on the same install_dir and across processes: the
// install journal serializes them (an app confirms a release while the agent's Update waits for the
// confirmation). Callbacks run on the thread that called Update and must not throw (an exception
// from one ends the call with kInternal; the journal keeps the install directory consistent).
#ifndef AIRLOCK_CLIENT_HPP_
#define AIRLOCK_CLIENT_HPP_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "airlock/export.h"

namespace airlock::sdk {

// The values are airlock_status_t's (airlock/airlock.h) and are stable.
enum class ErrorCode : int {
  kInvalidArgument = 1,
  kNotFound = 2,
  kAlreadyExists = 3,
  kIo = 4,
  kMalformed = 5,
  kUnsupported = 6,
  kLimitExceeded = 7,
  kUnsafePath = 8,
  kBadSignature = 9,
  kWrongKey = 10,
  kHashMismatch = 11,
  kExpired = 12,
  kRollback = 13,
  kDecryptFailed = 14,
  kTruncated = 15,
  kTrailingData = 16,
  kKeyUnusable = 17,
  kCrypto = 18,
  kInternal = 19,
  kNoMemory = 20,
};

// "invalid_argument", ..., "hash_mismatch" (as airlock_status_name).
AIRLOCK_EXPORT const char* ErrorCodeName(ErrorCode code);

class Error {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "code_name: message".
  std::string ToString() const { return std::string(ErrorCodeName(code_)) + ": " + message_; }

 private:
  ErrorCode code_;
  std::string message_;
};

// A value or an Error. value() and operator* require ok().
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT: implicit
  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return *error_; }

 private:
  std::optional<Error> error_;
};

// The configuration (the keys of the agent's TOML file, docs/operations/agent.md). Paths should
// be absolute (relative ones are taken from the working directory).
struct Config {
  std::string server;        // airlockd's base URL, http:// or https://
  std::string app;           // the app id
  std::string channel;       // the channel asked for
  std::string install_dir;   // slots, journal, identity, trusted metadata
  std::string trusted_root;  // the app's root.json (`airlock app root`)
  std::string enrollment_token;
  std::string restart_command;  // run with /bin/sh -c after each switch; may be empty
  int64_t health_timeout_seconds = 30;
  int64_t crash_loop_limit = 3;
  std::string platform = "linux";
  std::string native_version = "1.0.0";
  std::string builtin_version = "0.0.0";
  std::string builtin_dir;  // optional
};

enum class EnrollState { kActive, kPending };

// What the server offers: its claim, nothing downloaded or verified.
struct Offer {
  bool update = false;
  std::string reason;  // !update: "up_to_date", "no_release", "key_pending", ...
  std::string version;
  std::string channel;
  bool rollback = false;
  uint64_t length = 0;
};

struct UpdateOutcome {
  enum class Kind {
    kUpToDate = 0,    // nothing newer for this device
    kInstalled = 1,   // a newer release installed and confirmed
    kRefused = 2,     // an offered release failed a check; nothing installed
    kRolledBack = 3,  // installed but not confirmed in time: back on the last good release
    kAbandoned = 4,   // a wait was given up (the agent daemon's stop request); the next Update
                      // goes on from the journal. The library itself never asks to stop.
  };
  Kind kind = Kind::kUpToDate;
  // kRefused / kRolledBack: the code that says what failed (kHashMismatch, kRollback, ...).
  std::optional<ErrorCode> code;
  std::string reason;   // kRefused / kRolledBack: the reason reported ("hash_mismatch", ...)
  std::string message;  // one line for the user
};

struct FailedRelease {
  std::string release;
  std::string version;
  std::string reason;
};

struct InstallStatus {
  std::string app;
  std::string version;  // the running version (builtin_version when release is empty)
  std::string release;  // the active release's id; empty: the built-in
  std::string state;    // "idle", "confirmed", "awaiting_health", ...
  std::string last_good_release;
  std::string last_good_version;
  uint64_t highest_security_floor = 0;
  std::string last_rollback_reason;
  std::vector<FailedRelease> failed;  // never retried
};

// Download progress: bytes received and the signed total.
using ProgressCallback = std::function<void(uint64_t done, uint64_t total)>;
// A line of what Update is doing.
using MessageCallback = std::function<void(const std::string& line)>;

class AIRLOCK_EXPORT Client {
 public:
  // Reads the agent's TOML config file (kNotFound, kMalformed with the line, kInvalidArgument
  // naming the key), then opens as below.
  static Result<Client> Open(const std::string& config_path);
  // Checks the config (kInvalidArgument naming the field), opens the install directory (recovering
  // what a killed run left; kIo) and loads the device identity if the device enrolled.
  static Result<Client> Open(const Config& config);
  // A moved-from Client may only be destroyed or assigned to.
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  // Makes the device's keys (once) and enrolls them with the enrollment token.
  Result<EnrollState> Enroll();
  // Asks the server what it offers (kNotFound: not enrolled yet).
  Result<Offer> Check();
  // One whole update cycle (as airlock_update). A refused or rolled-back release is an outcome,
  // not an error.
  Result<UpdateOutcome> Update();
  // kNotFound when release_id is not the release awaiting confirmation (nothing changes).
  Result<InstallStatus> Confirm(const std::string& release_id);
  // Back to the last good release now (kNotFound: nothing to roll back).
  Result<InstallStatus> Rollback();
  Result<InstallStatus> Status();
  // Sends the queued reports; returns how many were sent (kIo: unreachable, they stay queued).
  Result<uint64_t> FlushReports();

  void SetProgressCallback(ProgressCallback callback);
  void SetMessageCallback(MessageCallback callback);

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The library's version, e.g. "0.1.0".
AIRLOCK_EXPORT const char* Version();

}  // namespace airlock::sdk

#endif  // AIRLOCK_CLIENT_HPP_
