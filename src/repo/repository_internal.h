// Helpers shared by the files of the repository library (repository.cc, repository_targets.cc,
// repository_publish.cc). Private to src/repo: not part of the library's interface.
#ifndef AIRLOCK_REPO_REPOSITORY_INTERNAL_H_
#define AIRLOCK_REPO_REPOSITORY_INTERNAL_H_

#include <ctime>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "crypto/signer.h"
#include "repo/repository.h"

namespace airlock::repo::internal {

// The pseudo-role under which the default expiry of delegated roles is configured.
inline constexpr std::string_view kDelegatedExpiryKey = "delegated";

// NOW, or the current time if NOW is 0 (the options' "now" fields).
std::time_t NowOr(std::time_t now);

// DIR's layout (see repository.h): DIR/.airlock, DIR/.airlock/repo.json, DIR/metadata, DIR/targets.
std::filesystem::path StateDir(const std::filesystem::path& dir);
std::filesystem::path StateFile(const std::filesystem::path& dir);
std::filesystem::path MetadataDir(const std::filesystem::path& dir);
std::filesystem::path TargetsDir(const std::filesystem::path& dir);

// "WHAT PATH: strerror(ERR)", kNotFound for ENOENT, else kIo.
Error IoError(const std::string& what, const std::filesystem::path& path, int err);

// P made absolute and lexically normal (P itself if that fails).
std::filesystem::path Absolute(const std::filesystem::path& p);

using SignerPtr = std::unique_ptr<crypto::Signer>;

// Loads a signer (key file or key URI) that can sign TUF metadata.
[[nodiscard]] Result<SignerPtr> LoadSigningKey(const SignerLoader& loader, const std::string& spec);

// How a key spec is recorded: files as absolute paths (the CLI may run elsewhere next time), URIs
// as given.
std::string RecordedSpec(const std::filesystem::path& spec);

// The raw pointers of KEYS, for metadata::SignMetadata.
std::vector<crypto::Signer*> Pointers(const std::vector<SignerPtr>& keys);

}  // namespace airlock::repo::internal

#endif  // AIRLOCK_REPO_REPOSITORY_INTERNAL_H_
