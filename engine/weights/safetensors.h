// Safetensors checkpoints over mmap: one file (SafetensorsFile) or a sharded set described by
// model.safetensors.index.json (Checkpoint). Headers are fully validated at open; tensors are
// returned as borrowed views into the map, in their on-disk dtype. The format does not require the data
// to be aligned, so a view's data may be misaligned for its dtype: read it with memcpy or copy it first.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/tensor.h"
#include "engine/weights/mapped_file.h"

namespace lattice {

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  size_t begin = 0;  // byte offsets into the file (already past the header)
  size_t end = 0;
};

// Parses and validates the header of the safetensors file of `size` bytes at `data` (the whole file): every
// tensor's dtype, shape and byte range (offsets into `data`) inside the file, no two overlapping. `name` names the
// file in errors. Throws lattice::Error.
std::map<std::string, TensorInfo> parse_safetensors_header(const unsigned char* data, size_t size,
                                                           const std::string& name);

class SafetensorsFile : public std::enable_shared_from_this<SafetensorsFile> {
 public:
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);

  const std::string& path() const { return file_.path(); }
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  bool has(const std::string& name) const { return tensors_.count(name) > 0; }
  const TensorInfo& info(const std::string& name) const;
  Tensor tensor(const std::string& name) const;  // borrowed; keeps the map alive

 private:
  explicit SafetensorsFile(const std::string& path) : file_(path) {}
  void parse_header();

  MappedFile file_;
  std::map<std::string, TensorInfo> tensors_;
};

// All weights of one model directory.
class Checkpoint {
 public:
  // Opens DIR/model.safetensors.index.json when present, else DIR/model.safetensors.
  static Checkpoint open(const std::string& dir);

  bool has(const std::string& name) const { return owner_.count(name) > 0; }
  const TensorInfo& info(const std::string& name) const;
  Tensor tensor(const std::string& name) const;
  const std::string& file_of(const std::string& name) const;
  std::vector<std::string> names() const;

 private:
  const SafetensorsFile& file_for(const std::string& name) const;

  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> owner_;  // tensor name -> index into files_
};

}  // namespace lattice
