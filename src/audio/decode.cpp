#include "audio/decode.hpp"

#include <vector>

namespace floodgate::audio::detail {

AudioError make_error(AudioErrc code, const std::filesystem::path& path, const std::string& what) {
  return AudioError{code, path.filename().string() + ": " + what};
}

namespace {

// Pushes one frame (or, with frame == nullptr, the resampler's tail) through swr and on
// to the sink. Returns false when the sink asked to stop.
bool emit(SwrContext* swr, const AVFrame* frame, int channels, AVSampleFormat fmt, int rate_hz,
          std::vector<std::uint8_t>& buf, DecodeStats& stats, const SampleSink& sink) {
  const int in_samples = frame != nullptr ? frame->nb_samples : 0;
  const int in_rate = frame != nullptr ? frame->sample_rate : rate_hz;
  const std::int64_t capacity64 =
      av_rescale_rnd(swr_get_delay(swr, in_rate > 0 ? in_rate : rate_hz) + in_samples, rate_hz,
                     in_rate > 0 ? in_rate : rate_hz, AV_ROUND_UP) + 32;
  const int capacity = static_cast<int>(capacity64);
  const int bytes_per_sample = av_get_bytes_per_sample(fmt) * channels;
  if (buf.size() < static_cast<std::size_t>(capacity) * static_cast<std::size_t>(bytes_per_sample)) {
    buf.resize(static_cast<std::size_t>(capacity) * static_cast<std::size_t>(bytes_per_sample));
  }
  std::uint8_t* out_planes[1] = {buf.data()};
  const int got = swr_convert(swr, out_planes, capacity,
                              frame != nullptr ? const_cast<const std::uint8_t**>(frame->extended_data) : nullptr,
                              in_samples);
  if (got <= 0) return true;
  stats.samples_out += static_cast<std::uint64_t>(got);
  return sink(buf.data(), got);
}

}  // namespace

AudioResult<DecodeStats> decode_resampled(const std::filesystem::path& path, const AudioInfo& info, int channels,
                                          AVSampleFormat fmt, int rate_hz, const SampleSink& on_samples) {
  av::quiet_logging();
  int err = 0;
  av::InputPtr in = av::open_input(path.c_str(), &err);
  if (!in) return make_error(AudioErrc::not_audio, path, "cannot open: " + av::error_text(err));
  if (info.stream_index < 0 || info.stream_index >= static_cast<int>(in->nb_streams)) {
    return make_error(AudioErrc::internal, path, "audio stream index out of range");
  }
  for (unsigned i = 0; i < in->nb_streams; ++i) {
    if (static_cast<int>(i) != info.stream_index) in->streams[i]->discard = AVDISCARD_ALL;
  }
  av::CodecPtr dec = av::open_decoder(in.get(), info.stream_index, &err);
  if (!dec) return make_error(AudioErrc::unsupported, path, "no decoder for " + info.codec + ": " + av::error_text(err));

  av::PacketPtr pkt = av::make_packet();
  av::FramePtr frame = av::make_frame();
  if (!pkt || !frame) return make_error(AudioErrc::internal, path, "out of memory");
  av::SwrPtr swr;
  std::vector<std::uint8_t> buf;
  DecodeStats stats;
  bool stop = false;

  auto drain = [&]() -> AudioResult<bool> {
    while (true) {
      int rc = avcodec_receive_frame(dec.get(), frame.get());
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return true;
      if (rc < 0) {
        ++stats.decode_errors;
        return true;
      }
      if (!swr) {
        // Made from the first frame: some decoders only know their layout once decoding.
        SwrContext* raw = nullptr;
        AVChannelLayout out_layout;
        av_channel_layout_default(&out_layout, channels);
        AVChannelLayout in_layout;
        if (frame->ch_layout.nb_channels > 0 && frame->ch_layout.order != AV_CHANNEL_ORDER_UNSPEC) {
          av_channel_layout_copy(&in_layout, &frame->ch_layout);
        } else {
          av_channel_layout_default(&in_layout, frame->ch_layout.nb_channels > 0 ? frame->ch_layout.nb_channels : 1);
        }
        int src = swr_alloc_set_opts2(&raw, &out_layout, fmt, rate_hz, &in_layout,
                                      static_cast<AVSampleFormat>(frame->format), frame->sample_rate, 0, nullptr);
        av_channel_layout_uninit(&in_layout);
        av_channel_layout_uninit(&out_layout);
        swr.reset(raw);
        if (src >= 0) src = swr_init(swr.get());
        if (src < 0) {
          return make_error(AudioErrc::internal, path, "cannot set up the resampler: " + av::error_text(src));
        }
      }
      const bool more = emit(swr.get(), frame.get(), channels, fmt, rate_hz, buf, stats, on_samples);
      av_frame_unref(frame.get());
      if (!more) {
        stop = true;
        return true;
      }
    }
  };

  while (!stop) {
    int rc = av_read_frame(in.get(), pkt.get());
    if (rc == AVERROR_EOF) break;
    if (rc < 0) {
      // A read error mid-file: count it and stop reading; what was decoded stands.
      ++stats.decode_errors;
      break;
    }
    if (pkt->stream_index == info.stream_index) {
      ++stats.packets;
      rc = avcodec_send_packet(dec.get(), pkt.get());
      if (rc < 0 && rc != AVERROR(EAGAIN)) ++stats.decode_errors;
      auto drained = drain();
      if (!drained) {
        av_packet_unref(pkt.get());
        return drained.error();
      }
    }
    av_packet_unref(pkt.get());
  }
  if (!stop) {
    avcodec_send_packet(dec.get(), nullptr);
    auto drained = drain();
    if (!drained) return drained.error();
    if (swr && !stop) emit(swr.get(), nullptr, channels, fmt, rate_hz, buf, stats, on_samples);
  }
  return stats;
}

}  // namespace floodgate::audio::detail
