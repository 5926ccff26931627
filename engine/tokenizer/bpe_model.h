// Byte-pair-encoding model (HF `model` section with type "BPE"): vocab, ranked merges, optional
// byte fallback and unknown-token handling, and a cache from piece to ids.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace lattice::tokenizer {

// Heterogeneous hashing so std::string-keyed maps can be probed with a string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};
using TokenIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct BpeOptions {
  std::optional<std::string> unk_token;
  std::string continuing_subword_prefix;
  std::string end_of_word_suffix;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

// Open-addressing map from a (left id, right id) pair to its merge; the hot lookup of BPE.
class MergeTable {
 public:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  void reserve(size_t count);
  // Inserts or overwrites.
  void set(int32_t left, int32_t right, Merge merge);
  const Merge* find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = pack(left, right);
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.key == key) return &slot.merge;
      if (slot.key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }
  template <typename F>
  void for_each(F&& visit) const {  // visit(left, right) for every entry
    for (const Slot& slot : slots_) {
      if (slot.key != kEmpty) visit(static_cast<int32_t>(slot.key >> 32), static_cast<int32_t>(slot.key & 0xFFFFFFFFu));
    }
  }

 private:
  struct Slot {
    uint64_t key;
    Merge merge;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t pack(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  static size_t hash(uint64_t key) {  // splitmix64 finaliser
    key ^= key >> 30;
    key *= 0xbf58476d1ce4e5b9ULL;
    key ^= key >> 27;
    key *= 0x94d049bb133111ebULL;
    return static_cast<size_t>(key ^ (key >> 31));
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

class BpeModel {
 public:
  // Throws when a merge names a token (or produces a token) that is not in `vocab`, or when the
  // unknown token is missing from it.
  BpeModel(TokenIdMap vocab, const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options);

  // Appends the ids of one pre-tokenized piece.
  void tokenize(std::string_view piece, std::vector<int32_t>& out) const;
  // The same without the cache and without cutting long pieces into independent chunks: the
  // plain HF algorithm, kept as the reference the fast path is tested against.
  void tokenize_whole(std::string_view piece, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  const TokenIdMap& vocab() const { return vocab_; }
  size_t merge_count() const { return merges_.size(); }

 private:
  // Splits `piece` into per-character symbols, then applies merges lowest rank first.
  void encode_uncached(std::string_view piece, std::vector<int32_t>& out) const;
  // Cached BPE of a piece or of one chunk of a long piece (ignore_merges already handled).
  void encode_cached(std::string_view piece, std::vector<int32_t>& out) const;
  // Computes chunk_pairs_ / can_chunk_ (see below).
  void index_chunk_boundaries();

  TokenIdMap vocab_;
  MergeTable merges_;
  // Id of each single-code-point token below U+10000 (-1 if none), for the common case without
  // subword prefix/suffix: saves a string hash per character.
  std::vector<int32_t> char_ids_;
  // Long pieces (SentencePiece-style tokenizers have no pre-tokenizer, so a piece can be a whole
  // document) are cut between two characters that both are single-character tokens and never
  // appear next to each other inside any vocab token: no symbol can ever span such a boundary,
  // so BPE of the chunks equals BPE of the piece. chunk_pairs_ holds the adjacent code-point
  // pairs of all tokens. Disabled when merges involve byte-fallback or unknown tokens.
  bool can_chunk_ = false;
  MergeTable chunk_pairs_;  // used as a set of (code point, code point)
  BpeOptions options_;
  std::optional<int32_t> unk_id_;
  std::vector<int32_t> byte_fallback_ids_;  // id of "<0xNN>" per byte, or -1

  static constexpr size_t kCacheCapacity = 1 << 16;
  static constexpr size_t kMaxCachedPieceBytes = 64;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace lattice::tokenizer
