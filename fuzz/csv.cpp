// Fuzz target: the CSV reader never crashes on any bytes, and every record it reads without
// error survives write-then-read unchanged (the writer's quoting is exact).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "floodgate/csv/csv.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  floodgate::csv::ReaderOptions options;
  options.max_record_bytes = 4096;
  const auto records = floodgate::csv::parse(text, options);
  std::string written;
  std::size_t good = 0;
  for (const auto& r : records) {
    if (!r.error.empty() || r.fields.empty()) continue;
    floodgate::csv::append_record(written, r.fields);
    ++good;
  }
  const auto again = floodgate::csv::parse(written, options);
  if (again.size() != good) std::abort();
  std::size_t i = 0;
  for (const auto& r : records) {
    if (!r.error.empty() || r.fields.empty()) continue;
    if (!again[i].error.empty() || again[i].fields != r.fields) std::abort();
    ++i;
  }
  return 0;
}
