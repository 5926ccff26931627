// The gRPC API end to end: a `lattice serve` process on the tiny-llama fixture (127.0.0.1, free ports,
// always stopped), driven through the generated stub: Health, Tokenize, Generate (agrees with lattice
// generate), validation, authentication, and cancellation freeing the sequence.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <regex>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "serve/lattice_service.grpc.pb.h"

extern char** environ;

namespace lattice::serve {
namespace {

const std::string kModel = std::string(LATTICE_TEST_DATA_DIR) + "/tiny-llama/f32";

std::string run(const std::string& command) {
  FILE* p = popen(command.c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  pclose(p);
  return out;
}

class GrpcServe : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    setenv("LATTICE_SERVE_STEP_DELAY_MS", "10", 1);
    setenv("OMP_NUM_THREADS", "1", 1);
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    const char* argv[] = {LATTICE_BINARY, "serve", "--model", kModel.c_str(), "--port", "0", "--grpc-port", "0",
                          "--api-key", "k", "--kv-cache-blocks", "64", nullptr};
    const int spawned = posix_spawn(&pid_, LATTICE_BINARY, &actions, nullptr, const_cast<char**>(argv), environ);
    posix_spawn_file_actions_destroy(&actions);
    ASSERT_EQ(spawned, 0);
    close(fds[1]);
    std::string log;
    const std::regex port_re("gRPC on 127\\.0\\.0\\.1:(\\d+)");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (log.find("ready (model") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd pfd{fds[0], POLLIN, 0};
      if (poll(&pfd, 1, 200) <= 0) continue;
      char buf[1024];
      const ssize_t n = read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      log.append(buf, static_cast<size_t>(n));
    }
    close(fds[0]);  // the server ignores SIGPIPE; later log lines are dropped
    std::smatch m;
    ASSERT_TRUE(std::regex_search(log, m, port_re)) << log;
    ASSERT_NE(log.find("ready (model"), std::string::npos) << log;
    channel_ = grpc::CreateChannel("127.0.0.1:" + m[1].str(), grpc::InsecureChannelCredentials());
  }

  static void TearDownTestSuite() {
    channel_.reset();
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 200 && waitpid(pid_, &status, WNOHANG) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (waitpid(pid_, &status, WNOHANG) == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      ADD_FAILURE() << "server did not stop on SIGTERM";
    } else {
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "server exit status " << status;
    }
  }

  static std::unique_ptr<grpc::ClientContext> authed() {
    auto c = std::make_unique<grpc::ClientContext>();
    c->AddMetadata("authorization", "Bearer k");
    c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return c;
  }

  std::unique_ptr<v1::Lattice::Stub> stub() { return v1::Lattice::NewStub(channel_); }

  static inline pid_t pid_ = 0;
  static inline std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(GrpcServe, HealthReportsReadyAndTheModel) {
  grpc::ClientContext c;
  v1::HealthResponse r;
  ASSERT_TRUE(stub()->Health(&c, v1::HealthRequest(), &r).ok());
  EXPECT_TRUE(r.ready());
  EXPECT_EQ(r.model(), "f32");
}

TEST_F(GrpcServe, TokenizeMatchesTheCli) {
  v1::TokenizeRequest req;
  req.set_text("Hello world");
  req.set_add_special_tokens(true);
  v1::TokenizeResponse r;
  ASSERT_TRUE(stub()->Tokenize(authed().get(), req, &r).ok());
  std::string ids;
  for (int i = 0; i < r.ids_size(); ++i) {
    if (i) ids.append(",");
    ids.append(std::to_string(r.ids(i)));
  }
  EXPECT_EQ(ids + "\n", run(std::string(LATTICE_BINARY) + " tokenize --model " + kModel + " --text 'Hello world'"));
  EXPECT_EQ(r.tokens_size(), r.ids_size());
}

TEST_F(GrpcServe, GenerateStreamsTheSameTokensAsLatticeGenerate) {
  const nlohmann::json ref = nlohmann::json::parse(run(std::string(LATTICE_BINARY) + " generate --model " + kModel +
      " --prompt 'Hello world' --max-tokens 12 --temperature 0 --ignore-eos --json --logprobs 2 2>/dev/null"));
  v1::GenerateRequest req;
  req.set_text("Hello world");
  req.set_max_tokens(12);
  req.set_temperature(0);
  req.set_ignore_eos(true);
  req.set_logprobs(2);
  auto context = authed();
  auto reader = stub()->Generate(context.get(), req);
  v1::GenerateResponse msg;
  std::vector<int32_t> tokens;
  v1::GenerateResponse last;
  while (reader->Read(&msg)) {
    tokens.push_back(msg.token_id());
    EXPECT_EQ(msg.top_logprobs_size(), 2);
    EXPECT_NEAR(msg.logprob(), ref["logprobs"][tokens.size() - 1][0]["logprob"].get<float>(), 1e-4);
    last = msg;
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(tokens, ref["tokens"].get<std::vector<int32_t>>());
  EXPECT_EQ(last.finish_reason(), "length");
  EXPECT_EQ(last.completion_tokens(), 12);
  EXPECT_EQ(last.prompt_tokens(), ref["prompt_tokens"].get<int32_t>());
}

TEST_F(GrpcServe, InvalidRequestsNameTheField) {
  v1::GenerateRequest req;
  req.set_text("hi");
  req.set_temperature(-1);
  auto context = authed();
  auto reader = stub()->Generate(context.get(), req);
  v1::GenerateResponse msg;
  EXPECT_FALSE(reader->Read(&msg));
  const grpc::Status s = reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("temperature"), std::string::npos) << s.error_message();

  v1::GenerateRequest empty;
  auto context2 = authed();
  auto reader2 = stub()->Generate(context2.get(), empty);
  EXPECT_FALSE(reader2->Read(&msg));
  EXPECT_EQ(reader2->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// Issue 12: logits that cannot be sampled (repetition_penalty 1e-40 makes a seen token's logit +inf) end that
// request with INTERNAL naming the position; the server goes on serving.
TEST_F(GrpcServe, NonFiniteLogitsEndTheRequestWithInternal) {
  v1::GenerateRequest req;
  req.set_text("Hi");
  req.set_max_tokens(4);
  req.set_repetition_penalty(1e-40f);
  auto context = authed();
  auto reader = stub()->Generate(context.get(), req);
  v1::GenerateResponse msg;
  while (reader->Read(&msg)) {
  }
  const grpc::Status s = reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_NE(s.error_message().find("the model produced non-finite logits at position"), std::string::npos)
      << s.error_message();
  v1::HealthRequest health;
  v1::HealthResponse answer;
  auto context2 = authed();
  EXPECT_TRUE(stub()->Health(context2.get(), health, &answer).ok());
  EXPECT_TRUE(answer.ready());
}

TEST_F(GrpcServe, MissingOrWrongKeyIsUnauthenticated) {
  v1::TokenizeRequest req;
  req.set_text("x");
  v1::TokenizeResponse r;
  grpc::ClientContext none;
  EXPECT_EQ(stub()->Tokenize(&none, req, &r).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext wrong;
  wrong.AddMetadata("authorization", "Bearer nope");
  EXPECT_EQ(stub()->Tokenize(&wrong, req, &r).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext lower_case;  // the scheme is case-insensitive (RFC 7235)
  lower_case.AddMetadata("authorization", "bearer k");
  EXPECT_TRUE(stub()->Tokenize(&lower_case, req, &r).ok());
}

TEST_F(GrpcServe, CancellingFreesTheSequence) {
  v1::GenerateRequest req;
  req.set_text("Hello world");
  req.set_max_tokens(400);
  req.set_ignore_eos(true);
  auto context = authed();
  auto reader = stub()->Generate(context.get(), req);
  v1::GenerateResponse msg;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(reader->Read(&msg));
  auto pending = [&] {
    grpc::ClientContext c;
    v1::HealthResponse h;
    EXPECT_TRUE(stub()->Health(&c, v1::HealthRequest(), &h).ok());
    return h.pending_sequences();
  };
  EXPECT_EQ(pending(), 1);
  const auto cancelled_at = std::chrono::steady_clock::now();
  context->TryCancel();
  while (reader->Read(&msg)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  while (pending() != 0 && std::chrono::steady_clock::now() - cancelled_at < std::chrono::seconds(3))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(pending(), 0);
  // 400 tokens at >= 10 ms a step would take 4 s; the sequence left the batch long before.
  EXPECT_LT(std::chrono::steady_clock::now() - cancelled_at, std::chrono::seconds(2));
}

}  // namespace
}  // namespace lattice::serve
