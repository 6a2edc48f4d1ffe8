#include "audio/av.hpp"

#include <array>
#include <mutex>

namespace floodgate::audio::av {

std::string error_text(int errnum) {
  std::array<char, AV_ERROR_MAX_STRING_SIZE> buf{};
  if (av_strerror(errnum, buf.data(), buf.size()) < 0) return "FFmpeg error " + std::to_string(errnum);
  return std::string(buf.data());
}

void quiet_logging() noexcept {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_level(AV_LOG_QUIET); });
}

InputPtr open_input(const char* path, int* err) noexcept {
  AVFormatContext* raw = nullptr;
  // MP3: seek with the Xing table of contents instead of reading from the start (the
  // generic seek reads every packet up to the target).
  AVDictionary* options = nullptr;
  av_dict_set(&options, "usetoc", "1", 0);
  int rc = avformat_open_input(&raw, path, nullptr, &options);
  av_dict_free(&options);
  if (rc < 0) {
    *err = rc;
    return nullptr;
  }
  InputPtr in(raw);
  rc = avformat_find_stream_info(in.get(), nullptr);
  if (rc < 0) {
    *err = rc;
    return nullptr;
  }
  return in;
}

CodecPtr open_decoder(const AVFormatContext* in, int index, int* err) noexcept {
  const AVCodecParameters* par = in->streams[index]->codecpar;
  const AVCodec* codec = avcodec_find_decoder(par->codec_id);
  if (codec == nullptr) {
    *err = AVERROR_DECODER_NOT_FOUND;
    return nullptr;
  }
  CodecPtr dec(avcodec_alloc_context3(codec));
  if (!dec) {
    *err = AVERROR(ENOMEM);
    return nullptr;
  }
  int rc = avcodec_parameters_to_context(dec.get(), par);
  if (rc >= 0) {
    dec->pkt_timebase = in->streams[index]->time_base;
    rc = avcodec_open2(dec.get(), codec, nullptr);
  }
  if (rc < 0) {
    *err = rc;
    return nullptr;
  }
  return dec;
}

PacketPtr make_packet() noexcept { return PacketPtr(av_packet_alloc()); }
FramePtr make_frame() noexcept { return FramePtr(av_frame_alloc()); }

}  // namespace floodgate::audio::av
