// Tensor: a dtype, a device, a row-major shape and a buffer that is either owned (allocated by
// Tensor::empty, on the CPU or on cuda:N through engine/core/device_memory.h) or borrowed (e.g. a view into
// mmap'd weights or a workspace arena, kept alive by `keepalive`).
// Copying a Tensor shares the buffer; `clone()` and `to()` copy the data. Views (reshape, rows) share it too.
// data<T>() is for CPU tensors only; device tensors hand their pointer to kernels through raw().
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/dtype.h"
#include "engine/core/error.h"

namespace lattice {

template <typename T> struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::f32; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::i32; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::i64; };
template <> struct DTypeOf<uint8_t> { static constexpr DType value = DType::u8; };

// "[4, 128]"
std::string shape_str(const std::vector<int64_t>& shape);

class Tensor {
 public:
  Tensor() = default;

  // Owning, uninitialised storage (64-byte aligned on the CPU, 256 on a GPU).
  static Tensor empty(std::vector<int64_t> shape, DType dtype, Device device = Device::cpu());
  static Tensor zeros(std::vector<int64_t> shape, DType dtype, Device device = Device::cpu());
  // Borrowed storage; `keepalive` (may be null) holds whatever owns `data`.
  static Tensor borrow(void* data, std::vector<int64_t> shape, DType dtype, Device device = Device::cpu(),
                       std::shared_ptr<const void> keepalive = nullptr);
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, std::vector<int64_t> shape);

  DType dtype() const { return dtype_; }
  const Device& device() const { return device_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t rank() const { return static_cast<int64_t>(shape_.size()); }
  int64_t dim(int64_t i) const;  // negative i counts from the end
  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  bool defined() const { return data_ != nullptr || numel() == 0; }
  std::string describe() const;  // "f32[4, 128] on cpu"

  void* raw() const { return data_; }
  template <typename T> T* data() const {
    LATTICE_CHECK(device_.is_cpu(), "host access to ", describe());
    LATTICE_CHECK(dtype_ == DTypeOf<T>::value, "tensor holds ", dtype_name(dtype_), ", accessed as ",
                  dtype_name(DTypeOf<T>::value));
    return static_cast<T*>(data_);
  }

  // Same buffer, new shape with the same element count.
  Tensor reshape(std::vector<int64_t> shape) const;
  // Rows [begin, end) along dimension 0, sharing the buffer.
  Tensor rows(int64_t begin, int64_t end) const;
  // A copy of the data on the same device.
  Tensor clone() const;
  // A copy of the data on `device` (synchronous; for set-up and tests, not the step loop).
  Tensor to(Device device) const;
  // Copies `src` (same dtype and element count, any device) into this tensor's buffer (synchronous).
  void copy_from(const Tensor& src);

 private:
  DType dtype_ = DType::f32;
  Device device_;
  std::vector<int64_t> shape_;
  void* data_ = nullptr;
  std::shared_ptr<const void> storage_;
};

template <typename T>
std::vector<T> to_vector(const Tensor& t) {
  const Tensor host = t.device().is_cpu() ? t : t.to(Device::cpu());
  const T* p = host.data<T>();
  return std::vector<T>(p, p + host.numel());
}

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, std::vector<int64_t> shape) {
  Tensor t = empty(std::move(shape), DTypeOf<T>::value);
  LATTICE_CHECK(static_cast<size_t>(t.numel()) == values.size(), "shape ", t.describe(), " does not hold ",
                values.size(), " values");
  std::copy(values.begin(), values.end(), t.data<T>());
  return t;
}

}  // namespace lattice
