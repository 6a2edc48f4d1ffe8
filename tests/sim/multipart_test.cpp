#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "floodgate/sim/multipart.hpp"

namespace floodgate::sim {
namespace {

struct Recorder final : MultipartHandler {
  struct Part {
    PartHeaders headers;
    std::string data;
    bool ended = false;
  };
  std::vector<Part> parts;
  std::size_t max_chunk = 0;
  void on_part_begin(const PartHeaders& h) override { parts.push_back({h, {}, false}); }
  void on_part_data(std::string_view d) override {
    parts.back().data.append(d);
    max_chunk = std::max(max_chunk, d.size());
  }
  void on_part_end() override { parts.back().ended = true; }
};

std::string body(const std::string& file_content) {
  return "--XyZ\r\n"
         "Content-Disposition: form-data; name=\"model\"\r\n\r\n"
         "whisper-1\r\n"
         "--XyZ\r\n"
         "Content-Disposition: form-data; name=\"file\"; filename=\"a b.wav\"\r\n"
         "Content-Type: audio/wav\r\n\r\n" +
         file_content +
         "\r\n--XyZ--\r\n";
}

TEST(Multipart, BoundaryFromContentType) {
  EXPECT_EQ(MultipartParser::boundary_from_content_type("multipart/form-data; boundary=abc"), "abc");
  EXPECT_EQ(MultipartParser::boundary_from_content_type("Multipart/Form-Data; charset=x; boundary=\"a;b\""), "a;b");
  EXPECT_FALSE(MultipartParser::boundary_from_content_type("application/json"));
  EXPECT_FALSE(MultipartParser::boundary_from_content_type("multipart/form-data"));
  EXPECT_FALSE(MultipartParser::boundary_from_content_type("multipart/form-data; boundary=" + std::string(71, 'a')));
}

TEST(Multipart, ParsesFieldsAndFileWhole) {
  Recorder r;
  MultipartParser p("XyZ", r);
  ASSERT_TRUE(p.feed(body("RIFF\r\n--Xy not a boundary")));
  ASSERT_TRUE(p.finish()) << p.error();
  ASSERT_EQ(r.parts.size(), 2u);
  EXPECT_EQ(r.parts[0].headers.name, "model");
  EXPECT_FALSE(r.parts[0].headers.has_filename);
  EXPECT_EQ(r.parts[0].data, "whisper-1");
  EXPECT_EQ(r.parts[1].headers.filename, "a b.wav");
  EXPECT_EQ(r.parts[1].headers.content_type, "audio/wav");
  EXPECT_EQ(r.parts[1].data, "RIFF\r\n--Xy not a boundary");
  EXPECT_TRUE(r.parts[1].ended);
}

TEST(Multipart, SameResultForEverySplit) {
  const std::string whole = body(std::string(300, 'a') + "\r\n--XyY" + std::string(50, 'b'));
  Recorder ref;
  MultipartParser pr("XyZ", ref);
  ASSERT_TRUE(pr.feed(whole));
  ASSERT_TRUE(pr.finish());
  for (std::size_t step : {1u, 2u, 3u, 7u, 13u, 64u}) {
    Recorder r;
    MultipartParser p("XyZ", r);
    for (std::size_t i = 0; i < whole.size(); i += step) ASSERT_TRUE(p.feed(whole.substr(i, step)));
    ASSERT_TRUE(p.finish()) << "step " << step << ": " << p.error();
    ASSERT_EQ(r.parts.size(), ref.parts.size());
    for (std::size_t k = 0; k < r.parts.size(); ++k) EXPECT_EQ(r.parts[k].data, ref.parts[k].data) << step;
  }
}

TEST(Multipart, StreamsLargeFilesWithoutHoldingThem) {
  Recorder r;
  MultipartParser p("XyZ", r);
  const std::string head = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.mp3\"\r\n\r\n";
  ASSERT_TRUE(p.feed(head));
  const std::string chunk(64 * 1024, 'z');
  std::size_t total = 0;
  for (int i = 0; i < 64; ++i) {
    ASSERT_TRUE(p.feed(chunk));
    total += chunk.size();
  }
  ASSERT_TRUE(p.feed("\r\n--XyZ--"));
  ASSERT_TRUE(p.finish());
  EXPECT_EQ(r.parts[0].data.size(), total);
  EXPECT_LE(r.max_chunk, chunk.size() + 16);  // handed on chunk by chunk
}

TEST(Multipart, RejectsBrokenBodies) {
  {
    Recorder r;
    MultipartParser p("XyZ", r);
    EXPECT_TRUE(p.feed("--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue"));
    EXPECT_FALSE(p.finish());  // no closing delimiter
  }
  {
    Recorder r;
    MultipartParser p("XyZ", r);
    EXPECT_FALSE(p.feed("--XyZ\r\nno colon here\r\n\r\nx\r\n--XyZ--"));
    EXPECT_FALSE(p.error().empty());
  }
  {
    Recorder r;
    MultipartParser p("XyZ", r);
    EXPECT_FALSE(p.feed("--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--"));  // no disposition
  }
  {
    Recorder r;
    MultipartParser p("XyZ", r);
    EXPECT_FALSE(p.feed("--XyZ\r\n" + std::string(MultipartParser::kMaxHeaderBytes + 10, 'h')));
  }
  {
    Recorder r;
    MultipartParser p("XyZ", r);
    EXPECT_TRUE(p.feed("preamble only"));
    EXPECT_FALSE(p.finish());
  }
}

}  // namespace
}  // namespace floodgate::sim
