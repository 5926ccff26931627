// Element types and devices a Tensor can hold.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace lattice {

enum class DType : uint8_t { f32, f16, bf16, i32, i64, u8 };  // u8: raw bytes (workspaces)

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);

struct Device {
  enum class Kind : uint8_t { cpu, cuda };
  Kind kind = Kind::cpu;
  int index = 0;

  static Device cpu() { return {}; }
  static Device cuda(int index) { return {Kind::cuda, index}; }
  bool is_cpu() const { return kind == Kind::cpu; }
  bool operator==(const Device&) const = default;
  std::string str() const;  // "cpu" or "cuda:N"
};

}  // namespace lattice
