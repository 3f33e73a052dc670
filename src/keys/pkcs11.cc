#include "keys/pkcs11.h"

#include <dlfcn.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <system_error>

#include "crypto/hash.h"
#include "keys/pkcs11_objects.h"

namespace airlock::keys {

using pkcs11_internal::Check;

namespace {

// ---- module registry ----

std::mutex g_modules_mu;
std::map<std::string, std::weak_ptr<Pkcs11Module>>& Modules() {
  static auto* modules = new std::map<std::string, std::weak_ptr<Pkcs11Module>>();
  return *modules;
}

std::string TrimLabel(const CK_UTF8CHAR* label, size_t size) {
  std::string s(reinterpret_cast<const char*>(label), size);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

// ---- errors ----

std::string_view Pkcs11RvName(CK_RV rv) {
  switch (rv) {
#define AIRLOCK_RV_(x) \
  case x:              \
    return #x;
    AIRLOCK_RV_(CKR_OK)
    AIRLOCK_RV_(CKR_CANCEL)
    AIRLOCK_RV_(CKR_HOST_MEMORY)
    AIRLOCK_RV_(CKR_SLOT_ID_INVALID)
    AIRLOCK_RV_(CKR_GENERAL_ERROR)
    AIRLOCK_RV_(CKR_FUNCTION_FAILED)
    AIRLOCK_RV_(CKR_ARGUMENTS_BAD)
    AIRLOCK_RV_(CKR_ATTRIBUTE_READ_ONLY)
    AIRLOCK_RV_(CKR_ATTRIBUTE_SENSITIVE)
    AIRLOCK_RV_(CKR_ATTRIBUTE_TYPE_INVALID)
    AIRLOCK_RV_(CKR_ATTRIBUTE_VALUE_INVALID)
    AIRLOCK_RV_(CKR_DATA_INVALID)
    AIRLOCK_RV_(CKR_DATA_LEN_RANGE)
    AIRLOCK_RV_(CKR_DEVICE_ERROR)
    AIRLOCK_RV_(CKR_DEVICE_MEMORY)
    AIRLOCK_RV_(CKR_DEVICE_REMOVED)
    AIRLOCK_RV_(CKR_ENCRYPTED_DATA_INVALID)
    AIRLOCK_RV_(CKR_ENCRYPTED_DATA_LEN_RANGE)
    AIRLOCK_RV_(CKR_FUNCTION_NOT_SUPPORTED)
    AIRLOCK_RV_(CKR_KEY_HANDLE_INVALID)
    AIRLOCK_RV_(CKR_KEY_SIZE_RANGE)
    AIRLOCK_RV_(CKR_KEY_TYPE_INCONSISTENT)
    AIRLOCK_RV_(CKR_KEY_FUNCTION_NOT_PERMITTED)
    AIRLOCK_RV_(CKR_MECHANISM_INVALID)
    AIRLOCK_RV_(CKR_MECHANISM_PARAM_INVALID)
    AIRLOCK_RV_(CKR_OBJECT_HANDLE_INVALID)
    AIRLOCK_RV_(CKR_OPERATION_ACTIVE)
    AIRLOCK_RV_(CKR_OPERATION_NOT_INITIALIZED)
    AIRLOCK_RV_(CKR_PIN_INCORRECT)
    AIRLOCK_RV_(CKR_PIN_INVALID)
    AIRLOCK_RV_(CKR_PIN_LEN_RANGE)
    AIRLOCK_RV_(CKR_PIN_EXPIRED)
    AIRLOCK_RV_(CKR_PIN_LOCKED)
    AIRLOCK_RV_(CKR_SESSION_CLOSED)
    AIRLOCK_RV_(CKR_SESSION_HANDLE_INVALID)
    AIRLOCK_RV_(CKR_SESSION_READ_ONLY)
    AIRLOCK_RV_(CKR_SIGNATURE_INVALID)
    AIRLOCK_RV_(CKR_TEMPLATE_INCOMPLETE)
    AIRLOCK_RV_(CKR_TEMPLATE_INCONSISTENT)
    AIRLOCK_RV_(CKR_TOKEN_NOT_PRESENT)
    AIRLOCK_RV_(CKR_TOKEN_NOT_RECOGNIZED)
    AIRLOCK_RV_(CKR_TOKEN_WRITE_PROTECTED)
    AIRLOCK_RV_(CKR_USER_ALREADY_LOGGED_IN)
    AIRLOCK_RV_(CKR_USER_NOT_LOGGED_IN)
    AIRLOCK_RV_(CKR_USER_PIN_NOT_INITIALIZED)
    AIRLOCK_RV_(CKR_USER_TYPE_INVALID)
    AIRLOCK_RV_(CKR_BUFFER_TOO_SMALL)
    AIRLOCK_RV_(CKR_CRYPTOKI_NOT_INITIALIZED)
    AIRLOCK_RV_(CKR_CRYPTOKI_ALREADY_INITIALIZED)
    AIRLOCK_RV_(CKR_CURVE_NOT_SUPPORTED)
#undef AIRLOCK_RV_
    default:
      return "CKR_(other)";
  }
}

Error Pkcs11Error(CK_RV rv, std::string_view what) {
  ErrorCode code = ErrorCode::kCrypto;
  switch (rv) {
    case CKR_PIN_INCORRECT:
    case CKR_PIN_LOCKED:
    case CKR_PIN_EXPIRED:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
      code = ErrorCode::kWrongKey;
      break;
    case CKR_MECHANISM_INVALID:
    case CKR_MECHANISM_PARAM_INVALID:
    case CKR_CURVE_NOT_SUPPORTED:
    case CKR_KEY_SIZE_RANGE:
    case CKR_FUNCTION_NOT_SUPPORTED:
      code = ErrorCode::kUnsupported;
      break;
    case CKR_ENCRYPTED_DATA_INVALID:
    case CKR_ENCRYPTED_DATA_LEN_RANGE:
      code = ErrorCode::kDecryptFailed;
      break;
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
    case CKR_KEY_TYPE_INCONSISTENT:
      code = ErrorCode::kInvalidArgument;
      break;
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_SLOT_ID_INVALID:
      code = ErrorCode::kNotFound;
      break;
    default:
      break;
  }
  std::string message(what);
  message += ": ";
  message += Pkcs11RvName(rv);
  if (Pkcs11RvName(rv) == "CKR_(other)") {
    char hex[24];
    std::snprintf(hex, sizeof(hex), " 0x%lx", static_cast<unsigned long>(rv));
    message += hex;
  }
  return Error(code, std::move(message));
}

// ---- options ----

std::string ResolvePkcs11Module(std::string_view explicit_path) {
  if (!explicit_path.empty()) return std::string(explicit_path);
  if (const char* env = std::getenv(std::string(kPkcs11ModuleEnv).c_str()); env && *env) return env;
  return std::string(kDefaultPkcs11Module);
}

Result<std::string> ResolvePkcs11Pin(const Pkcs11Options& options) {
  if (options.pin) return *options.pin;
  if (!options.pin_source.empty()) {
    std::string_view source = options.pin_source;
    if (StartsWith(source, "file:")) source.remove_prefix(5);
    if (source.empty() || source.find(':') != std::string_view::npos) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "pin-source must be file:PATH, not '" + options.pin_source + "'");
    }
    std::error_code ec;
    std::filesystem::path path(source);
    if (!std::filesystem::exists(path, ec)) {
      return MakeError(ErrorCode::kNotFound, "PIN file " + path.string() + " does not exist");
    }
    if (std::filesystem::file_size(path, ec) > kMaxPinSize || ec) {
      return MakeError(ec ? ErrorCode::kIo : ErrorCode::kLimitExceeded,
                       "PIN file " + path.string() + " is unreadable or too large");
    }
    std::ifstream in(path, std::ios::binary);
    std::string pin((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) return MakeError(ErrorCode::kIo, "cannot read " + path.string());
    while (!pin.empty() && (pin.back() == '\n' || pin.back() == '\r')) pin.pop_back();
    return pin;
  }
  if (const char* env = std::getenv(std::string(kPkcs11PinEnv).c_str()); env != nullptr) {
    return std::string(env);
  }
  return MakeError(ErrorCode::kInvalidArgument,
                   "no PKCS#11 PIN: set AIRLOCK_PKCS11_PIN or give pin-source=file:PATH");
}

// ---- module ----

Result<std::shared_ptr<Pkcs11Module>> Pkcs11Module::Load(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_modules_mu);
  if (auto existing = Modules()[path].lock()) return existing;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return MakeError(ErrorCode::kNotFound, "PKCS#11 module " + path + " does not exist");
  }
  // RTLD_NODELETE: modules (SoftHSM2 among them) register OpenSSL and atexit state that must
  // outlive dlclose, so the image stays mapped; C_Finalize still releases the module's own state.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (handle == nullptr) {
    const char* why = dlerror();
    return MakeError(ErrorCode::kUnsupported,
                     "cannot load PKCS#11 module " + path + ": " + (why ? why : "dlopen failed"));
  }
  struct DlCloser {
    void* h;
    ~DlCloser() {
      if (h) dlclose(h);
    }
  } closer{handle};
  auto get_list = reinterpret_cast<CK_C_GetFunctionList>(dlsym(handle, "C_GetFunctionList"));
  if (get_list == nullptr) {
    return MakeError(ErrorCode::kUnsupported,
                     path + " is not a PKCS#11 module (no C_GetFunctionList)");
  }
  CK_FUNCTION_LIST* functions = nullptr;
  AIRLOCK_TRY(Check(get_list(&functions), "C_GetFunctionList"));
  if (functions == nullptr || functions->version.major != 2) {
    return MakeError(ErrorCode::kUnsupported, path + ": unsupported Cryptoki version");
  }
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  CK_RV rv = functions->C_Initialize(&args);
  bool finalize = true;
  if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
    finalize = false;  // someone else in this process owns the module's lifetime
  } else if (rv != CKR_OK) {
    return tl::unexpected(Pkcs11Error(rv, "C_Initialize " + path));
  }
  closer.h = nullptr;
  std::shared_ptr<Pkcs11Module> module(new Pkcs11Module(path, handle, functions, finalize));
  Modules()[path] = module;
  return module;
}

Pkcs11Module::~Pkcs11Module() {
  if (finalize_) functions_->C_Finalize(nullptr);
  dlclose(handle_);
}

Result<CK_SLOT_ID> Pkcs11Module::FindTokenSlot(std::string_view label) const {
  CK_ULONG count = 0;
  AIRLOCK_TRY(Check(functions_->C_GetSlotList(CK_TRUE, nullptr, &count), "C_GetSlotList"));
  std::vector<CK_SLOT_ID> slots(count);
  AIRLOCK_TRY(Check(functions_->C_GetSlotList(CK_TRUE, slots.data(), &count), "C_GetSlotList"));
  slots.resize(count);
  for (CK_SLOT_ID slot : slots) {
    CK_TOKEN_INFO info;
    if (functions_->C_GetTokenInfo(slot, &info) != CKR_OK) continue;
    if ((info.flags & CKF_TOKEN_INITIALIZED) == 0) continue;
    if (TrimLabel(info.label, sizeof(info.label)) == label) return slot;
  }
  return MakeError(ErrorCode::kNotFound,
                   "no token labelled '" + std::string(label) + "' in " + path_);
}

// PKCS#11 login state belongs to the application, not the session: once one Pkcs11Token is logged
// in, C_Login on another session of the slot returns CKR_USER_ALREADY_LOGGED_IN without looking at
// the PIN. So the module remembers a digest of the PIN that logged the slot in (until its last
// session closes) and checks later logins against it; otherwise a wrong PIN would open a second
// handle.
Result<void> Pkcs11Module::Login(const Pkcs11Session& session, CK_SLOT_ID slot, ByteSpan pin) {
  std::lock_guard<std::mutex> lock(mu_);
  Bytes digest = crypto::Sha256(pin);
  SlotState& state = slots_[slot];
  if (!state.pin_digest.empty()) {
    if (!ConstantTimeEqual(state.pin_digest, digest)) {
      return tl::unexpected(Pkcs11Error(CKR_PIN_INCORRECT, "C_Login"));
    }
    return {};
  }
  CK_RV rv = functions_->C_Login(session.get(), CKU_USER, const_cast<CK_UTF8CHAR*>(pin.data()),
                                 pin.size());
  if (rv == CKR_USER_ALREADY_LOGGED_IN) {
    // Logged in by code outside Airlock in this process (the module was already initialised); the
    // PIN cannot be checked here.
    return {};
  }
  AIRLOCK_TRY(Check(rv, "C_Login"));
  state.pin_digest = std::move(digest);
  return {};
}

void Pkcs11Module::SessionOpened(CK_SLOT_ID slot) {
  std::lock_guard<std::mutex> lock(mu_);
  ++slots_[slot].sessions;
}

void Pkcs11Module::SessionClosed(CK_SLOT_ID slot) {
  std::lock_guard<std::mutex> lock(mu_);
  SlotState& state = slots_[slot];
  if (--state.sessions <= 0) slots_.erase(slot);  // the token logged us out with its last session
}

bool Pkcs11Module::HasMechanism(CK_SLOT_ID slot, CK_MECHANISM_TYPE mechanism) const {
  CK_MECHANISM_INFO info;
  return functions_->C_GetMechanismInfo(slot, mechanism, &info) == CKR_OK;
}

// ---- session ----

Result<Pkcs11Session> Pkcs11Session::Open(std::shared_ptr<Pkcs11Module> module, CK_SLOT_ID slot) {
  CK_SESSION_HANDLE handle = CK_INVALID_HANDLE;
  AIRLOCK_TRY(Check(module->functions()->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
                                                       nullptr, nullptr, &handle),
                    "C_OpenSession"));
  module->SessionOpened(slot);
  return Pkcs11Session(std::move(module), slot, handle);
}

void Pkcs11Session::Close() {
  if (module_ && handle_ != CK_INVALID_HANDLE) {
    module_->functions()->C_CloseSession(handle_);
    module_->SessionClosed(slot_);
  }
  handle_ = CK_INVALID_HANDLE;
}

Pkcs11Session::Pkcs11Session(Pkcs11Session&& other) noexcept
    : module_(std::move(other.module_)), slot_(other.slot_), handle_(other.handle_) {
  other.handle_ = CK_INVALID_HANDLE;
}

Pkcs11Session& Pkcs11Session::operator=(Pkcs11Session&& other) noexcept {
  if (this != &other) {
    Close();
    module_ = std::move(other.module_);
    slot_ = other.slot_;
    handle_ = other.handle_;
    other.handle_ = CK_INVALID_HANDLE;
  }
  return *this;
}

Pkcs11Session::~Pkcs11Session() {
  // Closing the application's last session on a token also ends its login (PKCS#11 5.6), which is
  // how login is released: an explicit C_Logout would log out other Pkcs11Tokens of this process
  // too.
  Close();
}

}  // namespace airlock::keys
