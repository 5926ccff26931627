// ModelConfig's RoPE frequencies against values computed independently from the published formulas.
// (Moved from tests/kernels/ops_test.cc, which no longer links the model library.)
#include <gtest/gtest.h>

#include "models/model_config.h"

namespace lattice {
namespace {

TEST(RopeFrequencies, Llama3RopeScalingMatchesPublishedFormula) {
  // Values computed independently (Python, float64) from the Llama 3.1 rope_scaling formula with
  // theta 500000, factor 8, low 1, high 4, original 8192, head_dim 128.
  ModelConfig c;
  c.head_dim = 128;
  c.rope_theta = 500000.0;
  c.rope_scaling = {"llama3", 8.0, 1.0, 4.0, 8192};
  const std::vector<float> inv = c.rope_inv_freq();
  ASSERT_EQ(inv.size(), 64u);
  // 0 and 20 keep their frequency, 30 and 33 fall in the smoothed band, 45 and 63 are divided by the factor.
  const std::pair<int, double> want[] = {{0, 1.0},           {20, 0.01656044008},     {30, 0.001371893568},
                                         {33, 0.0003126937504}, {45, 1.229763868e-05}, {63, 3.068925989e-07}};
  for (const auto& [i, v] : want) EXPECT_NEAR(inv[i], v, v * 1e-6) << "frequency " << i;
}

}  // namespace
}  // namespace lattice
