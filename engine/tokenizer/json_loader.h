// Builds a TokenizerImpl from the JSON of tokenizer.json and tokenizer_config.json. Every
// component type it does not know is an error that names the section and the type.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace lattice::tokenizer {

struct TokenizerImpl;

// `source` names the input in error messages (a path, or "tokenizer.json").
std::shared_ptr<TokenizerImpl> load_tokenizer(std::string_view tokenizer_json, std::string_view tokenizer_config_json,
                                              const std::string& source);

// Reads model_dir/tokenizer.json and the optional model_dir/tokenizer_config.json.
std::shared_ptr<TokenizerImpl> load_tokenizer_dir(const std::string& model_dir);

}  // namespace lattice::tokenizer
