#include "floodgate/audio_media/split.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string_view>

#include "audio/av.hpp"
#include "audio/decode.hpp"

namespace floodgate::audio {

using detail::make_error;

bool needs_split(const AudioInfo& info, const SplitOptions& options) noexcept {
  return info.size_bytes > options.max_chunk_bytes || info.duration > options.max_chunk;
}

Seconds target_chunk_length(const AudioInfo& info, const SplitOptions& options) noexcept {
  double target = options.max_chunk.count();
  if (info.duration.count() > 0 && info.size_bytes > 0) {
    const double bytes_per_second = static_cast<double>(info.size_bytes) / info.duration.count();
    target = std::min(target, static_cast<double>(options.max_chunk_bytes) / bytes_per_second);
  }
  return Seconds(std::max(1.0, target));
}

std::vector<Cut> plan_cuts(Seconds duration, std::span<const Silence> silences, Seconds target,
                           double search_fraction) {
  std::vector<Cut> cuts;
  const double total = duration.count();
  const double len = target.count();
  if (!(len > 0) || !(total > len)) return cuts;
  const double fraction = std::clamp(search_fraction, 0.0, 1.0);
  constexpr double kEpsilon = 1e-6;
  double start = 0;
  std::size_t first = 0;  // silences before this index end before the current window
  while (total - start > len + kEpsilon) {
    const double lo = start + (1.0 - fraction) * len;
    const double hi = start + len;
    while (first < silences.size() && silences[first].end.count() <= lo) ++first;
    std::optional<std::pair<double, double>> best;
    for (std::size_t i = first; i < silences.size() && silences[i].start.count() < hi; ++i) {
      const double a = std::max(silences[i].start.count(), lo);
      const double b = std::min(silences[i].end.count(), hi);
      if (b <= a) continue;
      if (!best || b - a >= best->second - best->first) best = std::make_pair(a, b);
    }
    Cut cut;
    if (best) {
      cut.at = Seconds((best->first + best->second) / 2);
      cut.in_silence = true;
    } else {
      cut.at = Seconds(hi);
    }
    // Guard against a degenerate step (a window of zero width): always make progress.
    if (cut.at.count() <= start + kEpsilon) cut.at = Seconds(hi);
    cuts.push_back(cut);
    start = cut.at.count();
  }
  return cuts;
}

namespace {

struct MuxTarget {
  const char* muxer;
  const char* extension;
};

bool is_pcm(AVCodecID id) noexcept {
  return id >= AV_CODEC_ID_FIRST_AUDIO && id < AV_CODEC_ID_ADPCM_IMA_QT && av_get_bits_per_sample(id) > 0;
}

// The muxer that takes this container's packets unchanged, in a format the API accepts.
std::optional<MuxTarget> remux_target(std::string_view container, AVCodecID codec) {
  if (container == "mp3" && codec == AV_CODEC_ID_MP3) return MuxTarget{"mp3", ".mp3"};
  if (container == "wav" && is_pcm(codec)) return MuxTarget{"wav", ".wav"};
  if (container == "flac" && codec == AV_CODEC_ID_FLAC) return MuxTarget{"flac", ".flac"};
  if (container == "ogg" && (codec == AV_CODEC_ID_VORBIS || codec == AV_CODEC_ID_OPUS || codec == AV_CODEC_ID_FLAC)) {
    return MuxTarget{"ogg", ".ogg"};
  }
  if (container.find("mp4") != std::string_view::npos) {
    if (codec == AV_CODEC_ID_AAC || codec == AV_CODEC_ID_ALAC) return MuxTarget{"ipod", ".m4a"};
    if (codec == AV_CODEC_ID_MP3) return MuxTarget{"mp4", ".mp4"};
  }
  if (container.find("webm") != std::string_view::npos && (codec == AV_CODEC_ID_OPUS || codec == AV_CODEC_ID_VORBIS)) {
    return MuxTarget{"webm", ".webm"};
  }
  return std::nullopt;
}

std::filesystem::path chunk_path(const std::filesystem::path& dir, std::size_t index, const char* extension) {
  char name[32];
  std::snprintf(name, sizeof name, "chunk-%04zu", index);
  return dir / (std::string(name) + extension);
}

std::uint64_t size_of(const std::filesystem::path& p) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(p, ec);
  return ec ? 0 : n;
}

// A remuxed FLAC chunk carries the original's STREAMINFO, whose total-samples field
// describes the whole file. Rewrite it (36 bits at byte 21 of the file) with the chunk's
// own count, and clear the MD5 (zero means "not computed").
AudioResult<bool> patch_flac_streaminfo(const std::filesystem::path& path, std::int64_t duration_ts, AVRational tb,
                                        int sample_rate) {
  const auto samples = static_cast<std::uint64_t>(av_rescale_q(duration_ts, tb, AVRational{1, sample_rate}));
  std::FILE* f = std::fopen(path.c_str(), "r+b");
  if (f == nullptr) return make_error(AudioErrc::write_failed, path, "cannot reopen to patch STREAMINFO");
  unsigned char head[42];
  bool ok = std::fread(head, 1, sizeof head, f) == sizeof head && std::memcmp(head, "fLaC", 4) == 0 &&
            (head[4] & 0x7F) == 0;
  if (ok) {
    head[21] = static_cast<unsigned char>((head[21] & 0xF0) | ((samples >> 32) & 0x0F));
    head[22] = static_cast<unsigned char>((samples >> 24) & 0xFF);
    head[23] = static_cast<unsigned char>((samples >> 16) & 0xFF);
    head[24] = static_cast<unsigned char>((samples >> 8) & 0xFF);
    head[25] = static_cast<unsigned char>(samples & 0xFF);
    std::memset(head + 26, 0, 16);
    ok = std::fseek(f, 0, SEEK_SET) == 0 && std::fwrite(head, 1, sizeof head, f) == sizeof head;
  }
  ok = std::fclose(f) == 0 && ok;
  if (!ok) return make_error(AudioErrc::write_failed, path, "cannot patch the FLAC STREAMINFO");
  return true;
}

// One output file being written.
struct Output {
  av::OutputPtr ctx;
  AVStream* stream = nullptr;
};

AudioResult<Output> open_output(const std::filesystem::path& path, const char* muxer, const AVCodecParameters* par,
                                AVRational time_base, bool clear_padding) {
  AVFormatContext* raw = nullptr;
  int rc = avformat_alloc_output_context2(&raw, nullptr, muxer, path.c_str());
  if (rc < 0 || raw == nullptr) return make_error(AudioErrc::unsupported, path, std::string("no ") + muxer + " muxer");
  Output out;
  out.ctx.reset(raw);
  out.stream = avformat_new_stream(raw, nullptr);
  if (out.stream == nullptr) return make_error(AudioErrc::internal, path, "cannot add a stream");
  rc = avcodec_parameters_copy(out.stream->codecpar, par);
  if (rc < 0) return make_error(AudioErrc::internal, path, "cannot copy codec parameters: " + av::error_text(rc));
  out.stream->codecpar->codec_tag = 0;
  if (clear_padding) out.stream->codecpar->initial_padding = 0;
  out.stream->time_base = time_base;
  rc = avio_open(&raw->pb, path.c_str(), AVIO_FLAG_WRITE);
  if (rc < 0) return make_error(AudioErrc::write_failed, path, "cannot create: " + av::error_text(rc));
  rc = avformat_write_header(raw, nullptr);
  if (rc < 0) return make_error(AudioErrc::unsupported, path, std::string("the ") + muxer + " muxer refused the stream: " + av::error_text(rc));
  return out;
}

AudioResult<std::vector<Chunk>> remux_chunks(const std::filesystem::path& input, const AudioInfo& info,
                                             std::span<const Cut> cuts, const std::filesystem::path& out_dir,
                                             const MuxTarget& target) {
  int err = 0;
  av::InputPtr in = av::open_input(input.c_str(), &err);
  if (!in) return make_error(AudioErrc::not_audio, input, "cannot open: " + av::error_text(err));
  for (unsigned i = 0; i < in->nb_streams; ++i) {
    if (static_cast<int>(i) != info.stream_index) in->streams[i]->discard = AVDISCARD_ALL;
  }
  AVStream* st = in->streams[info.stream_index];
  const AVRational tb = st->time_base;
  const double tb_s = av_q2d(tb);
  const std::int64_t start_ts = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
  const bool pcm = is_pcm(st->codecpar->codec_id) && st->codecpar->block_align > 0 && st->codecpar->sample_rate > 0;

  std::vector<Chunk> chunks;
  Output out;
  std::int64_t rebase = 0;            // subtracted from every timestamp of the current chunk
  std::int64_t chunk_first_ts = 0;    // first timestamp of the current chunk
  std::int64_t chunk_end_ts = 0;      // end (ts + duration) of its last packet
  std::size_t current = 0;            // index of the chunk being written
  bool open = false;
  std::int64_t next_ts = AV_NOPTS_VALUE;

  auto close_chunk = [&]() -> AudioResult<bool> {
    if (!open) return true;
    const int rc = av_write_trailer(out.ctx.get());
    out = Output{};
    open = false;
    Chunk& c = chunks.back();
    if (rc < 0) return make_error(AudioErrc::write_failed, c.path, "cannot finish: " + av::error_text(rc));
    // The chunk's own timeline starts at its first packet: that packet's time in the
    // original is the chunk's offset (slightly negative for chunk 0 when the codec has
    // priming samples before the stream's start time).
    c.offset = Seconds(static_cast<double>(chunk_first_ts - start_ts) * tb_s);
    c.duration = Seconds(static_cast<double>(chunk_end_ts - chunk_first_ts) * tb_s);
    if (std::string_view(target.muxer) == "flac") {
      auto patched = patch_flac_streaminfo(c.path, chunk_end_ts - chunk_first_ts, tb, st->codecpar->sample_rate);
      if (!patched) return patched.error();
    }
    c.size_bytes = size_of(c.path);
    return true;
  };

  auto write_packet = [&](AVPacket* pkt, std::size_t chunk_index) -> AudioResult<bool> {
    if (!open || chunk_index != current) {
      auto closed = close_chunk();
      if (!closed) return closed.error();
      current = chunk_index;
      Chunk c;
      c.index = chunks.size();
      c.path = chunk_path(out_dir, c.index, target.extension);
      chunks.push_back(c);
      auto opened = open_output(c.path, target.muxer, st->codecpar, tb, true);
      if (!opened) return opened.error();
      out = std::move(opened.value());
      open = true;
      chunk_first_ts = pkt->pts;
      // Every chunk starts at timestamp 0, with no priming to skip (initial padding and
      // skip-samples side data are dropped), so its decoded audio starts at its first packet.
      rebase = pkt->pts;
    }
    chunk_end_ts = pkt->pts + pkt->duration;
    pkt->pts -= rebase;
    pkt->dts = pkt->dts != AV_NOPTS_VALUE ? pkt->dts - rebase : pkt->pts;
    pkt->stream_index = 0;
    pkt->pos = -1;
    av_packet_free_side_data(pkt);
    av_packet_rescale_ts(pkt, tb, out.stream->time_base);
    const int rc = av_write_frame(out.ctx.get(), pkt);
    if (rc < 0) return make_error(AudioErrc::write_failed, chunks.back().path, "cannot write: " + av::error_text(rc));
    return true;
  };

  // The chunk a packet [t, t + d) belongs to: the number of cuts at or before its middle.
  auto chunk_of = [&](double t_mid) {
    std::size_t k = 0;
    while (k < cuts.size() && cuts[k].at.count() <= t_mid) ++k;
    return k;
  };

  av::PacketPtr pkt = av::make_packet();
  av::PacketPtr part = av::make_packet();
  if (!pkt || !part) return make_error(AudioErrc::internal, input, "out of memory");
  while (true) {
    int rc = av_read_frame(in.get(), pkt.get());
    if (rc == AVERROR_EOF) break;
    if (rc < 0) break;  // a broken tail: keep what was read (probe reports truncation)
    if (pkt->stream_index != info.stream_index) {
      av_packet_unref(pkt.get());
      continue;
    }
    if (pkt->pts == AV_NOPTS_VALUE) pkt->pts = pkt->dts != AV_NOPTS_VALUE ? pkt->dts : next_ts;
    if (pkt->pts == AV_NOPTS_VALUE) pkt->pts = 0;
    if (pkt->duration <= 0 && pcm) {
      pkt->duration = av_rescale_q(pkt->size / st->codecpar->block_align, AVRational{1, st->codecpar->sample_rate}, tb);
    }
    next_ts = pkt->pts + pkt->duration;

    // PCM: cut inside the packet at the exact sample.
    while (pcm && pkt->duration > 0) {
      const double t0 = static_cast<double>(pkt->pts - start_ts) * tb_s;
      const double t1 = static_cast<double>(pkt->pts + pkt->duration - start_ts) * tb_s;
      const std::size_t k = chunk_of(t0);
      if (k >= cuts.size() || cuts[k].at.count() >= t1) break;
      const auto samples = static_cast<std::int64_t>(std::llround((cuts[k].at.count() - t0) * st->codecpar->sample_rate));
      const int bytes = static_cast<int>(samples) * st->codecpar->block_align;
      if (samples <= 0 || bytes >= pkt->size) break;
      rc = av_packet_ref(part.get(), pkt.get());
      if (rc < 0) return make_error(AudioErrc::internal, input, "out of memory");
      part->size = bytes;
      part->duration = av_rescale_q(samples, AVRational{1, st->codecpar->sample_rate}, tb);
      auto written = write_packet(part.get(), k);
      av_packet_unref(part.get());
      if (!written) return written.error();
      const std::int64_t consumed = av_rescale_q(samples, AVRational{1, st->codecpar->sample_rate}, tb);
      pkt->data += bytes;
      pkt->size -= bytes;
      pkt->pts += consumed;
      if (pkt->dts != AV_NOPTS_VALUE) pkt->dts += consumed;
      pkt->duration -= consumed;
    }
    const double t_mid = static_cast<double>(pkt->pts - start_ts) * tb_s + static_cast<double>(pkt->duration) * tb_s / 2;
    auto written = write_packet(pkt.get(), chunk_of(t_mid));
    av_packet_unref(pkt.get());
    if (!written) return written.error();
  }
  auto closed = close_chunk();
  if (!closed) return closed.error();
  if (chunks.empty()) return make_error(AudioErrc::corrupt, input, "no audio packets could be read");
  return chunks;
}

// Decodes the whole stream once and encodes each chunk as 16 kHz mono FLAC, cutting at
// exact samples.
AudioResult<std::vector<Chunk>> reencode_chunks(const std::filesystem::path& input, const AudioInfo& info,
                                                std::span<const Cut> cuts, const std::filesystem::path& out_dir) {
  constexpr int kRate = 16000;
  const AVCodec* codec = avcodec_find_encoder(AV_CODEC_ID_FLAC);
  if (codec == nullptr) return make_error(AudioErrc::unsupported, input, "no FLAC encoder in this FFmpeg build");
  std::vector<std::int64_t> bounds;  // sample index where chunk k+1 starts
  for (const Cut& c : cuts) bounds.push_back(std::llround(c.at.count() * kRate));

  struct Writer {
    av::CodecPtr enc;
    Output out;
    av::FifoPtr fifo;
    av::FramePtr frame;
    av::PacketPtr pkt;
    std::int64_t pts = 0;
  };
  std::optional<Writer> w;
  std::vector<Chunk> chunks;
  std::int64_t position = 0;  // samples consumed so far
  std::optional<AudioError> failure;

  auto drain = [&](Writer& wr) -> bool {
    while (true) {
      int rc = avcodec_receive_packet(wr.enc.get(), wr.pkt.get());
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return true;
      if (rc < 0) {
        failure = make_error(AudioErrc::internal, chunks.back().path, "FLAC encoding failed: " + av::error_text(rc));
        return false;
      }
      wr.pkt->stream_index = 0;
      av_packet_rescale_ts(wr.pkt.get(), wr.enc->time_base, wr.out.stream->time_base);
      rc = av_write_frame(wr.out.ctx.get(), wr.pkt.get());
      av_packet_unref(wr.pkt.get());
      if (rc < 0) {
        failure = make_error(AudioErrc::write_failed, chunks.back().path, "cannot write: " + av::error_text(rc));
        return false;
      }
    }
  };
  auto encode_from_fifo = [&](Writer& wr, bool final) -> bool {
    const int frame_size = wr.enc->frame_size > 0 ? wr.enc->frame_size : 4096;
    while (av_audio_fifo_size(wr.fifo.get()) >= frame_size || (final && av_audio_fifo_size(wr.fifo.get()) > 0)) {
      const int n = std::min(frame_size, av_audio_fifo_size(wr.fifo.get()));
      av_frame_unref(wr.frame.get());
      wr.frame->nb_samples = n;
      wr.frame->format = AV_SAMPLE_FMT_S16;
      wr.frame->sample_rate = kRate;
      av_channel_layout_default(&wr.frame->ch_layout, 1);
      if (av_frame_get_buffer(wr.frame.get(), 0) < 0) {
        failure = make_error(AudioErrc::internal, input, "out of memory");
        return false;
      }
      av_audio_fifo_read(wr.fifo.get(), reinterpret_cast<void**>(wr.frame->data), n);
      wr.frame->pts = wr.pts;
      wr.pts += n;
      if (avcodec_send_frame(wr.enc.get(), wr.frame.get()) < 0 || !drain(wr)) {
        if (!failure) failure = make_error(AudioErrc::internal, input, "FLAC encoding failed");
        return false;
      }
    }
    return true;
  };
  auto finish = [&]() -> bool {
    if (!w) return true;
    bool ok = encode_from_fifo(*w, true);
    if (ok) {
      avcodec_send_frame(w->enc.get(), nullptr);
      ok = drain(*w);
    }
    if (ok) {
      const int rc = av_write_trailer(w->out.ctx.get());
      if (rc < 0) {
        failure = make_error(AudioErrc::write_failed, chunks.back().path, "cannot finish: " + av::error_text(rc));
        ok = false;
      }
    }
    w.reset();
    Chunk& c = chunks.back();
    c.duration = Seconds(static_cast<double>(position) / kRate) - c.offset;
    c.size_bytes = size_of(c.path);
    return ok;
  };
  auto start = [&]() -> bool {
    Chunk c;
    c.index = chunks.size();
    c.path = chunk_path(out_dir, c.index, ".flac");
    c.offset = Seconds(static_cast<double>(position) / kRate);
    chunks.push_back(c);
    Writer wr;
    wr.enc.reset(avcodec_alloc_context3(codec));
    wr.frame = av::make_frame();
    wr.pkt = av::make_packet();
    if (!wr.enc || !wr.frame || !wr.pkt) {
      failure = make_error(AudioErrc::internal, input, "out of memory");
      return false;
    }
    wr.enc->sample_fmt = AV_SAMPLE_FMT_S16;
    wr.enc->sample_rate = kRate;
    av_channel_layout_default(&wr.enc->ch_layout, 1);
    wr.enc->time_base = AVRational{1, kRate};
    int rc = avcodec_open2(wr.enc.get(), codec, nullptr);
    if (rc < 0) {
      failure = make_error(AudioErrc::internal, input, "cannot open the FLAC encoder: " + av::error_text(rc));
      return false;
    }
    AVCodecParameters* par = avcodec_parameters_alloc();
    avcodec_parameters_from_context(par, wr.enc.get());
    auto opened = open_output(c.path, "flac", par, wr.enc->time_base, false);
    avcodec_parameters_free(&par);
    if (!opened) {
      failure = opened.error();
      return false;
    }
    wr.out = std::move(opened.value());
    wr.fifo.reset(av_audio_fifo_alloc(AV_SAMPLE_FMT_S16, 1, 8192));
    if (!wr.fifo) {
      failure = make_error(AudioErrc::internal, input, "out of memory");
      return false;
    }
    w = std::move(wr);
    return true;
  };

  auto sink = [&](const std::uint8_t* data, int n) -> bool {
    int offset = 0;
    while (offset < n) {
      const std::size_t k = chunks.empty() ? 0 : chunks.size() - 1;
      if (!w) {
        if (!start()) return false;
        continue;
      }
      std::int64_t room = n - offset;
      if (k < bounds.size()) room = std::min<std::int64_t>(room, bounds[k] - position);
      if (room <= 0) {
        if (!finish() || !start()) return false;
        continue;
      }
      const auto* p = reinterpret_cast<const std::int16_t*>(data) + offset;
      void* planes[1] = {const_cast<std::int16_t*>(p)};
      if (av_audio_fifo_write(w->fifo.get(), planes, static_cast<int>(room)) < room) {
        failure = make_error(AudioErrc::internal, input, "out of memory");
        return false;
      }
      offset += static_cast<int>(room);
      position += room;
      if (!encode_from_fifo(*w, false)) return false;
    }
    return true;
  };
  auto stats = detail::decode_resampled(input, info, 1, AV_SAMPLE_FMT_S16, kRate, sink);
  if (failure) return *failure;
  if (!stats) return stats.error();
  if (!finish()) return *failure;
  if (chunks.empty()) return make_error(AudioErrc::corrupt, input, "no audio could be decoded");
  return chunks;
}

void remove_files(const std::vector<Chunk>& chunks) {
  for (const Chunk& c : chunks) {
    std::error_code ec;
    std::filesystem::remove(c.path, ec);
  }
}

}  // namespace

AudioResult<std::vector<Chunk>> write_chunks(const std::filesystem::path& input, const AudioInfo& info,
                                             std::span<const Cut> cuts, const std::filesystem::path& out_dir,
                                             ChunkMode mode, bool* reencoded) {
  av::quiet_logging();
  if (reencoded != nullptr) *reencoded = false;
  if (mode != ChunkMode::reencode) {
    const AVCodecID codec_id = avcodec_descriptor_get_by_name(info.codec.c_str()) != nullptr
                                   ? avcodec_descriptor_get_by_name(info.codec.c_str())->id
                                   : AV_CODEC_ID_NONE;
    const auto target = remux_target(info.container, codec_id);
    if (target) {
      auto chunks = remux_chunks(input, info, cuts, out_dir, *target);
      if (chunks || mode == ChunkMode::remux) return chunks;
      if (chunks.error().code == AudioErrc::write_failed) return chunks;
      // Otherwise fall through to re-encoding. (remux_chunks removed nothing yet.)
      std::error_code ec;
      for (const auto& entry : std::filesystem::directory_iterator(out_dir, ec)) {
        if (entry.path().filename().string().rfind("chunk-", 0) == 0) std::filesystem::remove(entry.path(), ec);
      }
    } else if (mode == ChunkMode::remux) {
      return make_error(AudioErrc::unsupported, input,
                        "cannot remux " + info.codec + " in " + info.container + " without re-encoding");
    }
  }
  if (reencoded != nullptr) *reencoded = true;
  auto chunks = reencode_chunks(input, info, cuts, out_dir);
  return chunks;
}

AudioResult<SplitResult> split_audio(const std::filesystem::path& input, const AudioInfo& info,
                                     const std::filesystem::path& out_dir, const SplitOptions& options) {
  auto profile = measure_energy(input, info, options.silence);
  if (!profile) return profile.error();
  SplitResult result;
  result.silences = find_silences(*profile, options.silence);
  result.decoded_duration = profile->decoded_duration;
  const Seconds duration = profile->decoded_duration.count() > 0 ? profile->decoded_duration : info.duration;
  Seconds target = target_chunk_length(info, options);
  // A chunk over the byte limit (a VBR file denser than its average) makes us plan again
  // with a proportionally shorter target.
  for (int attempt = 0; attempt < 4; ++attempt) {
    result.cuts = plan_cuts(duration, result.silences, target, options.search_fraction);
    auto chunks = write_chunks(input, info, result.cuts, out_dir, options.mode, &result.reencoded);
    if (!chunks) return chunks.error();
    std::uint64_t largest = 0;
    for (const Chunk& c : *chunks) largest = std::max(largest, c.size_bytes);
    if (largest <= options.max_chunk_bytes || target.count() <= 1.0) {
      result.chunks = std::move(chunks.value());
      return result;
    }
    remove_files(*chunks);
    target = Seconds(std::max(1.0, target.count() * 0.95 * static_cast<double>(options.max_chunk_bytes) /
                                       static_cast<double>(largest)));
  }
  return make_error(AudioErrc::internal, input, "could not make chunks under the size limit");
}

}  // namespace floodgate::audio
