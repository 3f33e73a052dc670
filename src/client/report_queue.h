// ReportQueue: the device's reports (docs/api/server-api.md, POST /v1/report), kept on disk until
// the server has acknowledged them, so steps and failures that happen offline (or while the server
// is down) are delivered, in order, once it is reachable again.
//
// Storage: one SQLite file (INSTALL_DIR/reports.db), WAL, synchronous=FULL (a committed event, and
// the seq counter, survive a power cut: a seq handed out twice would be dropped by the server's
// per-(device, seq) de-duplication). Each event gets the next seq of a counter that lives in the
// database and only ever grows, also across deletions and restarts.
//
// Bound: at most `max_events` events wait. When an Enqueue would exceed it, the OLDEST waiting
// events are dropped (newest kept: the latest failure or rollback is what an operator needs), and
// dropped_count() grows by how many; it survives restarts. Enqueue itself therefore never fails
// for a full queue.
//
// Flush sends the oldest events first, in batches, and deletes a batch only after the server
// answered it with 200. At a transport error or any refusal other than 400 (429 too_many_events,
// 401, 403, 5xx) it stops and returns that error, keeping the batch and everything after it, so
// order is kept and nothing is lost. A 400 bad_request whose message names an event
// ("events[i]: ...") means the server will never take that event (Enqueue checks what the server
// checks, so this needs a server with other rules): the batch is then sent one event at a time
// and an event refused alone is deleted and counted in RejectedCount(), so one bad event cannot
// block the queue forever. Any other 400 stops the flush like any refusal. Re-sending an
// acknowledged batch after a crash between the answer and the delete is harmless: the server
// stores each seq once.
//
// One ReportQueue per process at a time is the intended use; several processes on one file are
// safe (each write is one IMMEDIATE transaction) but may interleave batches. Not thread-safe.
#ifndef AIRLOCK_CLIENT_REPORT_QUEUE_H_
#define AIRLOCK_CLIENT_REPORT_QUEUE_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "client/device_api_client.h"
#include "common/result.h"

struct sqlite3;

namespace airlock::client {

struct ReportQueueOptions {
  size_t max_events = 10000;
  // Events per /v1/report request (1..1000, the server's bound).
  size_t batch_size = 100;
};

// What the caller queues; the queue assigns the seq.
struct NewReportEvent {
  std::string version;
  std::string kind;  // offered, downloaded, verified, installed, confirmed, failed, rolled_back, delta_refused
  std::string reason_code;  // optional, e.g. "hash_mismatch"
  std::string detail;       // optional, at most 1024 bytes kept
  int64_t occurred_at = 0;  // Unix seconds
};

class ReportQueue {
 public:
  // Opens (creating, 0600) the queue file. kMalformed if it is not a queue database, kIo otherwise.
  static Result<ReportQueue> Open(const std::filesystem::path& path,
                                  ReportQueueOptions options = {});

  // Stores the event with the next seq and returns that seq. kInvalidArgument, nothing stored and
  // no seq used, for what the server would refuse: an unknown kind, a version that is not semver,
  // a reason code that is not 1..64 bytes of [A-Za-z0-9._-] (or empty). A detail is cut at 1024
  // bytes.
  [[nodiscard]] Result<uint64_t> Enqueue(const NewReportEvent& event);
  // The waiting events, oldest first, at most `limit`.
  [[nodiscard]] Result<std::vector<ReportEvent>> Pending(size_t limit) const;
  [[nodiscard]] Result<uint64_t> PendingCount() const;
  // How many events were dropped because the queue was full (since the file was made).
  [[nodiscard]] Result<uint64_t> DroppedCount() const;
  // How many events the server refused with 400 and Flush therefore deleted unsent.
  [[nodiscard]] Result<uint64_t> RejectedCount() const;
  // Sends everything waiting (see above). Returns how many events were acknowledged and deleted.
  [[nodiscard]] Result<uint64_t> Flush(DeviceApiClient& client);

 private:
  struct DbClose {
    void operator()(sqlite3* db) const;
  };
  using DbPtr = std::unique_ptr<sqlite3, DbClose>;

  ReportQueue(DbPtr db, ReportQueueOptions options) : db_(std::move(db)), options_(options) {}
  Result<uint64_t> ReadMeta(const char* key) const;
  // Deletes the events up to `seq`, counting one rejected event if `rejected`.
  Result<void> DeleteThrough(uint64_t seq, bool rejected);

  DbPtr db_;
  ReportQueueOptions options_;
};

}  // namespace airlock::client

#endif  // AIRLOCK_CLIENT_REPORT_QUEUE_H_
