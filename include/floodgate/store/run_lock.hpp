#pragma once
// RunLock: one process at a time writes a job's output and journal.
//
// Two runs on the same output would both append every row (the journal cannot tell them
// apart), so a run takes an exclusive flock(2) on a lock file next to its journal
// ("<journal>.lock", or "<folder>/.floodgate/lock" for transcribe) before it touches
// anything, and holds it for the life of the process (the kernel drops it when the process
// ends, kill -9 included: no stale lock to clean up). The holder's pid is written into the
// file, so a second run can say who holds it; it then fails with exit code 2 (usage).
// The lock file stays after the run (removing it would race with a new run's open).
// Within one process, lock_run() on a path it already holds shares that lock (the CLI takes
// it before opening its results files, the engine again in its start-up).

#include <memory>
#include <string>

namespace floodgate::store {

class RunLock {
 public:
  // Takes the lock or throws floodgate::Error (exit code 2) naming the holder's pid and
  // `what` (e.g. "the output out.jsonl"). Creates the file when missing.
  RunLock(const std::string& lock_path, const std::string& what);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  [[nodiscard]] const std::string& path() const noexcept { return path_; }

  // Keeps the lock across an execv() of this process (another program run in its place, as
  // transcribe runs its audio helper, which runs floodgate back): the descriptor stays open
  // through exec and its number goes into the environment, where the RunLock of the program
  // that comes back adopts it instead of taking the lock again (which its own lock would
  // refuse). keep_across_exec() is undone by exec_failed() when execv() returns.
  void keep_across_exec();
  void exec_failed() noexcept;

 private:
  std::string path_;
  int fd_ = -1;
};

// The process's lock on `lock_path`: the one it already holds, else a new RunLock.
[[nodiscard]] std::shared_ptr<RunLock> lock_run(const std::string& lock_path, const std::string& what);

// "<journal>.lock"
[[nodiscard]] std::string lock_path_for_journal(const std::string& journal_path);

}  // namespace floodgate::store
