#include "engine/weights/safetensors_writer.h"

#include <fstream>

#include <nlohmann/json.hpp>

namespace lattice {

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    LATTICE_CHECK(t.device().is_cpu(), "cannot write ", name, " from ", t.device().str());
    static const char* names[] = {"F32", "F16", "BF16", "I32", "I64"};
    header[name] = {{"dtype", names[static_cast<int>(t.dtype())]},
                    {"shape", t.shape()},
                    {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // align the data section to 8 bytes, as the spec suggests
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  LATTICE_CHECK(out.good(), "cannot write ", path);
  const uint64_t len = text.size();
  out.write(reinterpret_cast<const char*>(&len), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& [name, t] : tensors) out.write(static_cast<const char*>(t.raw()), static_cast<std::streamsize>(t.nbytes()));
  LATTICE_CHECK(out.good(), "failed writing ", path);
}

}  // namespace lattice
