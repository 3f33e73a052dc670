// Test helper: a throwaway SoftHSM2 token in a temporary directory.
//
// Create() makes <tmp>/softhsm2.conf (directories.tokendir = <tmp>/tokens, objectstore.backend =
// file), points SOFTHSM2_CONF at it, and initialises a token through the PKCS#11 API itself
// (C_InitToken, then C_InitPIN as the SO). The destructor restores SOFTHSM2_CONF and removes the
// directory.
//
// SoftHSM2 reads SOFTHSM2_CONF in C_Initialize, and Pkcs11Module keeps a module initialised while
// any holder lives, so every Pkcs11Token / KeyStore opened on the token must be closed before the
// fixture is destroyed (and before the next one is created). Not thread-safe (it changes the
// environment).
#ifndef AIRLOCK_KEYS_SOFTHSM_FIXTURE_H_
#define AIRLOCK_KEYS_SOFTHSM_FIXTURE_H_

#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include "common/result.h"
#include "keys/pkcs11.h"

namespace airlock::keys::testing {

inline constexpr char kSoftHsmTokenLabel[] = "airlock-test";
inline constexpr char kSoftHsmUserPin[] = "user-pin-1234";
inline constexpr char kSoftHsmSoPin[] = "so-pin-5678";

// The module tests use: AIRLOCK_PKCS11_MODULE if set, else the Debian SoftHSM2 path.
inline std::string SoftHsmModulePath() { return ResolvePkcs11Module(""); }
inline bool SoftHsmAvailable() {
  std::error_code ec;
  return std::filesystem::exists(SoftHsmModulePath(), ec);
}

class SoftHsmToken {
 public:
  static Result<std::unique_ptr<SoftHsmToken>> Create(std::string label = kSoftHsmTokenLabel) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "airlock-softhsm-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      return MakeError(ErrorCode::kIo, "mkdtemp failed: " + std::string(std::strerror(errno)));
    }
    std::unique_ptr<SoftHsmToken> token(new SoftHsmToken(tmpl, label));
    std::error_code ec;
    std::filesystem::create_directories(token->dir_ / "tokens", ec);
    if (ec) return MakeError(ErrorCode::kIo, "cannot create token directory: " + ec.message());
    {
      std::ofstream conf(token->conf_path());
      conf << "directories.tokendir = " << (token->dir_ / "tokens").string() << "\n"
           << "objectstore.backend = file\n"
           << "log.level = ERROR\n"
           << "slots.removable = false\n";
      if (!conf) return MakeError(ErrorCode::kIo, "cannot write softhsm2.conf");
    }
    if (const char* old = std::getenv("SOFTHSM2_CONF")) token->old_conf_ = old;
    setenv("SOFTHSM2_CONF", token->conf_path().c_str(), 1);
    AIRLOCK_TRY(token->InitToken());
    return token;
  }

  ~SoftHsmToken() {
    if (old_conf_) {
      setenv("SOFTHSM2_CONF", old_conf_->c_str(), 1);
    } else {
      unsetenv("SOFTHSM2_CONF");
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  SoftHsmToken(const SoftHsmToken&) = delete;
  SoftHsmToken& operator=(const SoftHsmToken&) = delete;

  const std::string& label() const { return label_; }
  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path conf_path() const { return dir_ / "softhsm2.conf"; }
  std::filesystem::path token_dir() const { return dir_ / "tokens"; }
  std::string StoreUri() const { return "pkcs11:token=" + label_; }

  Pkcs11Options Options(std::optional<std::string> pin = std::string(kSoftHsmUserPin)) const {
    Pkcs11Options options;
    options.module_path = SoftHsmModulePath();
    options.token_label = label_;
    options.pin = std::move(pin);
    return options;
  }

 private:
  SoftHsmToken(std::filesystem::path dir, std::string label)
      : dir_(std::move(dir)), label_(std::move(label)) {}

  Result<void> InitToken() {
    AIRLOCK_ASSIGN_OR_RETURN(auto module, Pkcs11Module::Load(SoftHsmModulePath()));
    CK_FUNCTION_LIST* f = module->functions();
    CK_ULONG count = 0;
    AIRLOCK_TRY(Rv(f->C_GetSlotList(CK_TRUE, nullptr, &count), "C_GetSlotList"));
    std::vector<CK_SLOT_ID> slots(count);
    AIRLOCK_TRY(Rv(f->C_GetSlotList(CK_TRUE, slots.data(), &count), "C_GetSlotList"));
    std::optional<CK_SLOT_ID> free_slot;
    for (CK_ULONG i = 0; i < count; ++i) {
      CK_TOKEN_INFO info;
      AIRLOCK_TRY(Rv(f->C_GetTokenInfo(slots[i], &info), "C_GetTokenInfo"));
      if ((info.flags & CKF_TOKEN_INITIALIZED) == 0) {
        free_slot = slots[i];
        break;
      }
    }
    if (!free_slot) return MakeError(ErrorCode::kNotFound, "SoftHSM2 offers no free slot");
    CK_UTF8CHAR padded[32];
    std::memset(padded, ' ', sizeof(padded));
    std::memcpy(padded, label_.data(), std::min(label_.size(), sizeof(padded)));
    std::string so_pin = kSoftHsmSoPin;
    std::string user_pin = kSoftHsmUserPin;
    AIRLOCK_TRY(Rv(f->C_InitToken(*free_slot, reinterpret_cast<CK_UTF8CHAR*>(so_pin.data()),
                                  so_pin.size(), padded),
                   "C_InitToken"));
    // SoftHSM2 moves an initialised token to a new slot id, so look it up again by label.
    AIRLOCK_ASSIGN_OR_RETURN(CK_SLOT_ID slot, module->FindTokenSlot(label_));
    AIRLOCK_ASSIGN_OR_RETURN(Pkcs11Session session, Pkcs11Session::Open(module, slot));
    AIRLOCK_TRY(Rv(f->C_Login(session.get(), CKU_SO, reinterpret_cast<CK_UTF8CHAR*>(so_pin.data()),
                              so_pin.size()),
                   "C_Login(SO)"));
    AIRLOCK_TRY(Rv(f->C_InitPIN(session.get(), reinterpret_cast<CK_UTF8CHAR*>(user_pin.data()),
                                user_pin.size()),
                   "C_InitPIN"));
    AIRLOCK_TRY(Rv(f->C_Logout(session.get()), "C_Logout"));
    return {};
  }

  static Result<void> Rv(CK_RV rv, const char* what) {
    if (rv != CKR_OK) return tl::unexpected(Pkcs11Error(rv, what));
    return {};
  }

  std::filesystem::path dir_;
  std::string label_;
  std::optional<std::string> old_conf_;
};

}  // namespace airlock::keys::testing

#endif  // AIRLOCK_KEYS_SOFTHSM_FIXTURE_H_
