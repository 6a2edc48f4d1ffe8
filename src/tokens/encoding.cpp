// Encoding: the rank tables, byte-pair merging and the glue around pre-tokenization.
//
// Byte-pair merging of one piece repeatedly joins the adjacent pair whose joined bytes
// have the lowest rank (leftmost on ties) until no joined pair is a token, exactly as
// tiktoken's _byte_pair_merge. Pieces up to kSmallPiece bytes use tiktoken's array scan
// on the stack (fastest for words); longer ones a linked list plus a min-heap of
// (rank, position) with lazy deletion, O(n log n), so a 1 MB run of one character does
// not go quadratic. A merged pair's rank is the new part's token, so no second lookup.

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <string>
#include <thread>

#include "floodgate/core/error.hpp"
#include "floodgate/tokens/encoding.hpp"
#include "tokens/data_blobs.hpp"
#include "tokens/pretokenize.hpp"
#include "tokens/rank_map.hpp"

namespace floodgate::tokens {

namespace detail {

const UnicodeTable& unicode_table() noexcept {
  static const UnicodeTable table = [] {
    const auto blob = unicode_classes_blob();
    UnicodeTable t;
    // Layout: "FGUC", u16 stage1[0x1100], blocks (see scripts/gen-tokenizer-data.mjs).
    static std::array<std::uint16_t, 0x1100> stage1;
    std::memcpy(stage1.data(), blob.data() + 4, sizeof(stage1));
    t.stage1 = stage1.data();
    t.blocks = blob.data() + 4 + sizeof(stage1);
    return t;
  }();
  return table;
}

}  // namespace detail

namespace {

using detail::kNoRank;

constexpr std::size_t kSmallPiece = 48;
constexpr std::size_t kCachedPieceBytes = 24;  // pieces this short may be cached...
constexpr std::size_t kCachedPieceIds = 8;     // ...when they encode to this many ids or fewer
constexpr std::size_t kCacheEntries = 4096;

std::uint32_t read_u32(const std::uint8_t* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace

struct Encoding::Impl {
  EncodingId id;
  const std::uint8_t* token_bytes = nullptr;
  std::vector<std::uint32_t> offsets;  // rank -> offset, count + 1 entries
  std::uint32_t count = 0;
  detail::RankMap map;
  std::array<Rank, 256> byte_rank{};
  std::vector<std::pair<std::string, Rank>> specials;

  explicit Impl(EncodingId encoding_id) : id(encoding_id) {
    const auto blob = id == EncodingId::cl100k_base ? detail::cl100k_ranks_blob() : detail::o200k_ranks_blob();
    if (blob.size() < 8 || std::memcmp(blob.data(), "FGRK", 4) != 0) {
      throw Error("tokenizer data for " + std::string(encoding_name(id)) + " is corrupt", exit_code::internal);
    }
    count = read_u32(blob.data() + 4);
    const std::uint8_t* ranks = blob.data() + 8;
    const std::uint8_t* offs = ranks + 4 * std::size_t{count};
    offsets.resize(std::size_t{count} + 1);
    std::memcpy(offsets.data(), offs, 4 * (std::size_t{count} + 1));
    token_bytes = offs + 4 * (std::size_t{count} + 1);
    for (std::uint32_t i = 0; i < count; ++i) {
      if (read_u32(ranks + 4 * std::size_t{i}) != i) {
        throw Error("tokenizer data for " + std::string(encoding_name(id)) + " has non-contiguous ranks",
                    exit_code::internal);
      }
    }
    map.build(token_bytes, offsets.data(), count);
    for (int b = 0; b < 256; ++b) {
      const auto byte = static_cast<std::uint8_t>(b);
      byte_rank[static_cast<std::size_t>(b)] = map.find(&byte, 1);
    }
    if (id == EncodingId::cl100k_base) {
      specials = {{"<|endoftext|>", 100257}, {"<|fim_prefix|>", 100258}, {"<|fim_middle|>", 100259},
                  {"<|fim_suffix|>", 100260}, {"<|endofprompt|>", 100276}};
    } else {
      specials = {{"<|endoftext|>", 199999}, {"<|endofprompt|>", 200018}};
    }
  }

  [[nodiscard]] Rank rank_of(const std::uint8_t* p, std::size_t n) const noexcept { return map.find(p, n); }

  template <class Out>
  void merge_small(const std::uint8_t* piece, std::size_t n, Out& out) const {
    struct Part {
      std::uint32_t start;
      Rank pair_rank;  // rank of this part joined with the next one
      Rank token;      // rank of this part itself
    };
    std::array<Part, kSmallPiece + 1> parts;
    std::size_t m = n + 1;  // parts[n] is the end sentinel
    for (std::size_t i = 0; i < n; ++i) {
      parts[i] = Part{static_cast<std::uint32_t>(i), i + 1 < n ? rank_of(piece + i, 2) : kNoRank, byte_rank[piece[i]]};
    }
    parts[n] = Part{static_cast<std::uint32_t>(n), kNoRank, kNoRank};
    auto pair_rank = [&](std::size_t i) -> Rank {
      if (i + 2 >= m) return kNoRank;  // parts i and i + 1, which ends where i + 2 starts
      return rank_of(piece + parts[i].start, parts[i + 2].start - parts[i].start);
    };
    for (;;) {
      Rank best = kNoRank;
      std::size_t at = 0;
      for (std::size_t i = 0; i + 2 < m; ++i) {
        if (parts[i].pair_rank < best) {
          best = parts[i].pair_rank;
          at = i;
        }
      }
      if (best == kNoRank) break;
      parts[at].token = best;
      std::memmove(&parts[at + 1], &parts[at + 2], (m - at - 2) * sizeof(Part));
      --m;
      parts[at].pair_rank = pair_rank(at);
      if (at > 0) parts[at - 1].pair_rank = pair_rank(at - 1);
    }
    for (std::size_t i = 0; i + 1 < m; ++i) out(parts[i].token);
  }

  template <class Out>
  void merge_large(const std::uint8_t* piece, std::size_t n, Out& out) const {
    // Parts are named by their first byte; next[i] is the start of the following part.
    // The buffers are per thread and reused, so mid-sized pieces cost no allocation.
    struct Item {
      Rank rank;
      std::uint32_t pos;
      bool operator>(const Item& o) const noexcept { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    struct Buffers {
      std::vector<std::uint32_t> next, prev;
      std::vector<Rank> pair, token;
      std::vector<Item> heap;
    };
    thread_local Buffers buf;
    auto& next = buf.next;
    auto& prev = buf.prev;
    auto& pair = buf.pair;
    auto& token = buf.token;
    auto& heap = buf.heap;
    next.resize(n);
    prev.resize(n);
    token.resize(n);
    pair.assign(n, kNoRank);
    heap.clear();
    for (std::size_t i = 0; i < n; ++i) {
      next[i] = static_cast<std::uint32_t>(i + 1);
      prev[i] = static_cast<std::uint32_t>(i == 0 ? kNoRank : i - 1);
      token[i] = byte_rank[piece[i]];
      if (i + 1 < n) {
        pair[i] = rank_of(piece + i, 2);
        if (pair[i] != kNoRank) heap.push_back({pair[i], static_cast<std::uint32_t>(i)});
      }
    }
    std::make_heap(heap.begin(), heap.end(), std::greater<>());
    const std::size_t max_len = map.max_len();
    auto compute = [&](std::uint32_t i) -> Rank {
      const std::uint32_t j = next[i];
      if (j >= n) return kNoRank;
      const std::uint32_t k = next[j];
      if (k - i > max_len) return kNoRank;
      return rank_of(piece + i, k - i);
    };
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), std::greater<>());
      const Item it = heap.back();
      heap.pop_back();
      const std::uint32_t i = it.pos;
      if (pair[i] != it.rank) continue;  // stale: the part changed or was absorbed
      const std::uint32_t j = next[i];
      token[i] = it.rank;
      pair[j] = kNoRank;
      next[i] = next[j];
      if (next[i] < n) prev[next[i]] = i;
      pair[i] = compute(i);
      if (pair[i] != kNoRank) {
        heap.push_back({pair[i], i});
        std::push_heap(heap.begin(), heap.end(), std::greater<>());
      }
      if (prev[i] != kNoRank) {
        const std::uint32_t p = prev[i];
        pair[p] = compute(p);
        if (pair[p] != kNoRank) {
          heap.push_back({pair[p], p});
          std::push_heap(heap.begin(), heap.end(), std::greater<>());
        }
      }
    }
    for (std::uint32_t i = 0; i < n; i = next[i]) out(token[i]);
  }

  // Recently merged short pieces and their ids, per thread and encoding: natural text
  // repeats its words, and a hit skips the whole merge. Direct-mapped by the piece's
  // hash; a hit compares the bytes, so it is exact.
  struct CacheEntry {
    std::uint8_t len = 0;  // 0: empty
    std::uint8_t count = 0;
    std::array<std::uint8_t, kCachedPieceBytes> bytes{};
    std::array<Rank, kCachedPieceIds> ids{};
  };
  struct PieceCache {
    std::vector<CacheEntry> entries = std::vector<CacheEntry>(kCacheEntries);
  };

  template <class Out>
  void encode_piece(const std::uint8_t* piece, std::size_t n, Out& out) const {
    if (n == 1) {
      out(byte_rank[piece[0]]);
      return;
    }
    if (n == 2 || n > map.max_len()) {
      if (const Rank r = rank_of(piece, n); r != kNoRank) {
        out(r);
        return;
      }
    } else {
      const std::uint64_t h = detail::hash_bytes(piece, n);
      if (const Rank r = map.find_hashed(piece, n, h); r != kNoRank) {
        out(r);
        return;
      }
      if (n <= kCachedPieceBytes) {
        thread_local PieceCache caches[2];
        CacheEntry& e = caches[id == EncodingId::cl100k_base ? 0 : 1].entries[(h >> 20) & (kCacheEntries - 1)];
        if (e.len == n && std::memcmp(e.bytes.data(), piece, n) == 0) {
          for (std::size_t i = 0; i < e.count; ++i) out(e.ids[i]);
          return;
        }
        std::array<Rank, kCachedPieceIds> ids;
        std::size_t n_ids = 0;
        bool fits = true;
        auto record = [&](Rank r) {
          out(r);
          if (n_ids < kCachedPieceIds) {
            ids[n_ids++] = r;
          } else {
            fits = false;
          }
        };
        merge_small(piece, n, record);
        if (fits) {
          e.len = static_cast<std::uint8_t>(n);
          e.count = static_cast<std::uint8_t>(n_ids);
          std::memcpy(e.bytes.data(), piece, n);
          e.ids = ids;
        }
        return;
      }
    }
    if (n <= kSmallPiece) {
      merge_small(piece, n, out);
    } else {
      merge_large(piece, n, out);
    }
  }

  template <class Out>
  void encode_ordinary(std::string_view text, Out& out) const {
    const auto* p = reinterpret_cast<const std::uint8_t*>(text.data());
    const auto* end = p + text.size();
    const auto& t = detail::unicode_table();
    if (id == EncodingId::cl100k_base) {
      while (p < end) {
        const std::uint8_t* q = detail::scan_cl100k(p, end, t);
        encode_piece(p, static_cast<std::size_t>(q - p), out);
        p = q;
      }
    } else {
      while (p < end) {
        const std::uint8_t* q = detail::scan_o200k(p, end, t);
        encode_piece(p, static_cast<std::size_t>(q - p), out);
        p = q;
      }
    }
  }
};

std::string_view encoding_name(EncodingId id) noexcept {
  switch (id) {
    case EncodingId::cl100k_base: return "cl100k_base";
    case EncodingId::o200k_base: return "o200k_base";
  }
  return "unknown";
}

std::optional<EncodingId> encoding_from_name(std::string_view name) noexcept {
  if (name == "cl100k_base") return EncodingId::cl100k_base;
  if (name == "o200k_base") return EncodingId::o200k_base;
  return std::nullopt;
}

Encoding::Encoding(EncodingId id, std::unique_ptr<Impl> impl) : id_(id), impl_(std::move(impl)) {}
Encoding::~Encoding() = default;

const Encoding& Encoding::get(EncodingId id) {
  if (id == EncodingId::cl100k_base) {
    static const Encoding cl100k(id, std::make_unique<Impl>(id));
    return cl100k;
  }
  static const Encoding o200k(id, std::make_unique<Impl>(id));
  return o200k;
}

void Encoding::encode_into(std::string_view text, std::vector<Rank>& out) const {
  auto push = [&out](Rank r) { out.push_back(r); };
  impl_->encode_ordinary(text, push);
}

std::vector<Rank> Encoding::encode(std::string_view text) const {
  std::vector<Rank> out;
  out.reserve(text.size() / 4 + 4);
  encode_into(text, out);
  return out;
}

std::vector<Rank> Encoding::encode_with_special(std::string_view text) const {
  std::vector<Rank> out;
  out.reserve(text.size() / 4 + 4);
  std::size_t pos = 0;
  while (pos < text.size()) {
    // The earliest special token at or after pos (longest on a tie).
    std::size_t best_at = std::string_view::npos;
    const std::pair<std::string, Rank>* best = nullptr;
    for (const auto& s : impl_->specials) {
      const std::size_t at = text.find(s.first, pos);
      if (at == std::string_view::npos) continue;
      if (at < best_at || (at == best_at && s.first.size() > best->first.size())) {
        best_at = at;
        best = &s;
      }
    }
    if (best == nullptr) {
      encode_into(text.substr(pos), out);
      break;
    }
    encode_into(text.substr(pos, best_at - pos), out);
    out.push_back(best->second);
    pos = best_at + best->first.size();
  }
  return out;
}

std::size_t Encoding::count(std::string_view text) const {
  std::size_t n = 0;
  auto counter = [&n](Rank) { ++n; };
  impl_->encode_ordinary(text, counter);
  return n;
}

std::vector<std::size_t> Encoding::safe_split_points(std::string_view text, std::size_t parts) {
  // A cut between "\n" and an ASCII letter never splits a piece in either encoding: no
  // alternative lets a piece continue past a newline into a letter (\r\n may only end a
  // piece or sit inside a whitespace run), and matching resumes at the cut with no
  // look-behind. See tests/tokens/split_test.cpp.
  std::vector<std::size_t> cuts;
  if (parts < 2 || text.size() < 2) return cuts;
  const std::size_t step = text.size() / parts;
  std::size_t from = step;
  while (cuts.size() + 1 < parts && from < text.size()) {
    std::size_t at = std::string_view::npos;
    for (std::size_t i = text.find('\n', from - 1); i != std::string_view::npos && i + 1 < text.size();
         i = text.find('\n', i + 1)) {
      const char c = text[i + 1];
      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        at = i + 1;
        break;
      }
    }
    if (at == std::string_view::npos) break;
    if (cuts.empty() || at > cuts.back()) cuts.push_back(at);
    from = std::max(at + 1, (cuts.size() + 1) * step);
  }
  return cuts;
}

std::size_t Encoding::count_parallel(std::string_view text, unsigned threads) const {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  constexpr std::size_t kMinPart = 1 << 18;
  const std::size_t parts = std::min<std::size_t>(threads, text.size() / kMinPart + 1);
  const auto cuts = safe_split_points(text, parts);
  if (cuts.empty()) return count(text);
  std::vector<std::size_t> bounds{0};
  bounds.insert(bounds.end(), cuts.begin(), cuts.end());
  bounds.push_back(text.size());
  std::vector<std::size_t> counts(bounds.size() - 1, 0);
  std::vector<std::thread> workers;
  for (std::size_t k = 1; k < counts.size(); ++k) {
    workers.emplace_back([&, k] { counts[k] = count(text.substr(bounds[k], bounds[k + 1] - bounds[k])); });
  }
  counts[0] = count(text.substr(0, bounds[1]));
  for (auto& w : workers) w.join();
  std::size_t total = 0;
  for (const std::size_t c : counts) total += c;
  return total;
}

std::string_view Encoding::token_bytes(Rank id) const noexcept {
  if (id < impl_->count) {
    const auto* b = impl_->token_bytes + impl_->offsets[id];
    return {reinterpret_cast<const char*>(b), impl_->offsets[id + 1] - impl_->offsets[id]};
  }
  for (const auto& s : impl_->specials) {
    if (s.second == id) return s.first;
  }
  return {};
}

std::string Encoding::decode(std::span<const Rank> ids) const {
  std::string out;
  out.reserve(ids.size() * 4);
  for (const Rank id : ids) {
    const std::string_view b = token_bytes(id);
    if (b.empty()) {
      throw Error("token id " + std::to_string(id) + " is not in " + std::string(name()));
    }
    out.append(b);
  }
  return out;
}

std::optional<Rank> Encoding::special_token(std::string_view text) const noexcept {
  for (const auto& s : impl_->specials) {
    if (s.first == text) return s.second;
  }
  return std::nullopt;
}

Rank Encoding::vocabulary_size() const noexcept {
  Rank n = impl_->count;
  for (const auto& s : impl_->specials) n = std::max(n, s.second + 1);
  return n;
}

}  // namespace floodgate::tokens
