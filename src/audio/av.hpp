#pragma once
// RAII for the FFmpeg objects the audio component uses, and FFmpeg error codes turned
// into text. Every AV* object is owned by a unique_ptr whose deleter is the matching
// free function, so no early return leaks a context.

#include <memory>
#include <string>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
}

namespace floodgate::audio::av {

struct InputDeleter {
  void operator()(AVFormatContext* c) const noexcept { avformat_close_input(&c); }
};
struct OutputDeleter {
  void operator()(AVFormatContext* c) const noexcept {
    if (c == nullptr) return;
    if (c->pb != nullptr && (c->oformat->flags & AVFMT_NOFILE) == 0) avio_closep(&c->pb);
    avformat_free_context(c);
  }
};
struct CodecDeleter {
  void operator()(AVCodecContext* c) const noexcept { avcodec_free_context(&c); }
};
struct PacketDeleter {
  void operator()(AVPacket* p) const noexcept { av_packet_free(&p); }
};
struct FrameDeleter {
  void operator()(AVFrame* f) const noexcept { av_frame_free(&f); }
};
struct SwrDeleter {
  void operator()(SwrContext* s) const noexcept { swr_free(&s); }
};
struct FifoDeleter {
  void operator()(AVAudioFifo* f) const noexcept { av_audio_fifo_free(f); }
};

using InputPtr = std::unique_ptr<AVFormatContext, InputDeleter>;
using OutputPtr = std::unique_ptr<AVFormatContext, OutputDeleter>;
using CodecPtr = std::unique_ptr<AVCodecContext, CodecDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;
using SwrPtr = std::unique_ptr<SwrContext, SwrDeleter>;
using FifoPtr = std::unique_ptr<AVAudioFifo, FifoDeleter>;

// av_strerror as a std::string.
std::string error_text(int errnum);

// Quiets FFmpeg's own logging (to stderr) once per process: the component reports errors
// as values, and a job over thousands of files must not print decoder chatter.
void quiet_logging() noexcept;

// Opens `path` for reading and reads stream info. On failure returns null and sets *err.
InputPtr open_input(const char* path, int* err) noexcept;

// A decoder for stream `index` of `in`, opened. Null (and *err) on failure.
CodecPtr open_decoder(const AVFormatContext* in, int index, int* err) noexcept;

PacketPtr make_packet() noexcept;
FramePtr make_frame() noexcept;

}  // namespace floodgate::audio::av
