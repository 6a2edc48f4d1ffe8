#pragma once
// An Encoding turns text into model tokens exactly as OpenAI's tiktoken does, and back.
//
// Encoding a text runs two steps, both identical to tiktoken's:
//   1. Pre-tokenization splits the text into pieces with the encoding's regex (words with
//      their leading space, digit groups of at most three, punctuation runs, whitespace
//      runs). floodgate implements each regex by hand over Unicode 16 category tables,
//      the same Unicode version as the Rust regex crate inside tiktoken.
//   2. Byte-pair encoding merges each piece's bytes by rank until no adjacent pair forms
//      a known token. Long pieces use a heap, so one 1 MB "word" stays near-linear.
//
// The rank tables (cl100k_base, o200k_base) are compiled into the library: no data files
// at run time. Encodings are immutable singletons, safe to share between threads.
//
// Special tokens such as "<|endoftext|>" are plain text by default (encode()), and only
// become their special id with encode_with_special(). Input that is not valid UTF-8 is
// accepted: each invalid byte is its own punctuation-like character, so decode(encode(x))
// returns x byte for byte for any input.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace floodgate::tokens {

using Rank = std::uint32_t;  // a token id

enum class EncodingId { cl100k_base, o200k_base };

[[nodiscard]] std::string_view encoding_name(EncodingId id) noexcept;
// "cl100k_base" -> EncodingId::cl100k_base; nullopt when unknown.
[[nodiscard]] std::optional<EncodingId> encoding_from_name(std::string_view name) noexcept;

class Encoding {
 public:
  // The process-wide instance, built on first use (a few milliseconds), then shared.
  [[nodiscard]] static const Encoding& get(EncodingId id);

  [[nodiscard]] EncodingId id() const noexcept { return id_; }
  [[nodiscard]] std::string_view name() const noexcept { return encoding_name(id_); }

  // Token ids of `text`; special tokens are encoded as ordinary text.
  [[nodiscard]] std::vector<Rank> encode(std::string_view text) const;
  // Appends to `out` (reuse one vector to avoid allocations).
  void encode_into(std::string_view text, std::vector<Rank>& out) const;
  // Like encode(), but "<|endoftext|>" and the encoding's other special tokens become
  // their special ids.
  [[nodiscard]] std::vector<Rank> encode_with_special(std::string_view text) const;

  // Number of tokens of encode(text), without materialising the ids.
  [[nodiscard]] std::size_t count(std::string_view text) const;
  // Same result as count(), split at safe boundaries and counted on `threads` threads
  // (0: hardware concurrency). Worth it above a few hundred kilobytes.
  [[nodiscard]] std::size_t count_parallel(std::string_view text, unsigned threads = 0) const;

  // The bytes of the tokens, concatenated. Throws floodgate::Error on an unknown id.
  [[nodiscard]] std::string decode(std::span<const Rank> ids) const;
  // The bytes of one token; empty when the id is unknown.
  [[nodiscard]] std::string_view token_bytes(Rank id) const noexcept;

  // The id of a special token ("<|endoftext|>"), nullopt when this encoding lacks it.
  [[nodiscard]] std::optional<Rank> special_token(std::string_view text) const noexcept;
  // One past the largest id (ordinary and special).
  [[nodiscard]] Rank vocabulary_size() const noexcept;

  // Offsets at which `text` may be cut so that encoding the parts separately gives the
  // same tokens as encoding it whole (used by count_parallel; exposed for tests).
  // Returns at most `parts - 1` increasing offsets in (0, text.size()).
  [[nodiscard]] static std::vector<std::size_t> safe_split_points(std::string_view text,
                                                                  std::size_t parts);

  struct Impl;
  explicit Encoding(EncodingId id, std::unique_ptr<Impl> impl);
  ~Encoding();
  Encoding(const Encoding&) = delete;
  Encoding& operator=(const Encoding&) = delete;

 private:
  EncodingId id_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace floodgate::tokens
