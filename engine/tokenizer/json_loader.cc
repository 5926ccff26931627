#include "engine/tokenizer/json_loader.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/core/error.h"
#include "engine/tokenizer/tokenizer_impl.h"
#include "engine/tokenizer/utf8.h"

namespace lattice::tokenizer {
namespace {

using nlohmann::json;

// Error context: "tokenizer.json: pre_tokenizer.pretokenizers[1]".
struct Where {
  const std::string& source;
  std::string path;
  Where at(const std::string& child) const { return {source, path + "." + child}; }
  Where at(size_t index) const { return {source, path + "[" + std::to_string(index) + "]"}; }
};

[[noreturn]] void fail(const Where& where, const std::string& message) {
  LATTICE_THROW(where.source, ": ", where.path, ": ", message);
}

const json& field(const json& object, const char* name, const Where& where) {
  if (!object.is_object()) fail(where, "expected an object");
  const auto it = object.find(name);
  if (it == object.end()) fail(where, std::string("missing field '") + name + "'");
  return *it;
}

std::string get_string(const json& object, const char* name, const Where& where) {
  const json& value = field(object, name, where);
  if (!value.is_string()) fail(where.at(name), "expected a string");
  return value.get<std::string>();
}

bool get_bool(const json& object, const char* name, bool fallback, const Where& where) {
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) fail(where.at(name), "expected true or false");
  return it->get<bool>();
}

std::string type_of(const json& object, const Where& where) { return get_string(object, "type", where); }

// {"String": "x"} or {"Regex": "..."}.
Pattern load_pattern(const json& object, const Where& where) {
  if (!object.is_object()) fail(where, "expected {\"String\": ...} or {\"Regex\": ...}");
  if (object.contains("String")) return Pattern::literal(get_string(object, "String", where));
  if (object.contains("Regex")) {
    const std::string pattern = get_string(object, "Regex", where);
    try {
      return Pattern::regex(pattern);
    } catch (const Error& error) {
      fail(where, error.what());
    }
  }
  fail(where, "expected {\"String\": ...} or {\"Regex\": ...}");
}

PrependScheme load_prepend_scheme(const json& object, const Where& where) {
  const auto it = object.find("prepend_scheme");
  if (it != object.end() && !it->is_null()) {
    const std::string scheme = it->is_string() ? it->get<std::string>() : std::string();
    if (scheme == "always") return PrependScheme::kAlways;
    if (scheme == "first") return PrependScheme::kFirst;
    if (scheme == "never") return PrependScheme::kNever;
    fail(where.at("prepend_scheme"), "unknown prepend_scheme '" + it->dump() + "'");
  }
  // Older files only carry add_prefix_space.
  return get_bool(object, "add_prefix_space", true, where) ? PrependScheme::kAlways : PrependScheme::kNever;
}

std::string single_char(const json& object, const char* name, const Where& where) {
  const std::string text = get_string(object, name, where);
  size_t pos = 0;
  if (text.empty() || find_invalid_utf8(text) || (next_codepoint(text, pos), pos != text.size())) {
    fail(where.at(name), "expected exactly one character, got '" + text + "'");
  }
  return text;
}

std::unique_ptr<Normalizer> load_normalizer(const json& object, const Where& where) {
  const std::string type = type_of(object, where);
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(UnicodeForm::kNfc);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(UnicodeForm::kNfd);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(UnicodeForm::kNfkc);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(UnicodeForm::kNfkd);
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(get_string(object, "prepend", where));
  if (type == "Replace") {
    return std::make_unique<ReplaceNormalizer>(load_pattern(field(object, "pattern", where), where.at("pattern")),
                                               get_string(object, "content", where));
  }
  if (type == "Sequence") {
    const json& list = field(object, "normalizers", where);
    if (!list.is_array()) fail(where.at("normalizers"), "expected an array");
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (size_t i = 0; i < list.size(); ++i) steps.push_back(load_normalizer(list[i], where.at("normalizers").at(i)));
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  fail(where, "unsupported normalizer type '" + type + "'");
}

SplitBehavior load_behavior(const json& object, const Where& where) {
  const std::string behavior = get_string(object, "behavior", where);
  if (behavior == "Removed") return SplitBehavior::kRemoved;
  if (behavior == "Isolated") return SplitBehavior::kIsolated;
  if (behavior == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (behavior == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (behavior == "Contiguous") return SplitBehavior::kContiguous;
  fail(where.at("behavior"), "unknown split behavior '" + behavior + "'");
}

std::unique_ptr<PreTokenizer> load_pre_tokenizer(const json& object, const Where& where) {
  const std::string type = type_of(object, where);
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPreTokenizer>(get_bool(object, "add_prefix_space", true, where),
                                                   get_bool(object, "use_regex", true, where));
  }
  if (type == "Split") {
    return std::make_unique<SplitPreTokenizer>(load_pattern(field(object, "pattern", where), where.at("pattern")),
                                               load_behavior(object, where), get_bool(object, "invert", false, where));
  }
  if (type == "Metaspace") {
    return std::make_unique<MetaspacePreTokenizer>(single_char(object, "replacement", where),
                                                   load_prepend_scheme(object, where),
                                                   get_bool(object, "split", true, where));
  }
  if (type == "Digits") return std::make_unique<DigitsPreTokenizer>(get_bool(object, "individual_digits", false, where));
  if (type == "Sequence") {
    const json& list = field(object, "pretokenizers", where);
    if (!list.is_array()) fail(where.at("pretokenizers"), "expected an array");
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (size_t i = 0; i < list.size(); ++i) {
      steps.push_back(load_pre_tokenizer(list[i], where.at("pretokenizers").at(i)));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  fail(where, "unsupported pre_tokenizer type '" + type + "'");
}

std::unique_ptr<Decoder> load_decoder(const json& object, const Where& where) {
  const std::string type = type_of(object, where);
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Replace") {
    return std::make_unique<ReplaceDecoder>(load_pattern(field(object, "pattern", where), where.at("pattern")),
                                            get_string(object, "content", where));
  }
  if (type == "Strip") {
    const std::string content = single_char(object, "content", where);
    size_t pos = 0;
    const json& start = field(object, "start", where);
    const json& stop = field(object, "stop", where);
    if (!start.is_number_unsigned() || !stop.is_number_unsigned()) fail(where, "start and stop must be counts");
    return std::make_unique<StripDecoder>(next_codepoint(content, pos), start.get<size_t>(), stop.get<size_t>());
  }
  if (type == "Metaspace") {
    return std::make_unique<MetaspaceDecoder>(single_char(object, "replacement", where),
                                              load_prepend_scheme(object, where));
  }
  if (type == "Sequence") {
    const json& list = field(object, "decoders", where);
    if (!list.is_array()) fail(where.at("decoders"), "expected an array");
    std::vector<std::unique_ptr<Decoder>> steps;
    for (size_t i = 0; i < list.size(); ++i) steps.push_back(load_decoder(list[i], where.at("decoders").at(i)));
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  fail(where, "unsupported decoder type '" + type + "'");
}

int32_t parse_id(const json& value, const Where& where) {
  if (!value.is_number_integer() || value.get<int64_t>() < 0 || value.get<int64_t>() > INT32_MAX) {
    fail(where, "expected a token id, got " + value.dump());
  }
  return value.get<int32_t>();
}

std::unique_ptr<PostProcessor> load_post_processor(const json& object, const Where& where) {
  const std::string type = type_of(object, where);
  if (type == "ByteLevel") return std::make_unique<ByteLevelPostProcessor>();
  if (type == "TemplateProcessing") {
    const json& specials = field(object, "special_tokens", where);
    const json& single = field(object, "single", where);
    if (!single.is_array()) fail(where.at("single"), "expected an array of template items");
    std::vector<TemplatePostProcessor::Item> items;
    for (size_t i = 0; i < single.size(); ++i) {
      const Where item_where = where.at("single").at(i);
      TemplatePostProcessor::Item item;
      if (single[i].contains("Sequence")) {
        const std::string id = get_string(field(single[i], "Sequence", item_where), "id", item_where.at("Sequence"));
        if (id != "A") fail(item_where, "a single-sequence template can only use sequence A, not " + id);
        item.is_sequence = true;
      } else if (single[i].contains("SpecialToken")) {
        const std::string name =
            get_string(field(single[i], "SpecialToken", item_where), "id", item_where.at("SpecialToken"));
        if (!specials.contains(name)) fail(item_where, "special token '" + name + "' is not in special_tokens");
        const json& ids = field(specials[name], "ids", where.at("special_tokens").at(name));
        if (!ids.is_array()) fail(where.at("special_tokens").at(name), "ids must be an array");
        for (const json& id : ids) item.ids.push_back(parse_id(id, where.at("special_tokens").at(name)));
      } else {
        fail(item_where, "expected a Sequence or SpecialToken item");
      }
      items.push_back(std::move(item));
    }
    return std::make_unique<TemplatePostProcessor>(std::move(items));
  }
  if (type == "Sequence") {
    const json& list = field(object, "processors", where);
    if (!list.is_array()) fail(where.at("processors"), "expected an array");
    std::vector<std::unique_ptr<PostProcessor>> steps;
    for (size_t i = 0; i < list.size(); ++i) steps.push_back(load_post_processor(list[i], where.at("processors").at(i)));
    return std::make_unique<SequencePostProcessor>(std::move(steps));
  }
  fail(where, "unsupported post_processor type '" + type + "'");
}

std::unique_ptr<BpeModel> load_model(const json& object, const Where& where) {
  if (!object.is_object()) fail(where, "expected an object");
  // Old files omit the type; HF then recognises BPE by its merges.
  const std::string type = object.contains("type") ? type_of(object, where) : (object.contains("merges") ? "BPE" : "");
  if (type != "BPE") fail(where, "unsupported model type '" + type + "' (only BPE is implemented)");
  if (object.contains("dropout") && !object["dropout"].is_null() && object["dropout"].get<double>() > 0.0) {
    fail(where.at("dropout"), "BPE dropout is a training feature and is not supported");
  }
  const json& vocab_json = field(object, "vocab", where);
  if (!vocab_json.is_object()) fail(where.at("vocab"), "expected an object of token -> id");
  TokenIdMap vocab;
  vocab.reserve(vocab_json.size());
  for (const auto& [token, id] : vocab_json.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
      fail(where.at("vocab").at(token), "expected a token id, got " + id.dump());
    }
    vocab.emplace(token, id.get<int32_t>());
  }

  const json& merges_json = field(object, "merges", where);
  if (!merges_json.is_array()) fail(where.at("merges"), "expected an array");
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(merges_json.size());
  for (size_t i = 0; i < merges_json.size(); ++i) {
    const json& merge = merges_json[i];
    if (merge.is_string()) {
      const std::string& text = merge.get_ref<const std::string&>();
      const size_t space = text.find(' ');
      if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
        fail(where.at("merges").at(i), "expected \"left right\" with exactly one space, got \"" + text + "\"");
      }
      merges.emplace_back(text.substr(0, space), text.substr(space + 1));
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
      merges.emplace_back(merge[0].get<std::string>(), merge[1].get<std::string>());
    } else {
      fail(where.at("merges").at(i), "expected \"left right\" or [\"left\", \"right\"], got " + merge.dump());
    }
  }

  BpeOptions options;
  if (object.contains("unk_token") && !object["unk_token"].is_null()) options.unk_token = get_string(object, "unk_token", where);
  if (object.contains("continuing_subword_prefix") && !object["continuing_subword_prefix"].is_null()) {
    options.continuing_subword_prefix = get_string(object, "continuing_subword_prefix", where);
  }
  if (object.contains("end_of_word_suffix") && !object["end_of_word_suffix"].is_null()) {
    options.end_of_word_suffix = get_string(object, "end_of_word_suffix", where);
  }
  options.fuse_unk = get_bool(object, "fuse_unk", false, where);
  options.byte_fallback = get_bool(object, "byte_fallback", false, where);
  options.ignore_merges = get_bool(object, "ignore_merges", false, where);
  try {
    return std::make_unique<BpeModel>(std::move(vocab), merges, std::move(options));
  } catch (const Error& error) {
    fail(where, error.what());
  }
}

std::vector<AddedToken> load_added_tokens(const json& root, const Where& where) {
  std::vector<AddedToken> tokens;
  const auto it = root.find("added_tokens");
  if (it == root.end() || it->is_null()) return tokens;
  if (!it->is_array()) fail(where, "expected an array");
  for (size_t i = 0; i < it->size(); ++i) {
    const json& entry = (*it)[i];
    const Where entry_where = where.at(i);
    AddedToken token;
    token.id = parse_id(field(entry, "id", entry_where), entry_where.at("id"));
    token.content = get_string(entry, "content", entry_where);
    if (token.content.empty()) fail(entry_where, "an added token cannot be empty");
    token.special = get_bool(entry, "special", false, entry_where);
    token.normalized = get_bool(entry, "normalized", !token.special, entry_where);
    token.lstrip = get_bool(entry, "lstrip", false, entry_where);
    token.rstrip = get_bool(entry, "rstrip", false, entry_where);
    token.single_word = get_bool(entry, "single_word", false, entry_where);
    tokens.push_back(std::move(token));
  }
  return tokens;
}

// bos_token / eos_token in tokenizer_config.json: a string, {"content": ...}, or null.
std::optional<std::string> config_token(const json& config, const char* name) {
  const auto it = config.find(name);
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) return (*it)["content"].get<std::string>();
  return std::nullopt;
}

json parse_json(std::string_view text, const std::string& source) {
  try {
    return json::parse(text);
  } catch (const json::exception& error) {
    LATTICE_THROW(source, ": invalid JSON: ", error.what());
  }
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  LATTICE_CHECK(file.good(), "cannot open ", path.string());
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}


std::shared_ptr<TokenizerImpl> load_tokenizer_unchecked(std::string_view tokenizer_json,
                                                        std::string_view tokenizer_config_json, const std::string& source) {
  const json root = parse_json(tokenizer_json, source);
  const Where top{source, "tokenizer"};
  if (!root.is_object()) fail(top, "expected a JSON object");
  auto impl = std::make_shared<TokenizerImpl>();
  if (!root.contains("model")) fail(top, "missing field 'model'");
  impl->model = load_model(root["model"], {source, "model"});
  auto optional_section = [&](const char* name) -> const json* {
    const auto it = root.find(name);
    return it == root.end() || it->is_null() ? nullptr : &*it;
  };
  if (const json* section = optional_section("normalizer")) impl->normalizer = load_normalizer(*section, {source, "normalizer"});
  if (const json* section = optional_section("pre_tokenizer")) {
    impl->pre_tokenizer = load_pre_tokenizer(*section, {source, "pre_tokenizer"});
  }
  if (const json* section = optional_section("post_processor")) {
    impl->post_processor = load_post_processor(*section, {source, "post_processor"});
  }
  if (const json* section = optional_section("decoder")) impl->decoder = load_decoder(*section, {source, "decoder"});
  impl->added_tokens = load_added_tokens(root, {source, "added_tokens"});
  impl->index_tokens();

  if (!tokenizer_config_json.empty()) {
    const std::string config_source = source + " (tokenizer_config.json)";
    const json config = parse_json(tokenizer_config_json, config_source);
    if (!config.is_object()) LATTICE_THROW(config_source, ": expected a JSON object");
    auto resolve = [&](const char* name) -> std::optional<int32_t> {
      const auto token = config_token(config, name);
      if (!token) return std::nullopt;
      for (const AddedToken& added : impl->added_tokens) {
        if (added.content == *token) return added.id;
      }
      const auto id = impl->model->token_to_id(*token);
      if (!id) LATTICE_THROW(config_source, ": ", name, " '", *token, "' is not in the vocab");
      return id;
    };
    impl->bos_id = resolve("bos_token");
    impl->eos_id = resolve("eos_token");
    const auto flag = [&](const char* name) {
      const auto it = config.find(name);
      return it != config.end() && it->is_boolean() && it->get<bool>();
    };
    impl->force_bos = flag("add_bos_token");
    impl->force_eos = flag("add_eos_token");
  }
  return impl;
}

}  // namespace

std::shared_ptr<TokenizerImpl> load_tokenizer(std::string_view tokenizer_json, std::string_view tokenizer_config_json,
                                              const std::string& source) {
  try {
    return load_tokenizer_unchecked(tokenizer_json, tokenizer_config_json, source);
  } catch (const json::exception& error) {
    // A field of an unexpected JSON type that no explicit check caught.
    LATTICE_THROW(source, ": unexpected JSON structure: ", error.what());
  }
}

std::shared_ptr<TokenizerImpl> load_tokenizer_dir(const std::string& model_dir) {
  const std::filesystem::path dir(model_dir);
  const std::filesystem::path tokenizer_path = dir / "tokenizer.json";
  LATTICE_CHECK(std::filesystem::exists(tokenizer_path), "no tokenizer.json in ", model_dir);
  const std::string tokenizer_json = read_file(tokenizer_path);
  const std::filesystem::path config_path = dir / "tokenizer_config.json";
  const std::string config_json = std::filesystem::exists(config_path) ? read_file(config_path) : std::string();
  return load_tokenizer(tokenizer_json, config_json, tokenizer_path.string());
}

}  // namespace lattice::tokenizer
