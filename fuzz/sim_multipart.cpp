// Fuzz target: the incremental multipart parser never crashes, never hands on more bytes
// than it was fed, and gives the same parts whether the input comes whole or split.
// The first byte picks the split size; the rest is the body (boundary "fz").
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "floodgate/sim/multipart.hpp"

namespace {

struct Collect final : floodgate::sim::MultipartHandler {
  std::string log;
  std::size_t bytes = 0;
  void on_part_begin(const floodgate::sim::PartHeaders& h) override { log += "<" + h.name + "|" + h.filename + ">"; }
  void on_part_data(std::string_view d) override {
    log.append(d);
    bytes += d.size();
  }
  void on_part_end() override { log += "</>"; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t step = static_cast<std::size_t>(data[0] % 31) + 1;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  Collect whole;
  floodgate::sim::MultipartParser a("fz", whole);
  const bool ok_a = a.feed(body) && a.finish();
  Collect split;
  floodgate::sim::MultipartParser b("fz", split);
  bool ok_b = true;
  for (std::size_t i = 0; i < body.size() && ok_b; i += step) ok_b = b.feed(body.substr(i, step));
  ok_b = ok_b && b.finish();
  if (whole.bytes > body.size()) std::abort();
  if (ok_a != ok_b) std::abort();
  if (ok_a && whole.log != split.log) std::abort();
  (void)floodgate::sim::MultipartParser::boundary_from_content_type(body);
  return 0;
}
