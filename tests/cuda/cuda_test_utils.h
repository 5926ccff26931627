// Helpers for tests/cuda: the skip-without-GPU guard, host views of device element types, NaN-poisoned
// device buffers and seeded fresh random draws.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cpu/convert.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_info.h"
#include "tests/test_utils.h"

// First statement of every CUDA test: skip (never pass) when no device is visible, with the runtime's reason.
#define LATTICE_SKIP_WITHOUT_CUDA()                                                       \
  do {                                                                                    \
    const auto& cuda_info_ = ::lattice::kernels::cuda::device_info();                     \
    if (cuda_info_.count == 0) GTEST_SKIP() << "no CUDA device visible: " << cuda_info_.reason; \
  } while (0)

namespace lattice::testing::cuda {

// Host representation of a device element type: the bits it is stored as, and conversions through f32.
template <typename T> struct Elem;
template <> struct Elem<float> {
  using Bits = float;
  static float to_f32(Bits b) { return b; }
  static Bits from_f32(float f) { return f; }
};
template <> struct Elem<__nv_bfloat16> {
  using Bits = uint16_t;
  static float to_f32(Bits b) { return kernels::cpu::bf16_to_f32(b); }
  static Bits from_f32(float f) { return kernels::cpu::f32_to_bf16(f); }
};
template <> struct Elem<__half> {
  using Bits = uint16_t;
  static float to_f32(Bits b) { return kernels::cpu::f16_to_f32(b); }
  static Bits from_f32(float f) { return kernels::cpu::f32_to_f16(f); }
};

// Per-dtype tolerances for results whose only difference from the CPU op is summation order in f32 and the
// final rounding to T (inputs are rounded to T before both ops see them).
//  f32: a few ulp of f32 from a different summation order / expf (2^-23 ~ 1.2e-7 per op): 1e-5.
//  bf16: 8 significant bits, so rounding the output alone costs up to 2^-8 ~ 3.9e-3 relative: 1e-2.
//  f16: 11 significant bits, rounding costs up to 2^-11 ~ 4.9e-4 relative: 2e-3.
template <typename T> struct Tolerance;
template <> struct Tolerance<float> { static constexpr double rtol = 1e-5, atol = 1e-5; };
template <> struct Tolerance<__nv_bfloat16> { static constexpr double rtol = 1e-2, atol = 1e-2; };
template <> struct Tolerance<__half> { static constexpr double rtol = 2e-3, atol = 2e-3; };

template <typename T> const char* dtype_name();
template <> inline const char* dtype_name<float>() { return "f32"; }
template <> inline const char* dtype_name<__nv_bfloat16>() { return "bf16"; }
template <> inline const char* dtype_name<__half>() { return "f16"; }

// A fresh seed per run (LATTICE_TEST_SEED overrides it); tests print it through SCOPED_TRACE.
inline uint32_t fresh_seed() {
  if (const char* env = std::getenv("LATTICE_TEST_SEED")) return static_cast<uint32_t>(std::strtoul(env, nullptr, 10));
  return std::random_device{}();
}

inline std::vector<float> random_values(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Rounds values to what T can hold, so the CPU op and the device op see identical inputs.
template <typename T> std::vector<float> round_to(std::vector<float> v) {
  for (auto& x : v) x = Elem<T>::to_f32(Elem<T>::from_f32(x));
  return v;
}

// Device memory for n elements of T, poisoned with 0xFF bytes (NaN for f32/f16/bf16, -1 for integers) so that
// any element a kernel forgets to write fails the comparison.
template <typename T> class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) {
    CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ptr_), sizeof(T) * std::max<size_t>(n, 1)));
    CUDA_CHECK(cudaMemset(ptr_, 0xFF, sizeof(T) * n));
  }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(DeviceBuffer&& other) noexcept : ptr_(std::exchange(other.ptr_, nullptr)), n_(other.n_) {}
  DeviceBuffer& operator=(DeviceBuffer&&) = delete;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return ptr_; }
  size_t size() const { return n_; }

  // Raw elements (integers, or the bit patterns of f16/bf16).
  template <typename B> void upload_raw(const std::vector<B>& host) {
    static_assert(sizeof(B) == sizeof(T));
    EXPECT_EQ(host.size(), n_);
    CUDA_CHECK(cudaMemcpy(ptr_, host.data(), sizeof(T) * n_, cudaMemcpyHostToDevice));
  }
  template <typename B> std::vector<B> download_raw() const {
    static_assert(sizeof(B) == sizeof(T));
    std::vector<B> host(n_);
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaMemcpy(host.data(), ptr_, sizeof(T) * n_, cudaMemcpyDeviceToHost));
    return host;
  }
  // Floating-point elements through f32 (rounded to T on the way in).
  void upload(const std::vector<float>& values) {
    std::vector<typename Elem<T>::Bits> bits(values.size());
    for (size_t i = 0; i < values.size(); ++i) bits[i] = Elem<T>::from_f32(values[i]);
    upload_raw(bits);
  }
  std::vector<float> download() const {
    const auto bits = download_raw<typename Elem<T>::Bits>();
    std::vector<float> out(bits.size());
    for (size_t i = 0; i < bits.size(); ++i) out[i] = Elem<T>::to_f32(bits[i]);
    return out;
  }

 private:
  T* ptr_ = nullptr;
  size_t n_;
};

template <typename T> DeviceBuffer<T> to_device(const std::vector<float>& values) {
  DeviceBuffer<T> buffer(values.size());
  buffer.upload(values);
  return buffer;
}

template <typename I> DeviceBuffer<I> ints_to_device(const std::vector<I>& values) {
  DeviceBuffer<I> buffer(values.size());
  buffer.upload_raw(values);
  return buffer;
}

}  // namespace lattice::testing::cuda
