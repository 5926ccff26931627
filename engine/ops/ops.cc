#include "engine/ops/ops.h"

#include "engine/ops/device_check.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/rope.h"

namespace lattice::ops {

void embedding(const Tensor& table, const Tensor& ids, int64_t first_id, Tensor& out) {
  require_cpu_f32("embedding", "table", table);
  require_cpu_f32("embedding", "out", out);
  require_shape("embedding", "table", table, 2);
  LATTICE_CHECK(ids.dtype() == DType::i32 && ids.rank() == 1, "embedding: ids must be i32[tokens], got ",
                ids.describe());
  LATTICE_CHECK(out.rank() == 2 && out.dim(0) == ids.dim(0) && out.dim(1) == table.dim(1), "embedding: out ",
                out.describe(), " does not match ", ids.dim(0), " tokens x hidden ", table.dim(1));
  kernels::cpu::embedding_f32(table.data<float>(), first_id, table.dim(0), ids.data<int32_t>(), out.data<float>(),
                              ids.dim(0), table.dim(1));
}

void rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) {
  require_cpu_f32("rms_norm", "x", x);
  require_cpu_f32("rms_norm", "weight", weight);
  require_cpu_f32("rms_norm", "out", out);
  require_shape("rms_norm", "x", x, 2);
  LATTICE_CHECK(weight.numel() == x.dim(1), "rms_norm: weight has ", weight.numel(), " elements, x rows have ",
                x.dim(1));
  LATTICE_CHECK(out.shape() == x.shape(), "rms_norm: out ", out.describe(), " differs from x ", x.describe());
  kernels::cpu::rms_norm_f32(x.data<float>(), weight.data<float>(), out.data<float>(), x.dim(0), x.dim(1), eps);
}

void add_(Tensor& x, const Tensor& y) {
  require_cpu_f32("add", "x", x);
  require_cpu_f32("add", "y", y);
  LATTICE_CHECK(x.shape() == y.shape(), "add: ", x.describe(), " vs ", y.describe());
  kernels::cpu::add_inplace_f32(x.data<float>(), y.data<float>(), x.numel());
}

void linear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out) {
  require_cpu_f32("linear", "x", x);
  require_cpu_f32("linear", "weight", weight);
  require_cpu_f32("linear", "out", out);
  require_shape("linear", "x", x, 2);
  require_shape("linear", "weight", weight, 2);
  LATTICE_CHECK(x.dim(1) == weight.dim(1), "linear: x has ", x.dim(1), " features, weight expects ", weight.dim(1));
  LATTICE_CHECK(out.rank() == 2 && out.dim(0) == x.dim(0) && out.dim(1) == weight.dim(0), "linear: out ",
                out.describe(), " should be [", x.dim(0), ", ", weight.dim(0), "]");
  kernels::cpu::gemm_nt_f32(x.data<float>(), weight.data<float>(), out.data<float>(), x.dim(0), weight.dim(0),
                            x.dim(1));
  if (bias) {
    require_cpu_f32("linear", "bias", *bias);
    LATTICE_CHECK(bias->numel() == weight.dim(0), "linear: bias has ", bias->numel(), " elements, weight has ",
                  weight.dim(0), " outputs");
    float* o = out.data<float>();
    const float* b = bias->data<float>();
    for (int64_t r = 0; r < out.dim(0); ++r)
      for (int64_t c = 0; c < out.dim(1); ++c) o[r * out.dim(1) + c] += b[c];
  }
}

void rope_(Tensor& x, const Tensor& positions, const Tensor& inv_freq) {
  require_cpu_f32("rope", "x", x);
  require_cpu_f32("rope", "inv_freq", inv_freq);
  require_shape("rope", "x", x, 3);
  LATTICE_CHECK(positions.dtype() == DType::i32 && positions.numel() == x.dim(0), "rope: positions ",
                positions.describe(), " do not match ", x.dim(0), " tokens");
  LATTICE_CHECK(x.dim(2) % 2 == 0 && inv_freq.numel() == x.dim(2) / 2, "rope: head_dim ", x.dim(2),
                " needs ", x.dim(2) / 2, " frequencies, got ", inv_freq.numel());
  kernels::cpu::rope_f32(x.data<float>(), positions.data<int32_t>(), inv_freq.data<float>(), x.dim(0), x.dim(1),
                         x.dim(2));
}

void silu_mul(const Tensor& gate, const Tensor& up, Tensor& out) {
  require_cpu_f32("silu_mul", "gate", gate);
  require_cpu_f32("silu_mul", "up", up);
  require_cpu_f32("silu_mul", "out", out);
  LATTICE_CHECK(gate.shape() == up.shape() && out.shape() == gate.shape(), "silu_mul: gate ", gate.describe(),
                ", up ", up.describe(), ", out ", out.describe());
  kernels::cpu::silu_mul_f32(gate.data<float>(), up.data<float>(), out.data<float>(), gate.numel());
}

}  // namespace lattice::ops
