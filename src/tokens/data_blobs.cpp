// Embeds the generated blobs with the assembler's .incbin: the 4 MB of rank data costs no
// compile time (a C++ initializer list of that size takes minutes). FG_TOKENS_DATA_DIR is
// the build tree's tokens-data/ folder, filled by scripts/fetch-tokenizer-data.

#include "tokens/data_blobs.hpp"

#ifndef FG_TOKENS_DATA_DIR
#error "FG_TOKENS_DATA_DIR must name the folder holding the generated blobs"
#endif

#define FG_INCBIN(sym, file)                                   \
  asm(".section .rodata\n"                                     \
      ".balign 16\n"                                           \
      ".global " #sym "_begin\n"                               \
      ".hidden " #sym "_begin\n" #sym "_begin:\n"              \
      ".incbin \"" FG_TOKENS_DATA_DIR "/" file "\"\n"          \
      ".global " #sym "_end\n"                                 \
      ".hidden " #sym "_end\n" #sym "_end:\n"                  \
      ".byte 0\n"                                              \
      ".previous\n")

FG_INCBIN(floodgate_tokens_cl100k, "cl100k_base.bin");
FG_INCBIN(floodgate_tokens_o200k, "o200k_base.bin");
FG_INCBIN(floodgate_tokens_unicode, "unicode_classes.bin");

extern "C" {
extern const std::uint8_t floodgate_tokens_cl100k_begin[];
extern const std::uint8_t floodgate_tokens_cl100k_end[];
extern const std::uint8_t floodgate_tokens_o200k_begin[];
extern const std::uint8_t floodgate_tokens_o200k_end[];
extern const std::uint8_t floodgate_tokens_unicode_begin[];
extern const std::uint8_t floodgate_tokens_unicode_end[];
}

namespace floodgate::tokens::detail {

// Changes with the generator, so ccache never reuses an object built from older blobs.
[[maybe_unused]] constexpr const char* kDataVersion = FG_TOKENS_DATA_VERSION;

std::span<const std::uint8_t> cl100k_ranks_blob() noexcept {
  return {floodgate_tokens_cl100k_begin, floodgate_tokens_cl100k_end};
}
std::span<const std::uint8_t> o200k_ranks_blob() noexcept {
  return {floodgate_tokens_o200k_begin, floodgate_tokens_o200k_end};
}
std::span<const std::uint8_t> unicode_classes_blob() noexcept {
  return {floodgate_tokens_unicode_begin, floodgate_tokens_unicode_end};
}

}  // namespace floodgate::tokens::detail
