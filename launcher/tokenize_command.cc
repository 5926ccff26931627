// lattice tokenize / detokenize: run a model directory's tokenizer.json from the command line.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/core/error.h"
#include "engine/tokenizer/tokenizer.h"
#include "launcher/cli_args.h"
#include "launcher/commands.h"

namespace lattice::launcher {
namespace {

std::string read_text_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  LATTICE_CHECK(file.good(), "cannot open --text-file ", path);
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

}  // namespace

int tokenize_command(const Args& argv, parallel::MpiRuntime*) {
  const CliArgs args(argv, {"help", "json", "no-special"});
  if (args.has("help")) {
    std::puts("usage: lattice tokenize --model DIR (--text TEXT | --text-file PATH) [--json] [--no-special]\n"
              "  prints the token ids, comma-separated; --json also prints the token strings\n"
              "  --no-special: do not add the post-processor's special tokens (e.g. <s>)");
    return 0;
  }
  const std::string model = args.require("model");
  const auto text_flag = args.maybe("text");
  const auto text_file = args.maybe("text-file");
  LATTICE_CHECK(text_flag.has_value() != text_file.has_value(), "give exactly one of --text and --text-file");
  const bool as_json = args.has("json");
  const bool add_special = !args.has("no-special");
  args.reject_unknown();

  const Tokenizer tokenizer = Tokenizer::from_dir(model);
  const std::string text = text_flag ? *text_flag : read_text_file(*text_file);
  const std::vector<int32_t> ids = tokenizer.encode(text, add_special);
  if (as_json) {
    nlohmann::json tokens = nlohmann::json::array();
    // Token strings are valid UTF-8 as stored in tokenizer.json.
    for (const int32_t id : ids) tokens.push_back(tokenizer.id_to_token(id));
    const nlohmann::json out = {{"ids", ids}, {"tokens", tokens}, {"count", ids.size()}};
    std::cout << out.dump() << "\n";
  } else {
    for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? "," : "") << ids[i];
    std::cout << "\n";
  }
  return 0;
}

int detokenize_command(const Args& argv, parallel::MpiRuntime*) {
  const CliArgs args(argv, {"help", "json", "skip-special"});
  if (args.has("help")) {
    std::puts("usage: lattice detokenize --model DIR --ids 1,2,3 [--skip-special] [--json]\n"
              "  prints the decoded text; --json prints {\"text\", \"chunks\"}, where chunks are what the\n"
              "  streaming detokenizer emits after each id (complete characters only)");
    return 0;
  }
  const std::string model = args.require("model");
  const std::vector<int32_t> ids = parse_int_list(args.require("ids"), "ids");
  const bool as_json = args.has("json");
  const bool skip_special = args.has("skip-special");
  args.reject_unknown();

  const Tokenizer tokenizer = Tokenizer::from_dir(model);
  const std::string text = tokenizer.decode(ids, skip_special);
  if (as_json) {
    IncrementalDetokenizer stream(tokenizer, skip_special);
    nlohmann::json chunks = nlohmann::json::array();
    for (const int32_t id : ids) chunks.push_back(stream.push(id));
    const std::string rest = stream.flush();
    if (!rest.empty()) chunks.push_back(rest);
    std::cout << nlohmann::json({{"text", text}, {"chunks", chunks}}).dump() << "\n";
  } else {
    std::cout << text << "\n";
  }
  return 0;
}

}  // namespace lattice::launcher
