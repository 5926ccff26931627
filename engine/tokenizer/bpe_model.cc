#include "engine/tokenizer/bpe_model.h"

#include <algorithm>
#include <cstdio>
#include <queue>

#include "engine/core/error.h"
#include "engine/tokenizer/utf8.h"

namespace lattice::tokenizer {
namespace {

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  uint32_t byte_length;  // 0 once merged into its left neighbour
};

struct QueuedMerge {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
};

// Lowest rank first; among equal ranks the leftmost position, as HF's BinaryHeap ordering does.
struct LaterMerge {
  bool operator()(const QueuedMerge& a, const QueuedMerge& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};

}  // namespace

void MergeTable::reserve(size_t count) {
  size_t capacity = 16;
  while (capacity < count * 2) capacity *= 2;
  slots_.assign(capacity, Slot{kEmpty, {0, 0}});
  mask_ = capacity - 1;
  size_ = 0;
}

void MergeTable::set(int32_t left, int32_t right, Merge merge) {
  if ((size_ + 1) * 2 > slots_.size()) {
    std::vector<Slot> old = std::move(slots_);
    reserve(std::max<size_t>(size_ + 1, old.size()));
    for (const Slot& slot : old) {
      if (slot.key != kEmpty) set(static_cast<int32_t>(slot.key >> 32), static_cast<int32_t>(slot.key & 0xFFFFFFFFu), slot.merge);
    }
  }
  const uint64_t key = pack(left, right);
  for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
    Slot& slot = slots_[i];
    if (slot.key == key) {
      slot.merge = merge;
      return;
    }
    if (slot.key == kEmpty) {
      slot = {key, merge};
      ++size_;
      return;
    }
  }
}

BpeModel::BpeModel(TokenIdMap vocab, const std::vector<std::pair<std::string, std::string>>& merges,
                   BpeOptions options)
    : vocab_(std::move(vocab)), options_(std::move(options)) {
  if (options_.unk_token) {
    const auto it = vocab_.find(*options_.unk_token);
    LATTICE_CHECK(it != vocab_.end(), "BPE unk_token '", *options_.unk_token, "' is not in the vocab");
    unk_id_ = it->second;
  }
  if (options_.byte_fallback) {
    byte_fallback_ids_.assign(256, -1);
    for (int byte = 0; byte < 256; ++byte) {
      char name[8];
      std::snprintf(name, sizeof(name), "<0x%02X>", byte);
      if (const auto it = vocab_.find(std::string_view(name)); it != vocab_.end()) byte_fallback_ids_[byte] = it->second;
    }
  }
  const size_t prefix_length = options_.continuing_subword_prefix.size();
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    const auto left_it = vocab_.find(left);
    const auto right_it = vocab_.find(right);
    LATTICE_CHECK(left_it != vocab_.end(), "merge ", rank, " ('", left, "' '", right, "'): '", left,
                  "' is not in the vocab");
    LATTICE_CHECK(right_it != vocab_.end(), "merge ", rank, " ('", left, "' '", right, "'): '", right,
                  "' is not in the vocab");
    // The right part of a merge carries the continuing-subword prefix, which the result drops.
    const std::string_view right_body =
        right.compare(0, prefix_length, options_.continuing_subword_prefix) == 0 ? std::string_view(right).substr(prefix_length)
                                                                                 : std::string_view(right);
    const std::string merged = left + std::string(right_body);
    const auto merged_it = vocab_.find(merged);
    LATTICE_CHECK(merged_it != vocab_.end(), "merge ", rank, " ('", left, "' '", right, "'): result '", merged,
                  "' is not in the vocab");
    // A repeated pair keeps its last rank, as HF's HashMap collection does.
    merges_.set(left_it->second, right_it->second, {static_cast<int32_t>(rank), merged_it->second});
  }
  if (options_.continuing_subword_prefix.empty() && options_.end_of_word_suffix.empty()) {
    char_ids_.assign(0x10000, -1);
    for (const auto& [token, id] : vocab_) {
      if (token.empty() || token.size() > 3) continue;
      size_t pos = 0;
      const char32_t cp = next_codepoint(token, pos);
      if (pos == token.size() && cp < 0x10000) char_ids_[cp] = id;
    }
    index_chunk_boundaries();
  }
}

void BpeModel::index_chunk_boundaries() {
  std::vector<bool> is_marker;  // byte-fallback and unknown tokens, which stand for no text
  for (const int32_t id : byte_fallback_ids_) {
    if (id >= 0) {
      if (is_marker.size() <= static_cast<size_t>(id)) is_marker.resize(id + 1, false);
      is_marker[id] = true;
    }
  }
  if (unk_id_) {
    if (is_marker.size() <= static_cast<size_t>(*unk_id_)) is_marker.resize(*unk_id_ + 1, false);
    is_marker[*unk_id_] = true;
  }
  bool merges_touch_markers = false;
  merges_.for_each([&](int32_t left, int32_t right) {
    auto marker = [&](int32_t id) { return static_cast<size_t>(id) < is_marker.size() && is_marker[id]; };
    merges_touch_markers |= marker(left) || marker(right);
  });
  if (merges_touch_markers) return;
  chunk_pairs_.reserve(vocab_.size() * 4);
  for (const auto& [token, id] : vocab_) {
    size_t pos = 0;
    char32_t previous = 0;
    bool first = true;
    while (pos < token.size()) {
      const char32_t cp = next_codepoint(token, pos);
      if (!first) chunk_pairs_.set(static_cast<int32_t>(previous), static_cast<int32_t>(cp), {0, 0});
      previous = cp;
      first = false;
    }
  }
  can_chunk_ = true;
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

void BpeModel::tokenize_whole(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (options_.ignore_merges) {
    if (const auto it = vocab_.find(piece); it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  encode_uncached(piece, out);
}

void BpeModel::tokenize(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (options_.ignore_merges) {
    if (const auto it = vocab_.find(piece); it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (!can_chunk_ || piece.size() <= kMaxCachedPieceBytes) {
    encode_cached(piece, out);
    return;
  }
  auto single_char_token = [&](char32_t cp) { return cp < char_ids_.size() && char_ids_[cp] >= 0; };
  size_t chunk_begin = 0;
  size_t pos = 0;
  char32_t previous = 0;
  bool previous_known = false;
  while (pos < piece.size()) {
    const size_t begin = pos;
    const char32_t cp = next_codepoint(piece, pos);
    const bool known = single_char_token(cp);
    if (begin > chunk_begin && previous_known && known &&
        chunk_pairs_.find(static_cast<int32_t>(previous), static_cast<int32_t>(cp)) == nullptr) {
      encode_cached(piece.substr(chunk_begin, begin - chunk_begin), out);
      chunk_begin = begin;
    }
    previous = cp;
    previous_known = known;
  }
  encode_cached(piece.substr(chunk_begin), out);
}

void BpeModel::encode_cached(std::string_view piece, std::vector<int32_t>& out) const {
  const bool cacheable = piece.size() <= kMaxCachedPieceBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (const auto it = cache_.find(piece); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = out.size();
  encode_uncached(piece, out);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= kCacheCapacity) cache_.clear();
    cache_.emplace(std::string(piece), std::vector<int32_t>(out.begin() + static_cast<std::ptrdiff_t>(first), out.end()));
  }
}

void BpeModel::encode_uncached(std::string_view piece, std::vector<int32_t>& out) const {
  std::vector<Symbol> symbols;
  symbols.reserve(piece.size());
  auto add_symbol = [&](int32_t id, size_t byte_length) {
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, index + 1, static_cast<uint32_t>(byte_length)});
  };
  std::optional<std::pair<int32_t, size_t>> pending_unk;  // (id, byte length) of a not yet added unk
  auto flush_unk = [&]() {
    if (pending_unk) add_symbol(pending_unk->first, pending_unk->second);
    pending_unk.reset();
  };

  std::string scratch;
  size_t pos = 0;
  while (pos < piece.size()) {
    const size_t begin = pos;
    pos += utf8_lead_length(static_cast<unsigned char>(piece[pos]));
    if (pos > piece.size()) pos = piece.size();
    const std::string_view character = piece.substr(begin, pos - begin);
    if (!char_ids_.empty() && character.size() <= 3) {
      size_t cp_pos = 0;
      const int32_t id = char_ids_[next_codepoint(character, cp_pos)];
      if (id >= 0) {
        flush_unk();
        add_symbol(id, character.size());
        continue;
      }
    }
    std::string_view lookup = character;
    if ((begin > 0 && !options_.continuing_subword_prefix.empty()) ||
        (pos == piece.size() && !options_.end_of_word_suffix.empty())) {
      scratch.clear();
      if (begin > 0) scratch += options_.continuing_subword_prefix;
      scratch += character;
      if (pos == piece.size()) scratch += options_.end_of_word_suffix;
      lookup = scratch;
    }
    if (const auto it = vocab_.find(lookup); it != vocab_.end()) {
      flush_unk();
      add_symbol(it->second, character.size());
      continue;
    }
    if (options_.byte_fallback) {
      bool all_bytes_known = true;
      for (const char c : lookup) all_bytes_known &= byte_fallback_ids_[static_cast<unsigned char>(c)] >= 0;
      if (all_bytes_known) {
        flush_unk();
        for (const char c : lookup) add_symbol(byte_fallback_ids_[static_cast<unsigned char>(c)], 1);
        continue;
      }
    }
    if (!unk_id_) continue;  // HF drops characters it can represent neither way
    if (pending_unk && options_.fuse_unk) {
      pending_unk->second += character.size();
    } else {
      flush_unk();
      pending_unk = std::make_pair(*unk_id_, character.size());
    }
  }
  flush_unk();
  if (symbols.empty()) return;
  symbols.back().next = -1;

  std::priority_queue<QueuedMerge, std::vector<QueuedMerge>, LaterMerge> queue;
  using Merge = MergeTable::Merge;
  auto find_merge = [&](int32_t left, int32_t right) -> const Merge* { return merges_.find(left, right); };
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const Merge* merge = find_merge(symbols[i].id, symbols[i + 1].id)) {
      queue.push({merge->rank, static_cast<int32_t>(i), merge->new_id});
    }
  }
  while (!queue.empty()) {
    const QueuedMerge top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (left.byte_length == 0 || left.next < 0) continue;
    const int32_t right_pos = left.next;
    const Symbol right = symbols[right_pos];
    // Skip entries made stale by an earlier merge of either side.
    const Merge* current = find_merge(left.id, right.id);
    if (current == nullptr || current->new_id != top.new_id) continue;
    left.id = top.new_id;
    left.byte_length += right.byte_length;
    left.next = right.next;
    symbols[right_pos].byte_length = 0;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (left.prev >= 0) {
      if (const Merge* merge = find_merge(symbols[left.prev].id, left.id)) {
        queue.push({merge->rank, left.prev, merge->new_id});
      }
    }
    if (left.next >= 0) {
      if (const Merge* merge = find_merge(left.id, symbols[left.next].id)) {
        queue.push({merge->rank, top.pos, merge->new_id});
      }
    }
  }
  for (const Symbol& symbol : symbols) {
    if (symbol.byte_length != 0) out.push_back(symbol.id);
  }
}

}  // namespace lattice::tokenizer
