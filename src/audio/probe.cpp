#include "floodgate/audio_media/probe.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <system_error>

#include "audio/av.hpp"
#include "audio/decode.hpp"

namespace floodgate::audio {

namespace {

using detail::make_error;

double to_seconds(std::int64_t ts, AVRational tb) noexcept {
  return static_cast<double>(ts) * av_q2d(tb);
}

// Seeks to a little before the declared end and reads packets to EOF. Returns the end
// time (seconds, same timeline as start_time) of the last packet read, or a negative
// value when not a single packet could be read there.
double tail_end_seconds(AVFormatContext* in, const AudioInfo& info, Seconds tail) {
  AVStream* st = in->streams[info.stream_index];
  const double target_s = std::max(0.0, info.start_time.count() + info.duration.count() - tail.count());
  const auto target_ts = static_cast<std::int64_t>(target_s / av_q2d(st->time_base));
  if (av_seek_frame(in, info.stream_index, target_ts, AVSEEK_FLAG_BACKWARD) < 0) {
    // Seeking past the data fails on some demuxers: scan the whole file from the start
    // instead (packets only, no decoding).
    if (av_seek_frame(in, -1, 0, AVSEEK_FLAG_BACKWARD | AVSEEK_FLAG_BYTE) < 0 &&
        av_seek_frame(in, info.stream_index, st->start_time != AV_NOPTS_VALUE ? st->start_time : 0,
                      AVSEEK_FLAG_BACKWARD) < 0) {
      return -2.0;  // cannot tell
    }
  }
  av::PacketPtr pkt = av::make_packet();
  double end_s = -1.0;
  double pos_end_s = -1.0;
  std::int64_t next_pts = AV_NOPTS_VALUE;
  for (int guard = 0; guard < 1'000'000; ++guard) {
    const int rc = av_read_frame(in, pkt.get());
    if (rc < 0) break;
    if (pkt->stream_index == info.stream_index) {
      std::int64_t ts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
      if (ts == AV_NOPTS_VALUE) ts = next_pts;
      if (ts != AV_NOPTS_VALUE) {
        next_pts = ts + pkt->duration;
        end_s = std::max(end_s, to_seconds(ts + pkt->duration, st->time_base));
      } else {
        pos_end_s = 0;  // packets without timestamps: we cannot judge
      }
    }
    av_packet_unref(pkt.get());
  }
  if (end_s < 0 && pos_end_s >= 0) return -2.0;
  return end_s;
}

// A WAV header declares the size of its data chunk; libavformat quietly trusts the file
// size instead. Returns how many bytes of declared data are missing (0 when complete or
// when the header does not say: streamed WAVs write 0 or 0xFFFFFFFF).
std::uint64_t wav_missing_bytes(const std::filesystem::path& path, std::uint64_t file_size) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return 0;
  unsigned char buf[4096];
  const std::size_t n = std::fread(buf, 1, sizeof buf, f);
  std::fclose(f);
  auto le32 = [&](std::size_t at) {
    return static_cast<std::uint32_t>(buf[at]) | (static_cast<std::uint32_t>(buf[at + 1]) << 8) |
           (static_cast<std::uint32_t>(buf[at + 2]) << 16) | (static_cast<std::uint32_t>(buf[at + 3]) << 24);
  };
  if (n < 12 || std::memcmp(buf, "RIFF", 4) != 0 || std::memcmp(buf + 8, "WAVE", 4) != 0) return 0;
  std::size_t pos = 12;
  while (pos + 8 <= n) {
    const std::uint32_t size = le32(pos + 4);
    if (std::memcmp(buf + pos, "data", 4) == 0) {
      if (size == 0 || size == 0xFFFFFFFFU) return 0;
      const std::uint64_t available = file_size > pos + 8 ? file_size - (pos + 8) : 0;
      return size > available ? size - available : 0;
    }
    pos += 8 + size + (size & 1U);
  }
  return 0;
}

}  // namespace

AudioResult<AudioInfo> probe(const std::filesystem::path& path, const ProbeOptions& options) {
  av::quiet_logging();
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) return make_error(AudioErrc::not_found, path, "no such file");
  if (!std::filesystem::is_regular_file(status)) return make_error(AudioErrc::unreadable, path, "not a regular file");
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return make_error(AudioErrc::unreadable, path, "cannot read its size: " + ec.message());
  if (size == 0) return make_error(AudioErrc::empty, path, "the file is empty (0 bytes)");

  int err = 0;
  av::InputPtr in = av::open_input(path.c_str(), &err);
  if (!in) {
    if (err == AVERROR(EACCES) || err == AVERROR(EPERM)) {
      return make_error(AudioErrc::unreadable, path, "cannot open: " + av::error_text(err));
    }
    return make_error(AudioErrc::not_audio, path,
                      "not a recognised audio file (" + av::error_text(err) + ")");
  }
  const int index = av_find_best_stream(in.get(), AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0);
  if (index < 0) return make_error(AudioErrc::not_audio, path, "no audio stream in the " + std::string(in->iformat->name) + " container");
  const AVStream* st = in->streams[index];
  const AVCodecParameters* par = st->codecpar;

  AudioInfo info;
  info.container = in->iformat->name;
  info.codec = avcodec_get_name(par->codec_id);
  info.size_bytes = size;
  info.sample_rate_hz = par->sample_rate;
  info.channels = par->ch_layout.nb_channels;
  info.bit_rate = par->bit_rate > 0 ? par->bit_rate : in->bit_rate;
  info.stream_index = index;
  if (st->start_time != AV_NOPTS_VALUE) info.start_time = Seconds(to_seconds(st->start_time, st->time_base));
  if (st->duration != AV_NOPTS_VALUE && st->duration > 0) {
    info.duration = Seconds(to_seconds(st->duration, st->time_base));
  } else if (in->duration != AV_NOPTS_VALUE && in->duration > 0) {
    info.duration = Seconds(static_cast<double>(in->duration) / AV_TIME_BASE);
  }
  if (par->codec_id == AV_CODEC_ID_NONE || avcodec_find_decoder(par->codec_id) == nullptr) {
    return make_error(AudioErrc::unsupported, path, "no decoder for its audio codec (" + info.codec + ")");
  }
  if (info.sample_rate_hz <= 0 || info.channels <= 0) {
    return make_error(AudioErrc::corrupt, path, "the audio stream has no sample rate or channels (corrupt header)");
  }
  if (!(info.duration.count() > 0) || !std::isfinite(info.duration.count())) {
    return make_error(AudioErrc::empty, path, "the " + info.container + " file holds no audio (duration 0)");
  }

  if (options.check_tail && info.container == "wav" && info.bit_rate > 0) {
    const std::uint64_t missing = wav_missing_bytes(path, size);
    if (missing > 0) {
      const double missing_s = static_cast<double>(missing) * 8.0 / static_cast<double>(info.bit_rate);
      if (missing_s > options.truncation_tolerance.count()) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "truncated: the WAV header declares %.2f s more audio than the file holds",
                      missing_s);
        return make_error(AudioErrc::corrupt, path, buf);
      }
    }
  }
  if (options.check_tail) {
    const double declared_end = info.start_time.count() + info.duration.count();
    const double end_s = tail_end_seconds(in.get(), info, options.tail_check);
    const double tolerance = std::max(options.truncation_tolerance.count(), 0.02 * info.duration.count());
    if (end_s == -1.0) {
      return make_error(AudioErrc::corrupt, path,
                        "truncated or corrupt: no audio data near the declared end (" +
                            std::to_string(info.duration.count()) + " s)");
    }
    if (end_s >= 0 && end_s < declared_end - tolerance) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "truncated: the audio data ends at %.2f s but the header declares %.2f s",
                    end_s - info.start_time.count(), info.duration.count());
      return make_error(AudioErrc::corrupt, path, buf);
    }
  }
  return info;
}

}  // namespace floodgate::audio
