#include "engine/weights/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

namespace lattice {
namespace {

using nlohmann::json;

DType parse_dtype(const std::string& file, const std::string& tensor, const std::string& name) {
  if (name == "F32") return DType::f32;
  if (name == "F16") return DType::f16;
  if (name == "BF16") return DType::bf16;
  if (name == "I32") return DType::i32;
  if (name == "I64") return DType::i64;
  LATTICE_THROW(file, ": tensor '", tensor, "' has unsupported dtype '", name, "' (supported: F32, F16, BF16, I32, I64)");
}

}  // namespace

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile(path));
  file->parse_header();
  return file;
}

std::map<std::string, TensorInfo> parse_safetensors_header(const unsigned char* data, size_t size,
                                                            const std::string& name) {
  std::map<std::string, TensorInfo> tensors;
  LATTICE_CHECK(size >= 8, name, ": truncated safetensors file (", size, " bytes, no header length)");
  uint64_t header_len = 0;
  std::memcpy(&header_len, data, 8);  // little-endian on every supported host
  LATTICE_CHECK(header_len <= size - 8, name, ": header length ", header_len, " runs past the end of the ",
                size, "-byte file (truncated or corrupt)");
  const char* header = reinterpret_cast<const char*>(data + 8);
  json root;
  try {
    root = json::parse(header, header + header_len);
  } catch (const json::exception& e) {
    LATTICE_THROW(name, ": header is not valid JSON: ", e.what());
  }
  LATTICE_CHECK(root.is_object(), name, ": header is not a JSON object");

  const size_t data_begin = 8 + header_len;
  const size_t data_size = size - data_begin;
  for (const auto& [tensor, entry] : root.items()) {
    if (tensor == "__metadata__") continue;
    LATTICE_CHECK(entry.is_object() && entry.contains("dtype") && entry.contains("shape") &&
                      entry.contains("data_offsets"),
                  name, ": tensor '", tensor, "' needs dtype, shape and data_offsets");
    LATTICE_CHECK(entry["dtype"].is_string(), name, ": tensor '", tensor, "' has a non-string dtype");
    TensorInfo info;
    info.name = tensor;
    info.dtype = parse_dtype(name, tensor, entry["dtype"].get<std::string>());
    const json& shape = entry["shape"];
    const json& offsets = entry["data_offsets"];
    LATTICE_CHECK(shape.is_array(), name, ": tensor '", tensor, "' shape is not an array");
    uint64_t numel = 1;
    for (const json& d : shape) {
      LATTICE_CHECK(d.is_number_unsigned(), name, ": tensor '", tensor, "' has a non-integer or negative dimension");
      uint64_t dim = d.get<uint64_t>();
      LATTICE_CHECK(dim == 0 || numel <= (uint64_t{1} << 60) / dim, name, ": tensor '", tensor, "' shape overflows");
      numel *= dim;
      info.shape.push_back(static_cast<int64_t>(dim));
    }
    LATTICE_CHECK(offsets.is_array() && offsets.size() == 2 && offsets[0].is_number_unsigned() &&
                      offsets[1].is_number_unsigned(),
                  name, ": tensor '", tensor, "' data_offsets must be two non-negative integers");
    uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
    LATTICE_CHECK(begin <= end, name, ": tensor '", tensor, "' data_offsets [", begin, ", ", end, "] are reversed");
    LATTICE_CHECK(end <= data_size, name, ": tensor '", tensor, "' data_offsets end ", end, " is past the ", data_size,
                  "-byte data section (truncated or corrupt file)");
    uint64_t expected = numel * dtype_size(info.dtype);
    LATTICE_CHECK(end - begin == expected, name, ": tensor '", tensor, "' spans ", end - begin, " bytes but ",
                  dtype_name(info.dtype), " shape needs ", expected, " (dtype/size mismatch)");
    info.begin = data_begin + begin;
    info.end = data_begin + end;
    tensors.emplace(tensor, std::move(info));
  }

  std::vector<const TensorInfo*> by_offset;
  for (const auto& [tensor, info] : tensors) by_offset.push_back(&info);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    LATTICE_CHECK(by_offset[i]->begin >= by_offset[i - 1]->end, name, ": tensors '", by_offset[i - 1]->name, "' and '",
                  by_offset[i]->name, "' overlap");
  return tensors;
}

void SafetensorsFile::parse_header() { tensors_ = parse_safetensors_header(file_.data(), file_.size(), file_.path()); }

const TensorInfo& SafetensorsFile::info(const std::string& tensor) const {
  auto it = tensors_.find(tensor);
  LATTICE_CHECK(it != tensors_.end(), path(), ": no tensor named '", tensor, "'");
  return it->second;
}

Tensor SafetensorsFile::tensor(const std::string& tensor) const {
  const TensorInfo& i = info(tensor);
  void* data = const_cast<unsigned char*>(file_.data() + i.begin);
  return Tensor::borrow(data, i.shape, i.dtype, Device::cpu(), shared_from_this());
}

Checkpoint Checkpoint::open(const std::string& dir) {
  namespace fs = std::filesystem;
  Checkpoint ckpt;
  fs::path index = fs::path(dir) / "model.safetensors.index.json";
  std::vector<std::string> shard_names;
  if (fs::exists(index)) {
    std::ifstream in(index);
    json root;
    try {
      root = json::parse(in);
    } catch (const json::exception& e) {
      LATTICE_THROW(index.string(), ": not valid JSON: ", e.what());
    }
    LATTICE_CHECK(root.contains("weight_map") && root["weight_map"].is_object(), index.string(),
                  ": missing the weight_map object");
    std::map<std::string, std::string> weight_map;
    for (const auto& [tensor, shard] : root["weight_map"].items()) {
      LATTICE_CHECK(shard.is_string(), index.string(), ": weight_map entry '", tensor, "' is not a file name");
      weight_map[tensor] = shard.get<std::string>();
      LATTICE_CHECK(fs::path(weight_map[tensor]).filename() == fs::path(weight_map[tensor]), index.string(),
                    ": shard '", weight_map[tensor], "' of '", tensor, "' must be a file in the model directory");
      if (std::find(shard_names.begin(), shard_names.end(), weight_map[tensor]) == shard_names.end())
        shard_names.push_back(weight_map[tensor]);
    }
    for (const std::string& shard : shard_names) ckpt.files_.push_back(SafetensorsFile::open((fs::path(dir) / shard).string()));
    for (const auto& [tensor, shard] : weight_map) {
      size_t idx = std::find(shard_names.begin(), shard_names.end(), shard) - shard_names.begin();
      LATTICE_CHECK(ckpt.files_[idx]->has(tensor), index.string(), " maps '", tensor, "' to ", shard,
                    ", which does not contain it");
      ckpt.owner_[tensor] = idx;
    }
    return ckpt;
  }
  fs::path single = fs::path(dir) / "model.safetensors";
  LATTICE_CHECK(fs::exists(single), "no model.safetensors or model.safetensors.index.json in '", dir, "'");
  ckpt.files_.push_back(SafetensorsFile::open(single.string()));
  for (const auto& [tensor, info] : ckpt.files_[0]->tensors()) ckpt.owner_[tensor] = 0;
  return ckpt;
}

const SafetensorsFile& Checkpoint::file_for(const std::string& name) const {
  auto it = owner_.find(name);
  LATTICE_CHECK(it != owner_.end(), "checkpoint has no tensor named '", name, "'");
  return *files_[it->second];
}

const TensorInfo& Checkpoint::info(const std::string& name) const { return file_for(name).info(name); }
Tensor Checkpoint::tensor(const std::string& name) const { return file_for(name).tensor(name); }
const std::string& Checkpoint::file_of(const std::string& name) const { return file_for(name).path(); }

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [name, idx] : owner_) out.push_back(name);
  return out;
}

}  // namespace lattice
