#pragma once
// Rewriting a JSONL output that several runs appended to: restoring input order, and
// dropping error lines before they are sent again.
//
// One run of `floodgate run --ordered` writes its rows in input order, but a resumed run
// can only append: after a Ctrl-C, a kill -9 or a pause, the rows of the second run follow
// those of the first. reorder_output() puts the whole file back in input order:
//   1. one pass over the output indexes every line by the 64-bit hash of its journal key
//      (custom_id, or "@line:N"): 24 bytes per line, the line itself stays on disk;
//   2. the keys are taken in input order from `next_key`; each takes its line;
//   3. when that order is not already the file's order, the lines are copied (pread) into
//      "<path>.reorder.tmp", which is fsynced and renamed over `path`; lines that no key
//      claimed (not ours, or a hash collision) follow at the end in their old order.
// A crash at any moment leaves either the old file or the new one whole (rename is
// atomic), each with exactly the same lines: no row is lost, none is torn, and the
// journal, which names keys rather than positions, stays true for both.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace floodgate::store {

struct ReorderStats {
  std::uint64_t lines = 0;      // lines in the output
  std::uint64_t unclaimed = 0;  // lines no key claimed (written after the ordered ones)
  bool rewritten = false;       // false: the file was already in order and is untouched
};

// `next_key(key)` sets the next key in input order and returns true, or returns false at
// the end. Throws floodgate::Error when the file cannot be read or the copy cannot be
// written (the original is then untouched and the temporary file removed).
ReorderStats reorder_output(const std::string& path, const std::function<bool(std::string& key)>& next_key);

// For `floodgate run --retry-failed`: rewrites the output without its error lines (every
// line whose "error" is not null), the same way (a copy, fsynced, renamed over `path`), and
// returns the journal keys of the lines it dropped, in file order. Success lines and lines
// that are not output lines stay, in their order. A file without error lines is untouched.
std::vector<std::string> drop_failed_lines(const std::string& path);

// Rewrites the output without the output lines whose journal key is in `keys` (the same
// way). Returns the number of lines dropped; a file without such lines is untouched.
std::uint64_t drop_lines_with_keys(const std::string& path, const std::vector<std::string>& keys);

}  // namespace floodgate::store
