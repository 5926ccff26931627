// WeightLoader: each tensor-parallel rank's slice in the asked dtype, fused projections, the first_rank bias
// rule, and generated dummy weights. References are cut out of the checkpoint's bytes here, independently of
// the loader's slice arithmetic; dummy values are recomputed from their documented formula with a sequential
// SplitMix64 generator. The GPU cases (device == host, bit for bit) skip without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "engine/weights/safetensors_writer.h"
#include "kernels/cpu/convert.h"
#include "models/dummy_weights.h"
#include "models/weight_loader.h"
#include "tests/test_utils.h"

#ifdef LATTICE_HAVE_CUDA
#include "engine/cuda/device_context.h"
#include "engine/weights/device_upload.h"
#include "tests/cuda/cuda_test_utils.h"
#endif

namespace lattice {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

const std::string kQ = "model.layers.{layer}.self_attn.q_proj.weight";
const std::string kK = "model.layers.{layer}.self_attn.k_proj.weight";
const std::string kV = "model.layers.{layer}.self_attn.v_proj.weight";
const std::string kO = "model.layers.{layer}.self_attn.o_proj.weight";
const std::string kGate = "model.layers.{layer}.mlp.gate_proj.weight";
const std::string kUp = "model.layers.{layer}.mlp.up_proj.weight";
const std::string kBq = "model.layers.{layer}.self_attn.q_proj.bias";
const std::string kBk = "model.layers.{layer}.self_attn.k_proj.bias";
const std::string kBv = "model.layers.{layer}.self_attn.v_proj.bias";
const std::string kBo = "model.layers.{layer}.self_attn.o_proj.bias";
const std::string kNorm = "model.layers.{layer}.input_layernorm.weight";

// 8 query heads over 2 KV heads of 4 dims: tp 4 replicates each KV head on two ranks. Llama's attention_bias
// adds q/k/v biases and o_proj's bias.
ModelConfig small_config() {
  return ModelConfig::from_json_text(R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 64,
      "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 8,
      "num_key_value_heads": 2, "max_position_embeddings": 64, "attention_bias": true})",
                                     "small config");
}

Bytes bytes_of(const Tensor& t) {
  const Tensor host = t.device().is_cpu() ? t : t.to(Device::cpu());
  const auto* p = static_cast<const uint8_t*>(host.raw());
  return Bytes(p, p + host.nbytes());
}

Bytes concat(const std::vector<Bytes>& parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Rows [begin, end) of a stored 1-D or 2-D tensor, and columns [begin, end) of a stored 2-D one, as bytes.
Bytes stored_rows(const Tensor& t, int64_t begin, int64_t end) {
  const size_t row = t.nbytes() / static_cast<size_t>(t.dim(0));
  const auto* p = static_cast<const uint8_t*>(t.raw());
  return Bytes(p + begin * row, p + end * row);
}
Bytes stored_cols(const Tensor& t, int64_t begin, int64_t end) {
  const size_t elem = dtype_size(t.dtype());
  const auto* p = static_cast<const uint8_t*>(t.raw());
  Bytes out;
  for (int64_t r = 0; r < t.dim(0); ++r)
    out.insert(out.end(), p + (r * t.dim(1) + begin) * elem, p + (r * t.dim(1) + end) * elem);
  return out;
}

// The first KV head and the number of them that TP rank `rank` of `tp` uses.
std::pair<int64_t, int64_t> kv_heads_of(int rank, int tp, int64_t kv_heads) {
  if (kv_heads >= tp) return {rank * (kv_heads / tp), kv_heads / tp};
  return {rank / (tp / kv_heads), 1};
}

// Writes DIR/model.safetensors with normal(0, 1) values of the config's whole table, as `dtype`.
void write_checkpoint(const fs::path& dir, const ModelConfig& c, DType dtype) {
  fs::create_directories(dir);
  std::mt19937 rng(7);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const WeightSpec& s : llama_weight_table(c))
    for (int64_t l = 0; l < (s.per_layer ? c.num_layers : 1); ++l) {
      const Tensor f = testing::random_tensor(s.shape, rng);
      Tensor t = dtype == DType::f32 ? f : Tensor::empty(s.shape, dtype);
      for (int64_t i = 0; dtype != DType::f32 && i < f.numel(); ++i)
        static_cast<uint16_t*>(t.raw())[i] = dtype == DType::bf16 ? kernels::cpu::f32_to_bf16(f.data<float>()[i])
                                                                  : kernels::cpu::f32_to_f16(f.data<float>()[i]);
      tensors.emplace_back(weight_name(s, l), t);
    }
  write_safetensors((dir / "model.safetensors").string(), tensors);
}

class WeightLoading : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lattice_weights_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  WeightLoader loader(const WeightSource& source, const ModelConfig& c, int rank, int tp,
                      const std::vector<WeightRef>& wanted = {}, WeightLoader::Progress progress = {}) {
    return WeightLoader(source, llama_weight_table(c), c.num_layers, c.num_kv_heads, {rank, tp}, wanted,
                        std::move(progress));
  }

  fs::path dir_;
};

TEST_F(WeightLoading, FusedProjectionsStackEachRanksSlices) {
  const ModelConfig c = small_config();
  write_checkpoint(dir_, c, DType::f32);
  const Checkpoint ckpt = Checkpoint::open(dir_.string());
  const CheckpointWeights source(ckpt);
  const int64_t hd = c.head_dim, layer = 1;
  auto stored = [&](const std::string& pattern) {
    return ckpt.tensor(weight_name({pattern, {}, SplitRule::replicated, true}, layer));
  };
  for (int tp : {1, 2, 4}) {
    for (int rank = 0; rank < tp; ++rank) {
      SCOPED_TRACE("tp " + std::to_string(tp) + " rank " + std::to_string(rank));
      WeightLoader w = loader(source, c, rank, tp);
      const auto [kv_first, kv_count] = kv_heads_of(rank, tp, c.num_kv_heads);
      const int64_t q_rows = c.num_heads / tp * hd, inter = c.intermediate_size / tp;
      const std::vector<std::pair<std::vector<std::string>, bool>> qkv = {{{kQ, kK, kV}, false},
                                                                          {{kBq, kBk, kBv}, true}};
      for (const auto& [weights, is_bias] : qkv) {
        const Tensor q = w.load(weights[0], layer), k = w.load(weights[1], layer), v = w.load(weights[2], layer);
        // Each part is this rank's rows of the stored tensor: a block of query heads, its KV heads.
        EXPECT_EQ(bytes_of(q), stored_rows(stored(weights[0]), rank * q_rows, (rank + 1) * q_rows));
        EXPECT_EQ(bytes_of(k), stored_rows(stored(weights[1]), kv_first * hd, (kv_first + kv_count) * hd));
        EXPECT_EQ(bytes_of(v), stored_rows(stored(weights[2]), kv_first * hd, (kv_first + kv_count) * hd));
        const Tensor fused = w.load_fused(weights, layer, DType::f32, Device::cpu());
        const std::vector<int64_t> want_shape =
            is_bias ? std::vector<int64_t>{q_rows + 2 * kv_count * hd}
                    : std::vector<int64_t>{q_rows + 2 * kv_count * hd, c.hidden_size};
        EXPECT_EQ(fused.shape(), want_shape);
        EXPECT_EQ(bytes_of(fused), concat({bytes_of(q), bytes_of(k), bytes_of(v)}));
      }
      const Tensor gate = w.load(kGate, layer), up = w.load(kUp, layer);
      EXPECT_EQ(bytes_of(gate), stored_rows(stored(kGate), rank * inter, (rank + 1) * inter));
      const Tensor gate_up = w.load_fused({kGate, kUp}, layer, DType::f32, Device::cpu());
      EXPECT_EQ(gate_up.shape(), (std::vector<int64_t>{2 * inter, c.hidden_size}));
      EXPECT_EQ(bytes_of(gate_up), concat({bytes_of(gate), bytes_of(up)}));
      // Row-parallel o_proj takes a column block; it cannot be stacked along dimension 0.
      const int64_t o_cols = c.num_heads * hd / tp;
      EXPECT_EQ(bytes_of(w.load(kO, layer)), stored_cols(stored(kO), rank * o_cols, (rank + 1) * o_cols));
      if (tp > 1) {
        EXPECT_THROW(w.load_fused({kGate, kO}, layer, DType::f32, Device::cpu()), Error);
      }
      EXPECT_THROW(w.load(kGate, layer, DType::i32), Error);
    }
  }
}

TEST_F(WeightLoading, OProjBiasIsHeldByTpRankZeroOnlyAndProgressCountsHeldBytes) {
  const ModelConfig c = small_config();
  write_checkpoint(dir_, c, DType::bf16);
  const Checkpoint ckpt = Checkpoint::open(dir_.string());
  const CheckpointWeights source(ckpt);
  std::vector<WeightRef> wanted;
  for (const WeightSpec& s : llama_weight_table(c))
    for (int64_t l = 0; l < (s.per_layer ? c.num_layers : 1); ++l) wanted.push_back({s.pattern, s.per_layer ? l : -1});
  for (int rank = 0; rank < 2; ++rank) {
    size_t done = 0, total = 0;
    WeightLoader w = loader(source, c, rank, 2, wanted, [&](size_t d, size_t t) { done = d, total = t; });
    EXPECT_EQ(w.holds(kBo), rank == 0);
    EXPECT_TRUE(w.holds(kNorm));
    size_t loaded_bytes = 0;
    for (const WeightRef& ref : wanted) {
      const Tensor t = w.load(ref.pattern, ref.layer, DType::bf16);
      EXPECT_EQ(t.defined(), ref.pattern != kBo || rank == 0) << ref.pattern;
      if (t.defined()) loaded_bytes += t.nbytes();
    }
    EXPECT_EQ(done, total);
    EXPECT_EQ(total, loaded_bytes);  // bf16 stored and loaded: the same bytes
    if (rank == 1) {
      EXPECT_THROW(w.load_fused({kBo}, 0, DType::bf16, Device::cpu()), Error);
    }
  }
}

TEST_F(WeightLoading, Bf16CheckpointLoadsBitIdenticalAsBf16AndAsCpuConvertedF32) {
  const Checkpoint ckpt = Checkpoint::open(testing::data_dir() + "/tiny-llama/bf16");
  EXPECT_EQ(checkpoint_half_type(ckpt), DType::bf16);
  EXPECT_EQ(checkpoint_half_type(Checkpoint::open(testing::data_dir() + "/tiny-llama/f32")), DType::f32);
  const ModelConfig c = ModelConfig::from_file(testing::data_dir() + "/tiny-llama/bf16/config.json");
  const CheckpointWeights source(ckpt);
  WeightLoader w = loader(source, c, 1, 2);
  const Tensor q_file = ckpt.tensor("model.layers.3.self_attn.q_proj.weight");  // [128, 128], rows 64..128
  const Tensor o_file = ckpt.tensor("model.layers.3.self_attn.o_proj.weight");  // columns 64..128
  const Tensor norm_file = ckpt.tensor("model.norm.weight");                    // replicated
  const std::vector<std::pair<Tensor, Bytes>> cases = {
      {w.load(kQ, 3, DType::bf16), stored_rows(q_file, 64, 128)},
      {w.load(kO, 3, DType::bf16), stored_cols(o_file, 64, 128)},
      {w.load("model.norm.weight", -1, DType::bf16), stored_rows(norm_file, 0, 128)}};
  for (const auto& [got, want] : cases) {
    EXPECT_EQ(got.dtype(), DType::bf16);
    EXPECT_EQ(bytes_of(got), want);
  }
  // As f32: kernels/cpu/convert of the same bits.
  const Tensor o_f32 = w.load(kO, 3);
  const Bytes o_bits = stored_cols(o_file, 64, 128);
  std::vector<uint16_t> halves(o_bits.size() / 2);
  std::memcpy(halves.data(), o_bits.data(), o_bits.size());
  std::vector<float> want(halves.size());
  kernels::cpu::bf16_to_f32(halves.data(), want.data(), static_cast<int64_t>(halves.size()));
  ASSERT_EQ(o_f32.numel(), static_cast<int64_t>(want.size()));
  EXPECT_TRUE(testing::all_close(o_f32.data<float>(), want.data(), o_f32.numel(), 0, 0));
}

TEST_F(WeightLoading, F32CheckpointRoundsToNearestEvenWhenLoadedAsHalf) {
  const ModelConfig c = small_config();
  write_checkpoint(dir_, c, DType::f16);
  EXPECT_EQ(checkpoint_half_type(Checkpoint::open(dir_.string())), DType::f16);
  // Ties go to the even neighbour, anything past the halfway point away from it (values that overflow to
  // infinity are refused: NonFiniteWeightsAreRefused...).
  const std::vector<std::tuple<uint32_t, uint16_t, uint16_t>> cases = {
      // f32 bits, bf16 bits, f16 bits
      {0x3f800000u, 0x3f80, 0x3c00},  // 1
      {0x3f808000u, 0x3f80, 0x3c04},  // 1 + 2^-8: bf16 tie, to even 1; exact in f16 (1 + 4 * 2^-10)
      {0x3f818000u, 0x3f82, 0x3c0c},  // 1 + 3 * 2^-8: bf16 tie, to even 1 + 2^-6
      {0x3f808008u, 0x3f81, 0x3c04},  // just past the bf16 tie: up
      {0xbf808000u, 0xbf80, 0xbc04},  // -(1 + 2^-8): ties are symmetric
      {0x3f801000u, 0x3f80, 0x3c00},  // 1 + 2^-11: f16 tie, to even 1
      {0x3f803000u, 0x3f80, 0x3c02},  // 1 + 3 * 2^-11: f16 tie, to even 1 + 2^-9
  };
  std::vector<float> values(c.hidden_size, 0.0f);
  for (size_t i = 0; i < cases.size(); ++i) std::memcpy(&values[i], &std::get<0>(cases[i]), 4);
  std::vector<std::pair<std::string, Tensor>> tensors;
  const std::vector<WeightSpec> table = llama_weight_table(c);
  for (const WeightSpec& s : table)
    for (int64_t l = 0; l < (s.per_layer ? c.num_layers : 1); ++l)
      tensors.emplace_back(weight_name(s, l), s.pattern == "model.norm.weight"
                                                  ? Tensor::from_vector(values, {c.hidden_size})
                                                  : Tensor::zeros(s.shape, DType::f32));
  write_safetensors((dir_ / "model.safetensors").string(), tensors);
  const Checkpoint ckpt = Checkpoint::open(dir_.string());
  const CheckpointWeights source(ckpt);
  WeightLoader w = loader(source, c, 0, 1);
  const Tensor bf16 = w.load("model.norm.weight", -1, DType::bf16);
  const Tensor f16 = w.load("model.norm.weight", -1, DType::f16);
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(static_cast<const uint16_t*>(bf16.raw())[i], std::get<1>(cases[i])) << "case " << i;
    EXPECT_EQ(static_cast<const uint16_t*>(f16.raw())[i], std::get<2>(cases[i])) << "case " << i;
  }
}

// Rewrites DIR/model.safetensors with element `index` of weight `name` set to the bits `bits` (of its dtype).
void poke_checkpoint(const fs::path& dir, const std::string& name, int64_t index, uint32_t bits) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  {
    const Checkpoint ckpt = Checkpoint::open(dir.string());
    for (const std::string& n : ckpt.names()) tensors.emplace_back(n, ckpt.tensor(n).clone());
  }
  for (auto& [n, t] : tensors)
    if (n == name) std::memcpy(static_cast<char*>(t.raw()) + index * dtype_size(t.dtype()), &bits, dtype_size(t.dtype()));
  write_safetensors((dir / "model.safetensors").string(), tensors);
}

// The error message of loading `pattern` of `layer` as `dtype` through TP rank `rank` of `tp`, or "".
std::string load_error(const fs::path& dir, const ModelConfig& c, const std::string& pattern, int64_t layer,
                       DType dtype, int rank = 0, int tp = 1) {
  const Checkpoint ckpt = Checkpoint::open(dir.string());
  const CheckpointWeights source(ckpt);
  try {
    WeightLoader(source, llama_weight_table(c), c.num_layers, c.num_kv_heads, {rank, tp}, {}, {})
        .load(pattern, layer, dtype);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST_F(WeightLoading, NonFiniteWeightsAreRefusedNamingTheElement) {
  const ModelConfig c = small_config();
  const std::string gate = "model.layers.1.mlp.gate_proj.weight";  // [48, 32]: rows 0..23 on TP rank 0 of 2
  struct Case {
    DType dtype;
    uint32_t bits;
    const char* kind;
  };
  for (const Case& k : {Case{DType::f32, 0x7fc00000u, "NaN"}, Case{DType::f32, 0x7f800000u, "inf"},
                        Case{DType::bf16, 0xff80u, "-inf"}, Case{DType::bf16, 0x7fc1u, "NaN"},
                        Case{DType::f16, 0x7c00u, "inf"}, Case{DType::f16, 0xfe00u, "NaN"}}) {
    SCOPED_TRACE(std::string(dtype_name(k.dtype)) + " " + k.kind);
    fs::remove_all(dir_);
    write_checkpoint(dir_, c, k.dtype);
    poke_checkpoint(dir_, gate, 5 * 32 + 7, k.bits);
    const std::string want = "weight '" + gate + "' holds " + k.kind + " at element 167 (index [5, 7] of [48, 32])";
    for (DType as : {DType::f32, DType::bf16, DType::f16}) {
      EXPECT_NE(load_error(dir_, c, kGate, 1, as).find(want), std::string::npos) << load_error(dir_, c, kGate, 1, as);
      EXPECT_NE(load_error(dir_, c, kGate, 1, as, 0, 2).find(want), std::string::npos);  // rank 0 holds row 5
      EXPECT_EQ(load_error(dir_, c, kGate, 1, as, 1, 2), "");  // rank 1 does not read it
    }
    EXPECT_EQ(load_error(dir_, c, kGate, 0, k.dtype), "");  // the same weight of another layer is finite
  }
  // A finite f32 value past f16's range would load as inf: refused as f16, loaded as bf16 or f32.
  fs::remove_all(dir_);
  write_checkpoint(dir_, c, DType::f32);
  float big = 1e5f;
  uint32_t big_bits;
  std::memcpy(&big_bits, &big, 4);
  poke_checkpoint(dir_, gate, 40 * 32, big_bits);
  const std::string e = load_error(dir_, c, kGate, 1, DType::f16);
  EXPECT_NE(e.find("weight '" + gate + "' element 1280 (index [40, 0] of [48, 32]) is 100000, past the range of f16"),
            std::string::npos)
      << e;
  EXPECT_EQ(load_error(dir_, c, kGate, 1, DType::bf16), "");
  EXPECT_EQ(load_error(dir_, c, kGate, 1, DType::f32), "");
}

// A checkpoint with tensors the config never reads (more layers than num_hidden_layers) is refused whatever
// layers a rank loads; tensors Hugging Face exports carry without use are not.
TEST_F(WeightLoading, TensorsTheConfigDoesNotUseAreRefused) {
  const ModelConfig c = small_config();
  write_checkpoint(dir_, c, DType::f32);
  {
    std::vector<std::pair<std::string, Tensor>> tensors;
    const Checkpoint ckpt = Checkpoint::open(dir_.string());
    for (const std::string& n : ckpt.names()) tensors.emplace_back(n, ckpt.tensor(n).clone());
    tensors.emplace_back("model.layers.0.self_attn.rotary_emb.inv_freq", Tensor::zeros({2}, DType::f32));
    write_safetensors((dir_ / "model.safetensors").string(), tensors);
  }
  const Checkpoint ckpt = Checkpoint::open(dir_.string());
  const CheckpointWeights source(ckpt);
  EXPECT_NO_THROW(loader(source, c, 0, 1));
  ModelConfig one_layer = c;
  one_layer.num_layers = 1;
  // A pipeline stage that loads layer 0 only is refused too: the check is the checkpoint against the config.
  try {
    WeightLoader(source, llama_weight_table(one_layer), 1, c.num_kv_heads, {0, 1}, {{kNorm, 0}}, {});
    ADD_FAILURE() << "a checkpoint with an unused layer loaded";
  } catch (const Error& e) {
    const std::string want = "checkpoint holds tensors not used by this config (num_hidden_layers 1): "
                             "model.layers.1.input_layernorm.weight, model.layers.1.mlp.down_proj.weight, "
                             "model.layers.1.mlp.gate_proj.weight, model.layers.1.mlp.up_proj.weight, ... (13 tensors)";
    EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
  }
}

// The documented dummy value of element i of weight `name`, from a sequential SplitMix64 generator.
std::vector<float> dummy_reference(const std::string& name, int64_t count, float offset, float scale, uint64_t seed) {
  auto mix = [](uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  uint64_t fnv = 0xcbf29ce484222325ull;
  for (unsigned char ch : name) fnv = (fnv ^ ch) * 0x100000001b3ull;
  uint64_t state = mix(seed ^ fnv);
  std::vector<float> out(count);
  for (int64_t i = 0; i < count; ++i) {
    state += 0x9e3779b97f4a7c15ull;
    const double u = static_cast<double>(mix(state) >> 40) / (1 << 23) - 1.0;  // exact in f32
    out[i] = static_cast<float>(std::fma(u, static_cast<double>(scale), static_cast<double>(offset)));
  }
  return out;
}

TEST_F(WeightLoading, DummyWeightsFollowTheDocumentedHashWithTheTablesShapes) {
  const ModelConfig c = small_config();
  const DummyWeights source(DType::bf16, 5), same(DType::bf16, 5), other(DType::bf16, 6);
  WeightLoader w = loader(source, c, 0, 1), w_same = loader(same, c, 0, 1), w_other = loader(other, c, 0, 1);
  for (const WeightSpec& s : llama_weight_table(c)) {
    const int64_t layer = s.per_layer ? 1 : -1;
    const Tensor t = w.load(s.pattern, layer);
    EXPECT_EQ(t.shape(), s.shape) << s.pattern;
    EXPECT_EQ(bytes_of(t), bytes_of(w_same.load(s.pattern, layer))) << s.pattern;
    EXPECT_NE(bytes_of(t), bytes_of(w_other.load(s.pattern, layer))) << s.pattern;
  }
  // f32 values (a whole matrix and a whole norm): offset + u * scale is exact in double here (u has
  // 24 significant bits, scale 24, the sum spans at most 51), so its one rounding to f32 is the f32 fma's.
  const std::string down = "model.layers.1.mlp.down_proj.weight", norm = "model.layers.1.input_layernorm.weight";
  const Tensor d = w.load("model.layers.{layer}.mlp.down_proj.weight", 1);
  const std::vector<float> d_want = dummy_reference(down, d.numel(), 0.0f, static_cast<float>(1 / std::sqrt(48.0)), 5);
  EXPECT_TRUE(testing::all_close(d.data<float>(), d_want.data(), d.numel(), 0, 0));
  const Tensor n = w.load(kNorm, 1);
  const std::vector<float> n_want = dummy_reference(norm, c.hidden_size, 1.0f, 0.1f, 5);
  EXPECT_TRUE(testing::all_close(n.data<float>(), n_want.data(), c.hidden_size, 0, 0));
  // As bf16: the same values rounded to nearest even.
  const Tensor d16 = w.load("model.layers.{layer}.mlp.down_proj.weight", 1, DType::bf16);
  for (int64_t i = 0; i < d16.numel(); ++i)
    ASSERT_EQ(static_cast<const uint16_t*>(d16.raw())[i], kernels::cpu::f32_to_bf16(d_want[i])) << i;
}

TEST_F(WeightLoading, DummyTpSlicesAreSlicesOfTheSameModel) {
  const ModelConfig c = small_config();
  const DummyWeights source(DType::f32);
  WeightLoader whole = loader(source, c, 0, 1);
  for (int tp : {2, 4}) {
    for (int rank = 0; rank < tp; ++rank) {
      SCOPED_TRACE("tp " + std::to_string(tp) + " rank " + std::to_string(rank));
      WeightLoader w = loader(source, c, rank, tp);
      const auto [kv_first, kv_count] = kv_heads_of(rank, tp, c.num_kv_heads);
      const int64_t inter = c.intermediate_size / tp, hd = c.head_dim;
      EXPECT_EQ(bytes_of(w.load(kK, 0)), stored_rows(whole.load(kK, 0), kv_first * hd, (kv_first + kv_count) * hd));
      EXPECT_EQ(bytes_of(w.load(kGate, 0)), stored_rows(whole.load(kGate, 0), rank * inter, (rank + 1) * inter));
      EXPECT_EQ(bytes_of(w.load("model.layers.{layer}.mlp.down_proj.weight", 0)),
                stored_cols(whole.load("model.layers.{layer}.mlp.down_proj.weight", 0), rank * inter,
                            (rank + 1) * inter));
    }
  }
}

#ifdef LATTICE_HAVE_CUDA

TEST_F(WeightLoading, GpuLoadsEqualHostLoadsBitForBit) {
  LATTICE_SKIP_WITHOUT_CUDA();
  DeviceContext ctx(0);
  const Checkpoint ckpt = Checkpoint::open(testing::data_dir() + "/tiny-llama/bf16");
  const ModelConfig c = ModelConfig::from_file(testing::data_dir() + "/tiny-llama/bf16/config.json");
  const CheckpointWeights file(ckpt);
  const DummyWeights dummy(DType::bf16, 3);
  for (const WeightSource* source : {static_cast<const WeightSource*>(&file), static_cast<const WeightSource*>(&dummy)}) {
    WeightLoader w = loader(*source, c, 1, 2);
    for (DType dtype : {DType::bf16, DType::f32, DType::f16}) {
      SCOPED_TRACE(std::string(source == &file ? "checkpoint " : "dummy ") + dtype_name(dtype));
      for (const std::string& pattern : {kQ, kK, kO, kNorm}) {
        const Tensor gpu = w.load(pattern, 2, dtype, ctx.device());
        EXPECT_EQ(gpu.device(), ctx.device());
        EXPECT_EQ(bytes_of(gpu), bytes_of(w.load(pattern, 2, dtype, Device::cpu()))) << pattern;
      }
      EXPECT_EQ(bytes_of(w.load_fused({kQ, kK, kV}, 2, dtype, ctx.device())),
                bytes_of(w.load_fused({kQ, kK, kV}, 2, dtype, Device::cpu())));
    }
  }
}

TEST_F(WeightLoading, GpuUploadsLargerThanTheStagingBufferArriveWhole) {
  LATTICE_SKIP_WITHOUT_CUDA();
  DeviceContext ctx(0);
  DeviceUploader uploader(0, 4096);  // two 2 KiB halves: 1 MiB takes 512 chunks
  const size_t bytes = size_t{1} << 20;
  std::vector<uint32_t> want(bytes / 4);
  for (size_t i = 0; i < want.size(); ++i) want[i] = static_cast<uint32_t>(i * 2654435761u);
  Tensor dst = Tensor::empty({static_cast<int64_t>(bytes)}, DType::u8, ctx.device());
  size_t produced = 0;
  uploader.upload(dst.raw(), bytes, 4, [&](void* host, size_t offset, size_t n) {
    EXPECT_EQ(offset, produced);
    EXPECT_LE(n, 2048u);
    std::memcpy(host, reinterpret_cast<const char*>(want.data()) + offset, n);
    produced += n;
  });
  EXPECT_EQ(produced, bytes);
  const Bytes got = bytes_of(dst);
  EXPECT_EQ(std::memcmp(got.data(), want.data(), bytes), 0);
}

#endif  // LATTICE_HAVE_CUDA

}  // namespace
}  // namespace lattice
