#include "crypto/ossl.h"

#include <openssl/err.h>

namespace airlock::crypto {

Error OsslError(ErrorCode code, std::string_view what) {
  std::string msg(what);
  unsigned long e = ERR_get_error();
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    msg += " (";
    msg += buf;
    msg += ")";
  }
  ERR_clear_error();
  return Error(code, std::move(msg));
}

void ClearOsslErrors() { ERR_clear_error(); }

}  // namespace airlock::crypto
