#include "engine/core/tensor.h"

#include "engine/core/device_memory.h"

#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>

namespace lattice {
namespace {

int64_t count(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    LATTICE_CHECK(d >= 0, "negative dimension ", d);
    n *= d;
  }
  return n;
}

}  // namespace

Tensor Tensor::empty(std::vector<int64_t> shape, DType dtype, Device device) {
  Tensor t;
  t.dtype_ = dtype;
  t.device_ = device;
  t.shape_ = std::move(shape);
  if (!device.is_cpu()) {
    const DeviceMemoryOps& mem = device_memory(device);
    void* data = t.nbytes() ? mem.allocate(t.nbytes(), device.index) : nullptr;
    t.data_ = data;
    t.storage_ = std::shared_ptr<const void>(data, [release = mem.release, index = device.index](const void* p) {
      if (p) release(const_cast<void*>(p), index);
    });
    return t;
  }
  size_t bytes = (t.nbytes() + 63) / 64 * 64;
  void* data = bytes ? std::aligned_alloc(64, bytes) : nullptr;
  LATTICE_CHECK(bytes == 0 || data != nullptr, "out of host memory allocating ", t.describe());
  t.data_ = data;
  t.storage_ = std::shared_ptr<const void>(data, [](const void* p) { std::free(const_cast<void*>(p)); });
  return t;
}

Tensor Tensor::zeros(std::vector<int64_t> shape, DType dtype, Device device) {
  Tensor t = empty(std::move(shape), dtype, device);
  if (!t.nbytes()) return t;
  if (device.is_cpu())
    std::memset(t.data_, 0, t.nbytes());
  else
    device_memory(device).zero(t.data_, t.nbytes(), device.index);
  return t;
}

Tensor Tensor::borrow(void* data, std::vector<int64_t> shape, DType dtype, Device device,
                      std::shared_ptr<const void> keepalive) {
  Tensor t;
  t.dtype_ = dtype;
  t.device_ = device;
  t.shape_ = std::move(shape);
  t.data_ = data;
  t.storage_ = std::move(keepalive);
  return t;
}

int64_t Tensor::dim(int64_t i) const {
  int64_t r = rank();
  if (i < 0) i += r;
  LATTICE_CHECK(i >= 0 && i < r, "dimension ", i, " out of range for ", describe());
  return shape_[i];
}

int64_t Tensor::numel() const { return count(shape_); }

std::string shape_str(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

std::string Tensor::describe() const {
  return std::string(dtype_name(dtype_)) + shape_str(shape_) + " on " + device_.str();
}

Tensor Tensor::reshape(std::vector<int64_t> shape) const {
  LATTICE_CHECK(count(shape) == numel(), "cannot reshape ", describe(), " to ", count(shape), " elements");
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::rows(int64_t begin, int64_t end) const {
  LATTICE_CHECK(rank() >= 1 && 0 <= begin && begin <= end && end <= shape_[0], "rows [", begin, ", ", end,
                ") out of range for ", describe());
  Tensor t = *this;
  t.shape_[0] = end - begin;
  size_t row_bytes = shape_[0] ? nbytes() / static_cast<size_t>(shape_[0]) : 0;
  t.data_ = static_cast<char*>(data_) + row_bytes * static_cast<size_t>(begin);
  return t;
}

Tensor Tensor::clone() const { return to(device_); }

Tensor Tensor::to(Device device) const {
  Tensor t = empty(shape_, dtype_, device);
  t.copy_from(*this);
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  LATTICE_CHECK(src.dtype_ == dtype_ && src.numel() == numel(), "cannot copy ", src.describe(), " into ",
                describe());
  if (!nbytes()) return;
  if (device_.is_cpu() && src.device_.is_cpu())
    std::memcpy(data_, src.data_, nbytes());
  else
    device_memory(device_.is_cpu() ? src.device_ : device_).copy(data_, device_, src.data_, src.device_, nbytes());
}

}  // namespace lattice
