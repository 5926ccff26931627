// tokenizer_bench: encode speed of the fixture tokenizers on one core.
//
//   build-tok/tests/tokenizer/tokenizer_bench [--mb 1] [--repeats 5] [--only gpt2] [--data tests/data]
//
// The ~1 MB mixed-language input is built deterministically (seeded mt19937) from random
// substrings of the 184 texts in cases.jsonl (English, code, CJK, Arabic, emoji, ...), so piece
// boundaries vary and the BPE cache starts cold. Reports load time, the first (cold-cache)
// encode, the best of the repeats (warm cache) and decode speed.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "engine/tokenizer/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Character start offsets of `text` (plus its end), so cuts never split UTF-8.
std::vector<size_t> char_starts(const std::string& text) {
  std::vector<size_t> starts;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) starts.push_back(i);
  }
  starts.push_back(text.size());
  return starts;
}

std::string build_corpus(const std::string& cases_path, size_t target_bytes) {
  std::ifstream file(cases_path);
  if (!file) throw std::runtime_error("cannot open " + cases_path);
  std::vector<std::string> texts;
  std::string line;
  while (std::getline(file, line)) {
    const auto row = nlohmann::json::parse(line);
    std::string text = row["text"].get<std::string>();
    // Literal special-token texts would turn into single ids; keep the benchmark about BPE.
    if (!text.empty() && row["added_tokens_matched"].empty()) texts.push_back(std::move(text));
  }
  std::mt19937 rng(20261121);
  std::string corpus;
  corpus.reserve(target_bytes + 8192);
  while (corpus.size() < target_bytes) {
    const std::string& text = texts[rng() % texts.size()];
    const auto starts = char_starts(text);
    const size_t a = rng() % starts.size(), b = rng() % starts.size();
    corpus.append(text, starts[std::min(a, b)], starts[std::max(a, b)] - starts[std::min(a, b)]);
    corpus += (rng() % 4 == 0) ? "\n" : " ";
  }
  return corpus;
}

}  // namespace

int main(int argc, char** argv) {
  std::string data_dir = LATTICE_TEST_DATA_DIR;
  double megabytes = 1.0;
  int repeats = 5;
  std::string only;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--mb")) megabytes = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--repeats")) repeats = std::max(1, std::atoi(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--data")) data_dir = argv[i + 1];
    else if (!std::strcmp(argv[i], "--only")) only = argv[i + 1];
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  try {
    const std::string corpus =
        build_corpus(data_dir + "/tokenizers/gpt2/cases.jsonl", static_cast<size_t>(megabytes * 1024 * 1024));
    const double mb = static_cast<double>(corpus.size()) / (1024.0 * 1024.0);
    std::printf("input: %zu bytes (%.2f MiB) of mixed-language text, single thread\n", corpus.size(), mb);
    std::printf("%-8s %8s %8s %14s %14s %14s\n", "name", "load_s", "tokens", "cold_MiB/s", "warm_MiB/s", "decode_MiB/s");
    for (const char* name : {"gpt2", "qwen3", "mistral"}) {
      if (!only.empty() && only != name) continue;
      auto start = Clock::now();
      const lattice::Tokenizer tokenizer = lattice::Tokenizer::from_dir(data_dir + "/tokenizers/" + name);
      const double load_s = seconds_since(start);

      start = Clock::now();
      std::vector<int32_t> ids = tokenizer.encode(corpus, false);
      const double cold_s = seconds_since(start);
      double warm_s = 1e30;
      for (int r = 0; r < repeats; ++r) {
        start = Clock::now();
        ids = tokenizer.encode(corpus, false);
        warm_s = std::min(warm_s, seconds_since(start));
      }
      start = Clock::now();
      const std::string text = tokenizer.decode(ids);
      const double decode_s = seconds_since(start);
      std::printf("%-8s %8.3f %8zu %14.1f %14.1f %14.1f\n", name, load_s, ids.size(), mb / cold_s, mb / warm_s,
                  static_cast<double>(text.size()) / (1024.0 * 1024.0) / decode_s);
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "tokenizer_bench: %s\n", error.what());
    return 1;
  }
  return 0;
}
