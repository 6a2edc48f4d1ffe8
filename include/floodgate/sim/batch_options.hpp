#pragma once
// What the simulator's Batch API can be told (`floodgate sim --batch-*`, docs/sim.md
// "Batch API"). Durations are the simulator's defaults at --batch-speed 1 and are divided by
// the speed, so tests run a whole lifecycle in well under a second.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace floodgate::sim {

struct BatchSimOptions {
  double speed = 1.0;                                      // every duration below is divided by this
  std::chrono::nanoseconds validating{std::chrono::seconds(2)};
  std::chrono::nanoseconds per_line{std::chrono::milliseconds(10)};  // lines run one after another
  std::chrono::nanoseconds finalizing{std::chrono::seconds(1)};
  double line_failure_rate = 0.0;   // lines answered 500 server_error (error file)
  double expire_rate = 0.0;         // lines never run: the batch ends `expired`, they get batch_expired
  // The failures users report from the real service: a `completed` batch whose output file
  // holds lines with status_code 0 and no answer, or lacks lines altogether (in neither file).
  // Both count as completed in request_counts and are not answered (not in the ledger).
  double zero_status_rate = 0.0;
  double lost_rate = 0.0;
  // Enqueued-token limit per model (input tokens of every unfinished batch); a batch that
  // would pass it fails whole with token_limit_exceeded. 0 / absent: no limit.
  std::map<std::string, std::int64_t> queue_limits;
  std::int64_t queue_limit_all = 0;  // for models not in queue_limits; 0 = none
  std::string dir;                   // where files are kept; empty: a fresh temporary folder
  std::uint64_t max_file_bytes = 512ull * 1024 * 1024;  // POST /v1/files (the real API's 512 MB)
  std::uint64_t max_batch_bytes = 200ull * 1024 * 1024;  // a batch's input file
  std::uint64_t max_batch_lines = 50'000;
};

}  // namespace floodgate::sim
