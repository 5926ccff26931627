// Pre-tokenizers: cut a normalized segment into pieces that the BPE model encodes independently
// (HF `pre_tokenizer` section). Each piece remembers whether it starts the original input, which
// Metaspace's prepend_scheme "first" needs. Pieces are handed to a sink one at a time, so a long
// input never materialises as a vector of strings.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tokenizer/normalizers.h"

namespace lattice::tokenizer {

struct Piece {
  std::string text;
  bool at_input_start = false;
};

// How the matched parts of a split relate to the parts between them (HF SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// A non-owning callback taking each produced piece (which it may move from).
class PieceSink {
 public:
  template <typename F>
  PieceSink(F& callable)  // NOLINT(google-explicit-constructor): used like a function_ref
      : object_(&callable), call_([](void* object, Piece& piece) { (*static_cast<F*>(object))(piece); }) {}
  void operator()(Piece& piece) const { call_(object_, piece); }

 private:
  void* object_;
  void (*call_)(void*, Piece&);
};

// Cuts `piece` at `matches` (sorted, non-overlapping byte ranges) and passes the non-empty parts
// to `sink`. With `invert`, the ranges between matches are the delimiters instead.
void split_piece(const Piece& piece, const std::vector<std::pair<size_t, size_t>>& matches, SplitBehavior behavior,
                 bool invert, const PieceSink& sink);

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Passes the sub-pieces of `piece` to `sink`, in order. `piece` may be modified.
  virtual void pre_tokenize(Piece& piece, const PieceSink& sink) const = 0;
};

// GPT-2 byte-level: optional leading space, optional GPT-2 regex split, then bytes -> alphabet.
class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex);
  void pre_tokenize(Piece& piece, const PieceSink& sink) const override;

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;  // null when use_regex is false
};

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(Piece& piece, const PieceSink& sink) const override;

 private:
  Pattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

// SentencePiece-style: spaces become `replacement`, which is prepended per `scheme`; optionally
// splits before each replacement character.
class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void pre_tokenize(Piece& piece, const PieceSink& sink) const override;

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

// Splits numeric characters (Unicode Nd/Nl/No) off, one by one or as runs.
class DigitsPreTokenizer final : public PreTokenizer {
 public:
  explicit DigitsPreTokenizer(bool individual_digits) : individual_digits_(individual_digits) {}
  void pre_tokenize(Piece& piece, const PieceSink& sink) const override;

 private:
  bool individual_digits_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void pre_tokenize(Piece& piece, const PieceSink& sink) const override { run(0, piece, sink); }

 private:
  void run(size_t step, Piece& piece, const PieceSink& sink) const;
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

}  // namespace lattice::tokenizer
