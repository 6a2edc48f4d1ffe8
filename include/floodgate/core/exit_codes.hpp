#pragma once
// Process exit codes of the `floodgate` CLI, documented in README.md. Stable: scripts
// branch on them.

namespace floodgate::exit_code {
inline constexpr int ok = 0;                  // every request succeeded
inline constexpr int some_failed = 1;         // the job finished; some lines are errors
inline constexpr int usage = 2;               // bad flags, bad configuration, unreadable input
inline constexpr int insufficient_quota = 3;  // the account is out of quota: stopped, resumable
inline constexpr int budget = 4;              // --max-cost / --max-tokens / --daily-budget reached: resumable
inline constexpr int interrupted = 5;         // SIGINT/SIGTERM: drained and stopped, resumable
inline constexpr int paused = 6;              // a limit resets beyond the horizon (e.g. daily): resumable later
inline constexpr int unreachable = 7;         // the API never answered (wrong URL, server down): stopped, resumable
inline constexpr int outage = 8;              // the API answered, then stopped answering for --outage-limit: stopped, resumable
inline constexpr int rejected = 9;            // the first answers all refused the key, URL or model (401/403/404): stopped, nothing recorded; fix and re-run
inline constexpr int internal = 70;           // a bug: please report it
inline constexpr int disk_full = 74;          // cannot write the output/journal (disk full, quota, file size limit): stopped, resumable
}  // namespace floodgate::exit_code
