// A temporary directory with an agent config in it, for the public API's tests (which see only
// include/airlock/, as an app does).
#ifndef AIRLOCK_SDK_SDK_TEST_UTIL_H_
#define AIRLOCK_SDK_SDK_TEST_UTIL_H_

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace airlock::sdk::testing {

class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "airlock-sdk-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

  // Writes `text` to NAME under the directory and returns its path.
  std::string Write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name) << text;
    return (path_ / name).string();
  }

  // A valid config (no server is contacted by the tests that use it).
  std::string WriteConfig(const std::string& extra = "") const {
    return Write("agent.toml",
                 "server = \"http://127.0.0.1:9\"\n"
                 "app = \"io.example.sdk\"\n"
                 "channel = \"production\"\n"
                 "install_dir = \"device\"\n"
                 "trusted_root = \"root.json\"\n"
                 "builtin_version = \"1.0.0\"\n" +
                     extra);
  }

 private:
  std::filesystem::path path_;
};

}  // namespace airlock::sdk::testing

#endif  // AIRLOCK_SDK_SDK_TEST_UTIL_H_
