// The safetensors reader: valid files (single and sharded) load; every kind of corruption is a clear error
// naming the file, the tensor and the problem.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "engine/weights/safetensors.h"
#include "engine/weights/safetensors_writer.h"
#include "models/weight_loader.h"
#include "tests/test_utils.h"

namespace lattice {
namespace {

namespace fs = std::filesystem;

class Safetensors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lattice_st_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A raw file from a header string and `data_bytes` bytes of payload.
  std::string raw_file(const std::string& name, const std::string& header, size_t data_bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream out(path, std::ios::binary);
    const uint64_t len = header.size();
    out.write(reinterpret_cast<const char*>(&len), 8);
    out << header << std::string(data_bytes, '\0');
    return path;
  }

  // Expects opening `path` to fail with a message containing every fragment.
  void expect_error(const std::string& path, const std::vector<std::string>& fragments) {
    try {
      SafetensorsFile::open(path);
      ADD_FAILURE() << "opening " << path << " should fail";
    } catch (const Error& e) {
      for (const auto& f : fragments)
        EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << "'" << f << "' not in: " << e.what();
    }
  }

  fs::path dir_;
};

TEST_F(Safetensors, WrittenTensorsReadBackAsBorrowedViews) {
  std::mt19937 rng(1);
  Tensor a = testing::random_tensor({3, 5}, rng);
  Tensor b = Tensor::from_vector(std::vector<int32_t>{1, 2, 3}, {3});
  const std::string path = (dir_ / "model.safetensors").string();
  write_safetensors(path, {{"a", a}, {"b", b}});
  auto file = SafetensorsFile::open(path);
  Tensor ra = file->tensor("a");
  EXPECT_EQ(ra.shape(), a.shape());
  EXPECT_EQ(ra.dtype(), DType::f32);
  EXPECT_TRUE(testing::all_close(ra.data<float>(), a.data<float>(), a.numel(), 0, 0));
  EXPECT_EQ(file->tensor("b").data<int32_t>()[2], 3);
  file.reset();  // the view keeps the mapping alive
  EXPECT_EQ(ra.data<float>()[14], a.data<float>()[14]);
}

TEST_F(Safetensors, ShardedCheckpointFollowsTheIndex) {
  std::mt19937 rng(2);
  Tensor a = testing::random_tensor({4}, rng), b = testing::random_tensor({2, 2}, rng);
  write_safetensors((dir_ / "model-00001-of-00002.safetensors").string(), {{"a", a}});
  write_safetensors((dir_ / "model-00002-of-00002.safetensors").string(), {{"b", b}});
  std::ofstream(dir_ / "model.safetensors.index.json")
      << R"({"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})";
  Checkpoint ckpt = Checkpoint::open(dir_.string());
  EXPECT_EQ(ckpt.names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ckpt.tensor("b").data<float>()[3], b.data<float>()[3]);
  EXPECT_NE(ckpt.file_of("b").find("00002"), std::string::npos);
  EXPECT_THROW(ckpt.tensor("c"), Error);
}

TEST_F(Safetensors, IndexPointingAtTheWrongShardIsAnError) {
  write_safetensors((dir_ / "s1.safetensors").string(), {{"a", Tensor::zeros({1}, DType::f32)}});
  std::ofstream(dir_ / "model.safetensors.index.json") << R"({"weight_map": {"b": "s1.safetensors"}})";
  EXPECT_THROW(Checkpoint::open(dir_.string()), Error);
}

TEST_F(Safetensors, TruncatedFile) {
  const std::string path = (dir_ / "t.safetensors").string();
  write_safetensors(path, {{"w", Tensor::zeros({64}, DType::f32)}});
  fs::resize_file(path, fs::file_size(path) - 10);
  expect_error(path, {"t.safetensors", "'w'", "past the"});
  fs::resize_file(path, 4);
  expect_error(path, {"t.safetensors", "truncated"});
}

TEST_F(Safetensors, HeaderOffsetsPastTheEnd) {
  expect_error(raw_file("o.safetensors", R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 1600]}})", 16),
               {"o.safetensors", "'w'", "past the 16-byte data section"});
  // A header length larger than the file.
  const std::string path = (dir_ / "h.safetensors").string();
  std::ofstream out(path, std::ios::binary);
  const uint64_t len = 1 << 20;
  out.write(reinterpret_cast<const char*>(&len), 8);
  out << "{}";
  out.close();
  expect_error(path, {"h.safetensors", "header length"});
}

TEST_F(Safetensors, DtypeAndSizeMismatch) {
  expect_error(raw_file("m.safetensors", R"({"w": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 16]}})", 16),
               {"m.safetensors", "'w'", "spans 16 bytes", "needs 8"});
  expect_error(raw_file("d.safetensors", R"({"w": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}})", 4),
               {"d.safetensors", "'w'", "unsupported dtype 'F8_E4M3'"});
}

TEST_F(Safetensors, OverlapsBadJsonAndMissingFields) {
  expect_error(raw_file("x.safetensors",
                        R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                            "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                        12),
               {"x.safetensors", "'a'", "'b'", "overlap"});
  expect_error(raw_file("j.safetensors", R"({"a": {"dtype": "F32", )", 0), {"j.safetensors", "not valid JSON"});
  expect_error(raw_file("f.safetensors", R"({"a": {"dtype": "F32"}})", 0), {"f.safetensors", "'a'", "data_offsets"});
  expect_error(raw_file("n.safetensors", R"({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 0]}})", 0),
               {"n.safetensors", "'a'", "negative"});
}

TEST_F(Safetensors, UnalignedDataIsReadCorrectly) {
  // Headers need not be padded; with an odd-length one the bf16 values 1.0, -2.0, 1.5 start at an odd address.
  std::string header = R"({"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}})";
  if (header.size() % 2 == 0) header += ' ';
  const std::string path = (dir_ / "u.safetensors").string();
  std::ofstream out(path, std::ios::binary);
  const uint64_t len = header.size();
  out.write(reinterpret_cast<const char*>(&len), 8);
  out << header;
  const uint16_t values[] = {0x3f80, 0xc000, 0x3fc0};
  out.write(reinterpret_cast<const char*>(values), sizeof(values));
  out.close();
  auto file = SafetensorsFile::open(path);
  const Tensor w = file->tensor("w");
  ASSERT_NE(reinterpret_cast<uintptr_t>(w.raw()) % 2, 0u) << "the test needs misaligned data";
  float got[3];
  convert_to_f32(w.raw(), w.dtype(), got, 3, "w");
  EXPECT_EQ(got[0], 1.0f);
  EXPECT_EQ(got[1], -2.0f);
  EXPECT_EQ(got[2], 1.5f);
}

TEST_F(Safetensors, MissingCheckpointNamesTheDirectory) {
  try {
    Checkpoint::open(dir_.string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir_.string()), std::string::npos);
  }
}

}  // namespace
}  // namespace lattice
