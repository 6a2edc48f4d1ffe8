#pragma once
// Pre-tokenization: tiktoken's regexes, written by hand.
//
// cl100k_base:  '(?i:[sdmt]|ll|ve|re) | [^\r\n\p{L}\p{N}]?+\p{L}+ | \p{N}{1,3}
//               | ?[^\s\p{L}\p{N}]++[\r\n]* | \s*[\r\n] | \s+(?!\S) | \s+
// o200k_base:   [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//             | [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//             | \p{N}{1,3} | ?[^\s\p{L}\p{N}]+[\r\n/]* | \s*[\r\n]+ | \s+(?!\S) | \s+
//
// Each scan_* function returns where the match starting at `p` ends, trying the
// alternatives in order with the regex's backtracking order (leftmost-first, greedy),
// so the pieces are exactly the regex's matches. The classes come from Unicode 16 (the
// regex crate's version in tiktoken): \s is White_Space, \p{L} is Lu|Ll|Lt|Lm|Lo.
// (?i) uses simple case folding, so 's also matches U+017F LATIN SMALL LETTER LONG S.
// A byte that is not part of valid UTF-8 is a one-byte character of no class (like
// punctuation).

#include <cstddef>
#include <cstdint>

namespace floodgate::tokens::detail {

enum CharClass : std::uint8_t {
  kLetter = 1,     // \p{L}
  kNumber = 2,     // \p{N}
  kSpace = 4,      // \s (White_Space)
  kUpperish = 8,   // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
  kLowerish = 16,  // [\p{Ll}\p{Lm}\p{Lo}\p{M}]
  kMark = 32,      // \p{M}
  kNewline = 64,   // \r or \n
};

struct UnicodeTable {
  const std::uint16_t* stage1 = nullptr;  // 0x1100 block numbers
  const std::uint8_t* blocks = nullptr;   // 256 classes per block
};
[[nodiscard]] const UnicodeTable& unicode_table() noexcept;

struct Char {
  std::uint8_t cls;
  std::uint8_t len;
};

inline constexpr auto kAsciiClasses = [] {
  struct Table {
    std::uint8_t v[128];
  } t{};
  for (int c = 'A'; c <= 'Z'; ++c) t.v[c] = kLetter | kUpperish;
  for (int c = 'a'; c <= 'z'; ++c) t.v[c] = kLetter | kLowerish;
  for (int c = '0'; c <= '9'; ++c) t.v[c] = kNumber;
  for (int c : {'\t', '\v', '\f', ' '}) t.v[c] = kSpace;
  t.v[int{'\n'}] = kSpace | kNewline;
  t.v[int{'\r'}] = kSpace | kNewline;
  return t;
}();

// The class and byte length of the character at p (p < end).
inline Char char_at(const std::uint8_t* p, const std::uint8_t* end, const UnicodeTable& t) noexcept {
  const std::uint8_t b = p[0];
  if (b < 0x80) return {kAsciiClasses.v[b], 1};
  const auto avail = end - p;
  auto cont = [](std::uint8_t x) { return (x & 0xC0) == 0x80; };
  std::uint32_t cp = 0;
  std::uint8_t len = 0;
  if (b >= 0xC2 && b <= 0xDF) {
    if (avail < 2 || !cont(p[1])) return {0, 1};
    cp = (std::uint32_t{b} & 0x1Fu) << 6 | (p[1] & 0x3Fu);
    len = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    if (avail < 3 || !cont(p[1]) || !cont(p[2])) return {0, 1};
    if (b == 0xE0 && p[1] < 0xA0) return {0, 1};
    if (b == 0xED && p[1] > 0x9F) return {0, 1};
    cp = (std::uint32_t{b} & 0x0Fu) << 12 | (p[1] & 0x3Fu) << 6 | (p[2] & 0x3Fu);
    len = 3;
  } else if (b >= 0xF0 && b <= 0xF4) {
    if (avail < 4 || !cont(p[1]) || !cont(p[2]) || !cont(p[3])) return {0, 1};
    if (b == 0xF0 && p[1] < 0x90) return {0, 1};
    if (b == 0xF4 && p[1] > 0x8F) return {0, 1};
    cp = (std::uint32_t{b} & 0x07u) << 18 | (p[1] & 0x3Fu) << 12 | (p[2] & 0x3Fu) << 6 | (p[3] & 0x3Fu);
    len = 4;
  } else {
    return {0, 1};
  }
  return {t.blocks[std::size_t{t.stage1[cp >> 8]} * 256 + (cp & 0xFF)], len};
}

inline bool is_other(std::uint8_t cls) noexcept { return (cls & (kLetter | kNumber | kSpace)) == 0; }

inline std::uint8_t ascii_lower(std::uint8_t x) noexcept {
  return (x >= 'A' && x <= 'Z') ? static_cast<std::uint8_t>(x | 0x20) : x;
}

// Length of (?i:'s|'t|'re|'ve|'m|'ll|'d) at p, 0 when there is none.
inline std::size_t contraction_at(const std::uint8_t* p, const std::uint8_t* end) noexcept {
  if (end - p < 2 || p[0] != '\'') return 0;
  const std::uint8_t c = ascii_lower(p[1]);
  if (c == 's' || c == 't' || c == 'm' || c == 'd') return 2;
  if (end - p < 3) return 0;
  if (p[1] == 0xC5 && p[2] == 0xBF) return 3;  // U+017F folds to 's'
  const std::uint8_t c2 = ascii_lower(p[2]);
  if ((c == 'l' && c2 == 'l') || (c == 'v' && c2 == 'e') || (c == 'r' && c2 == 'e')) return 3;
  return 0;
}

// Whitespace alternatives shared by both encodings: \s*[\r\n]+ | \s+(?!\S) | \s+
// (p starts a White_Space character).
inline const std::uint8_t* scan_space(const std::uint8_t* p, const std::uint8_t* end,
                                      const UnicodeTable& t) noexcept {
  const std::uint8_t* q = p;
  const std::uint8_t* last_newline_end = nullptr;
  const std::uint8_t* last_start = p;
  while (q < end) {
    const Char c = char_at(q, end, t);
    if (!(c.cls & kSpace)) break;
    if (c.cls & kNewline) last_newline_end = q + 1;
    last_start = q;
    q += c.len;
  }
  if (last_newline_end != nullptr) return last_newline_end;
  if (q == end) return q;
  if (last_start > p) return last_start;
  return q;
}

// ` ?[^\s\p{L}\p{N}]+` followed by newline-ish bytes; nullptr when it does not match.
template <bool kSlashToo>
inline const std::uint8_t* scan_punct(const std::uint8_t* p, const std::uint8_t* end, Char c0,
                                      const UnicodeTable& t) noexcept {
  const std::uint8_t* q = p;
  if (*p == ' ' && p + 1 < end) {
    const Char c1 = char_at(p + 1, end, t);
    if (is_other(c1.cls)) q = p + 1;
  }
  if (q == p && !is_other(c0.cls)) return nullptr;
  while (q < end) {
    const Char c = char_at(q, end, t);
    if (!is_other(c.cls)) break;
    q += c.len;
  }
  while (q < end && (*q == '\r' || *q == '\n' || (kSlashToo && *q == '/'))) ++q;
  return q;
}

inline const std::uint8_t* scan_digits(const std::uint8_t* p, const std::uint8_t* end, Char c0,
                                       const UnicodeTable& t) noexcept {
  const std::uint8_t* q = p + c0.len;
  for (int k = 0; k < 2 && q < end; ++k) {
    const Char c = char_at(q, end, t);
    if (!(c.cls & kNumber)) break;
    q += c.len;
  }
  return q;
}

inline const std::uint8_t* scan_cl100k(const std::uint8_t* p, const std::uint8_t* end,
                                       const UnicodeTable& t) noexcept {
  if (*p == '\'') {
    if (const std::size_t n = contraction_at(p, end)) return p + n;
  }
  const Char c0 = char_at(p, end, t);
  auto letters = [&](const std::uint8_t* q) {
    while (q < end) {
      const Char c = char_at(q, end, t);
      if (!(c.cls & kLetter)) break;
      q += c.len;
    }
    return q;
  };
  if (c0.cls & kLetter) return letters(p + c0.len);
  if (!(c0.cls & (kNumber | kNewline)) && p + c0.len < end) {
    const Char c1 = char_at(p + c0.len, end, t);
    if (c1.cls & kLetter) return letters(p + c0.len + c1.len);
  }
  if (c0.cls & kNumber) return scan_digits(p, end, c0, t);
  if (const std::uint8_t* q = scan_punct<false>(p, end, c0, t)) return q;
  return scan_space(p, end, t);
}

// [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+ then the optional contraction.
inline const std::uint8_t* o200k_lower_word(const std::uint8_t* q, const std::uint8_t* end,
                                            const UnicodeTable& t) noexcept {
  const std::uint8_t* r = q;
  const std::uint8_t* last_lower_end = nullptr;
  while (r < end) {
    const Char c = char_at(r, end, t);
    if (!(c.cls & kUpperish)) break;
    r += c.len;
    if (c.cls & kLowerish) last_lower_end = r;
  }
  if (r < end) {
    Char c = char_at(r, end, t);
    if (c.cls & kLowerish) {
      r += c.len;
      while (r < end) {
        c = char_at(r, end, t);
        if (!(c.cls & kLowerish)) break;
        r += c.len;
      }
      return r + contraction_at(r, end);
    }
  }
  if (last_lower_end != nullptr) return last_lower_end + contraction_at(last_lower_end, end);
  return nullptr;
}

// [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]* then the optional contraction.
inline const std::uint8_t* o200k_upper_word(const std::uint8_t* q, const std::uint8_t* end,
                                            const UnicodeTable& t) noexcept {
  const std::uint8_t* r = q;
  while (r < end) {
    const Char c = char_at(r, end, t);
    if (!(c.cls & kUpperish)) break;
    r += c.len;
  }
  if (r == q) return nullptr;
  while (r < end) {
    const Char c = char_at(r, end, t);
    if (!(c.cls & kLowerish)) break;
    r += c.len;
  }
  return r + contraction_at(r, end);
}

inline const std::uint8_t* scan_o200k(const std::uint8_t* p, const std::uint8_t* end,
                                      const UnicodeTable& t) noexcept {
  const Char c0 = char_at(p, end, t);
  const bool prefixable = !(c0.cls & (kLetter | kNumber | kNewline));
  const std::uint8_t* after_prefix = p + c0.len;
  const bool has_after = after_prefix < end;
  if (prefixable && has_after) {
    if (const std::uint8_t* r = o200k_lower_word(after_prefix, end, t)) return r;
  }
  if (c0.cls & (kUpperish | kLowerish)) {
    if (const std::uint8_t* r = o200k_lower_word(p, end, t)) return r;
  }
  if (prefixable && has_after) {
    if (const std::uint8_t* r = o200k_upper_word(after_prefix, end, t)) return r;
  }
  if (c0.cls & kUpperish) {
    if (const std::uint8_t* r = o200k_upper_word(p, end, t)) return r;
  }
  if (c0.cls & kNumber) return scan_digits(p, end, c0, t);
  if (const std::uint8_t* q = scan_punct<true>(p, end, c0, t)) return q;
  return scan_space(p, end, t);
}

}  // namespace floodgate::tokens::detail
