// `floodgate tokens count|encode|decode`: the tokenizer from the command line.
//   count  [--model M | --encoding E] [--threads N] [FILE|-]  -> the number of tokens
//   encode [--model M | --encoding E] [--special] [FILE|-]    -> ids as a JSON array
//   decode [--model M | --encoding E] [FILE|-]                -> the bytes of a JSON array of ids
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "floodgate/core/error.hpp"
#include "floodgate/tokens/encoding.hpp"
#include "floodgate/tokens/model_map.hpp"

namespace floodgate::cli {
namespace {

struct TokensFlags {
  std::string model;
  std::string encoding;
  std::string input = "-";
  bool special = false;
  unsigned threads = 0;
};

std::string read_all(const std::string& path) {
  if (path == "-") {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    return std::move(ss).str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open '" + path + "'");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

const tokens::Encoding& pick_encoding(const TokensFlags& f) {
  if (!f.encoding.empty()) {
    const auto id = tokens::encoding_from_name(f.encoding);
    if (!id) throw Error("unknown encoding '" + f.encoding + "' (known: cl100k_base, o200k_base)");
    return tokens::Encoding::get(*id);
  }
  if (!f.model.empty()) {
    const auto id = tokens::builtin_encoding_for_model(f.model);
    if (!id) {
      throw Error("no known encoding for model '" + f.model + "'; pass --encoding cl100k_base or o200k_base");
    }
    return tokens::Encoding::get(*id);
  }
  return tokens::Encoding::get(tokens::EncodingId::o200k_base);
}

void write_out(std::string_view s) { std::fwrite(s.data(), 1, s.size(), stdout); }

// Reads "[1, 2, 3]" (whitespace and a trailing newline allowed).
std::vector<tokens::Rank> parse_ids(std::string_view s) {
  std::vector<tokens::Rank> ids;
  std::size_t i = 0;
  auto skip = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) ++i;
  };
  skip();
  if (i >= s.size() || s[i] != '[') throw Error("decode expects a JSON array of token ids, e.g. [9906, 1917]");
  ++i;
  skip();
  if (i < s.size() && s[i] == ']') return ids;
  for (;;) {
    skip();
    std::uint64_t v = 0;
    const std::size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9' && v <= 0xFFFFFFFFull) v = v * 10 + static_cast<std::uint64_t>(s[i++] - '0');
    if (i == start || v > 0xFFFFFFFFull) throw Error("decode: token ids must be non-negative integers");
    ids.push_back(static_cast<tokens::Rank>(v));
    skip();
    if (i < s.size() && s[i] == ',') {
      ++i;
      continue;
    }
    if (i < s.size() && s[i] == ']') break;
    throw Error("decode expects a JSON array of token ids, e.g. [9906, 1917]");
  }
  ++i;
  skip();
  if (i != s.size()) throw Error("decode: unexpected text after the array of ids");
  return ids;
}

void add_common(CLI::App* cmd, TokensFlags& f) {
  auto* model = cmd->add_option("--model,-m", f.model, "pick the encoding of this model (e.g. gpt-4o, gpt-4)");
  cmd->add_option("--encoding,-e", f.encoding, "cl100k_base or o200k_base (default o200k_base)")->excludes(model);
  cmd->add_option("input", f.input, "file to read, '-' for stdin")->capture_default_str();
}

}  // namespace

void register_tokens(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<TokensFlags>();
  auto* cmd = app.add_subcommand("tokens", "Count, encode or decode model tokens (tiktoken-exact, offline)");
  cmd->require_subcommand(1);

  auto* count = cmd->add_subcommand("count", "Print the number of tokens of a text");
  add_common(count, *flags);
  count->add_option("--threads", flags->threads, "threads for large inputs (0: all cores)")->capture_default_str();
  count->callback([flags, &exit_code] {
    const auto text = read_all(flags->input);
    const auto& enc = pick_encoding(*flags);
    std::printf("%zu\n", enc.count_parallel(text, flags->threads));
    exit_code = 0;
  });

  auto* encode = cmd->add_subcommand("encode", "Print the token ids of a text as a JSON array");
  add_common(encode, *flags);
  encode->add_flag("--special", flags->special, "recognise special tokens such as <|endoftext|>");
  encode->callback([flags, &exit_code] {
    const auto text = read_all(flags->input);
    const auto& enc = pick_encoding(*flags);
    const auto ids = flags->special ? enc.encode_with_special(text) : enc.encode(text);
    std::string out = "[";
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (i) out += ',';
      out += std::to_string(ids[i]);
    }
    out += "]\n";
    write_out(out);
    exit_code = 0;
  });

  auto* decode = cmd->add_subcommand("decode", "Print the text of a JSON array of token ids");
  add_common(decode, *flags);
  decode->callback([flags, &exit_code] {
    const auto ids = parse_ids(read_all(flags->input));
    write_out(pick_encoding(*flags).decode(ids));
    exit_code = 0;
  });
}

}  // namespace floodgate::cli
