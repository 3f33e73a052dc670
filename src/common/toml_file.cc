#include "common/toml_file.h"

#include <fstream>
#include <sstream>
#include <string>

namespace airlock {

Result<toml::table> ReadTomlFile(const std::filesystem::path& path) {
  std::error_code fs_ec;
  const auto status = std::filesystem::status(path, fs_ec);
  if (fs_ec || !std::filesystem::exists(status)) {
    return MakeError(ErrorCode::kNotFound, "config file " + path.string() + " does not exist");
  }
  if (!std::filesystem::is_regular_file(status)) {
    return MakeError(ErrorCode::kInvalidArgument, path.string() + " is not a regular file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeError(ErrorCode::kIo, "cannot read " + path.string());
  std::string text;
  text.resize(kMaxConfigFileBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return MakeError(ErrorCode::kIo, "cannot read " + path.string());
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxConfigFileBytes) {
    return MakeError(ErrorCode::kLimitExceeded, path.string() + " is larger than 1 MiB");
  }
  try {
    return toml::parse(text, path.string());
  } catch (const toml::parse_error& e) {
    std::ostringstream message;
    message << path.string() << ":" << e.source().begin.line << ": " << e.description();
    return MakeError(ErrorCode::kMalformed, message.str());
  }
}

}  // namespace airlock
