// The temporary files of upload routes (HttpServer, Router::AddUpload) and the cap on uploads
// received at once.
//
// An upload file is "upload-XXXXXX" in the upload folder, flock(2)ed by the process receiving it
// from creation to removal, so RemoveStaleUploads (run when a server starts) can tell a file of a
// live airlockd sharing DATA (locked) from one a crash left behind (unlocked).
#ifndef AIRLOCK_SERVER_UPLOAD_FILE_H_
#define AIRLOCK_SERVER_UPLOAD_FILE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string_view>

#include "common/fd.h"

namespace airlock::server {

inline constexpr std::string_view kUploadPrefix = "upload-";

// The temporary file of one upload (locked, see above): removed when this object dies unless the
// handler renamed it away.
class TempUpload {
 public:
  TempUpload() = default;
  TempUpload(const TempUpload&) = delete;
  TempUpload& operator=(const TempUpload&) = delete;
  ~TempUpload() { Remove(); }

  // Creates and locks a new file in `dir`; false on an error.
  bool Create(const std::filesystem::path& dir);
  int fd() const { return fd_.get(); }
  const std::filesystem::path& path() const { return path_; }
  // fsync; false on an error. The descriptor (and its lock) stays open until Remove.
  bool Finish();
  // Deletes the file if the name still refers to it (the handler may have renamed it away, and
  // another upload may have taken the name since), then closes it.
  void Remove();

 private:
  UniqueFd fd_;
  std::filesystem::path path_;
};

// One of ServerOptions::max_uploads slots, held while an upload body is received and handled.
class UploadSlot {
 public:
  UploadSlot() = default;
  UploadSlot(const UploadSlot&) = delete;
  UploadSlot& operator=(const UploadSlot&) = delete;
  ~UploadSlot() { Release(); }
  // False when `max` (0 = no cap) slots of `in_use` are taken.
  bool Acquire(std::atomic<uint32_t>* in_use, uint32_t max);
  void Release();

 private:
  std::atomic<uint32_t>* in_use_ = nullptr;
};

// Removes the "upload-*" files in `dir` that no process holds locked (uploads a crashed airlockd
// left behind); returns how many.
size_t RemoveStaleUploads(const std::filesystem::path& dir);

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_UPLOAD_FILE_H_
