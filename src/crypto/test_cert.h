// Tests only: a self-signed certificate (its own CA) for a local HTTPS server.
#ifndef AIRLOCK_CRYPTO_TEST_CERT_H_
#define AIRLOCK_CRYPTO_TEST_CERT_H_

#include <filesystem>

namespace airlock::crypto::testing {

// A self-signed P-256 certificate with subject alternative name `san` (e.g. "IP:127.0.0.1",
// "DNS:localhost") and CA:TRUE, valid from an hour ago for two hours; the certificate and its
// private key are written as PEM files. False on any OpenSSL or file failure.
bool MakeSelfSignedCert(const std::filesystem::path& cert_file,
                        const std::filesystem::path& key_file, const char* san = "IP:127.0.0.1");

}  // namespace airlock::crypto::testing

#endif  // AIRLOCK_CRYPTO_TEST_CERT_H_
