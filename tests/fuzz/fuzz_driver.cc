// A small stand-in for libFuzzer, linked with one LLVMFuzzerTestOneInput target when the build is not a clang
// libFuzzer build (-DLATTICE_LIBFUZZER=ON). It takes libFuzzer's flags, so one command line runs either:
//   <target> [-max_total_time=S] [-runs=N] [-seed=N] [-timeout=S] [-rss_limit_mb=MB] [-max_len=BYTES]
//            [-dict=FILE] [-artifact_prefix=PATH] CORPUS_DIR...
// It replays every corpus file first, then mutates corpus entries (bit flips, byte changes, inserts, deletes,
// duplicated ranges, dictionary tokens, splices of two entries), 1-5 mutations at a time, until the time or
// run budget ends. No coverage feedback: it finds what random mutation of good inputs finds. Nothing is
// written to the corpus. On a crash (signal, sanitizer report, uncaught exception), an input that runs past
// -timeout seconds or memory past -rss_limit_mb, it prints the seed and writes the input to
// <artifact_prefix>crash-<seed>-<run> before the process ends.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
extern "C" void __sanitizer_purge_allocator();  // in ASan's runtime; gcc ships no header declaring it
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

using Bytes = std::vector<uint8_t>;
using Clock = std::chrono::steady_clock;

struct Options {
  double max_total_time = 10;
  long long runs = -1;  // -1: until the time budget ends
  uint64_t seed = 0;    // 0: from the clock
  double timeout = 1;
  long long rss_limit_mb = 2048;
  size_t max_len = 65536;
  std::string dict;
  std::string artifact_prefix = "./";
  std::vector<std::string> corpus_dirs;
};

// The input being run, for the crash and watchdog paths (which must not allocate).
std::atomic<const uint8_t*> g_data{nullptr};
std::atomic<size_t> g_size{0};
char g_artifact[4096];
std::atomic<int64_t> g_started_ns{0};  // when the current input started (steady clock), 0 between inputs
std::atomic<bool> g_finished{false};    // set before exit: the exit-time leak check may use memory freely

void write_str(const char* s) { (void)!::write(2, s, std::strlen(s)); }

// Writes the current input to g_artifact; async-signal-safe.
void save_input() {
  const uint8_t* data = g_data.load();
  if (!data && g_size.load() != 0) return;
  const int fd = ::open(g_artifact, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return;
  size_t done = 0;
  while (done < g_size.load()) {
    const ssize_t n = ::write(fd, data + done, g_size.load() - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  write_str("fuzz_driver: input written to ");
  write_str(g_artifact);
  write_str("\n");
}

void on_signal(int sig) {
  write_str("fuzz_driver: deadly signal\n");
  save_input();
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

long long rss_mb() {
  std::ifstream statm("/proc/self/statm");
  long long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * ::sysconf(_SC_PAGESIZE) / (1 << 20);
}

// Ends the process when one input runs past the timeout or the process past the memory limit.
void watchdog(const Options& o) {
  while (!g_finished.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const int64_t started = g_started_ns.load();
    const int64_t now = Clock::now().time_since_epoch().count();
    const char* why = nullptr;
    if (started != 0 && now - started > static_cast<int64_t>(o.timeout * 1e9)) why = "timeout: one input ran past -timeout\n";
    if (rss_mb() > o.rss_limit_mb) why = "out of memory: resident memory past -rss_limit_mb\n";
    if (why) {
      write_str("fuzz_driver: ");
      write_str(why);
      save_input();
      std::_Exit(1);
    }
  }
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* flag) -> const char* {
      const std::string prefix = std::string("-") + flag + "=";
      return a.rfind(prefix, 0) == 0 ? argv[i] + prefix.size() : nullptr;
    };
    if (const char* v = value("max_total_time")) o.max_total_time = std::atof(v);
    else if (const char* v = value("runs")) o.runs = std::atoll(v);
    else if (const char* v = value("seed")) o.seed = std::strtoull(v, nullptr, 10);
    else if (const char* v = value("timeout")) o.timeout = std::atof(v);
    else if (const char* v = value("rss_limit_mb")) o.rss_limit_mb = std::atoll(v);
    else if (const char* v = value("max_len")) o.max_len = std::strtoull(v, nullptr, 10);
    else if (const char* v = value("dict")) o.dict = v;
    else if (const char* v = value("artifact_prefix")) o.artifact_prefix = v;
    else if (a.rfind("-", 0) == 0) std::fprintf(stderr, "fuzz_driver: ignoring %s\n", a.c_str());
    else o.corpus_dirs.push_back(a);
  }
  return o;
}

Bytes read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The tokens of an AFL/libFuzzer dictionary: one "quoted string" per line (\\, \" and \xNN escapes).
std::vector<Bytes> read_dict(const std::string& path) {
  std::vector<Bytes> tokens;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    const size_t open = line.find('"'), close = line.rfind('"');
    if (line.empty() || line[0] == '#' || open == std::string::npos || close <= open) continue;
    Bytes token;
    for (size_t i = open + 1; i < close; ++i) {
      if (line[i] == '\\' && i + 1 < close && line[i + 1] == 'x' && i + 3 < close) {
        token.push_back(static_cast<uint8_t>(std::stoi(line.substr(i + 2, 2), nullptr, 16)));
        i += 3;
      } else if (line[i] == '\\' && i + 1 < close) {
        token.push_back(static_cast<uint8_t>(line[++i]));
      } else {
        token.push_back(static_cast<uint8_t>(line[i]));
      }
    }
    tokens.push_back(token);
  }
  return tokens;
}

class Mutator {
 public:
  Mutator(uint64_t seed, const std::vector<Bytes>& corpus, const std::vector<Bytes>& dict, size_t max_len)
      : rng_(seed), corpus_(corpus), dict_(dict), max_len_(max_len) {}

  Bytes next() {
    Bytes b = corpus_.empty() ? Bytes() : corpus_[below(corpus_.size())];
    const int count = 1 + static_cast<int>(below(5));
    for (int i = 0; i < count; ++i) mutate(b);
    if (b.size() > max_len_) b.resize(max_len_);
    return b;
  }

 private:
  size_t below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng_() % n); }

  void insert(Bytes& b, size_t at, const Bytes& what) { b.insert(b.begin() + static_cast<ptrdiff_t>(at), what.begin(), what.end()); }

  void mutate(Bytes& b) {
    static const uint8_t kInteresting[] = {0, 1, 0x7f, 0x80, 0xff, '0', '9', '-', '"', '\\', '{', '}', '[', ']', ',', ':'};
    switch (below(8)) {
      case 0:  // flip a bit
        if (!b.empty()) b[below(b.size())] ^= static_cast<uint8_t>(1u << below(8));
        break;
      case 1:  // set a byte to a random or structural value
        if (!b.empty()) b[below(b.size())] = below(2) ? static_cast<uint8_t>(rng_()) : kInteresting[below(sizeof kInteresting)];
        break;
      case 2:  // insert random bytes
        insert(b, below(b.size() + 1), Bytes(1 + below(4), static_cast<uint8_t>(rng_())));
        break;
      case 3:  // delete a range
        if (!b.empty()) {
          const size_t at = below(b.size()), n = 1 + below(std::min<size_t>(b.size() - at, 16));
          b.erase(b.begin() + static_cast<ptrdiff_t>(at), b.begin() + static_cast<ptrdiff_t>(at + n));
        }
        break;
      case 4:  // duplicate a range in place (nesting, repeated fields)
        if (!b.empty()) {
          const size_t at = below(b.size()), n = 1 + below(std::min<size_t>(b.size() - at, 64));
          insert(b, at, Bytes(b.begin() + static_cast<ptrdiff_t>(at), b.begin() + static_cast<ptrdiff_t>(at + n)));
        }
        break;
      case 5:
      case 6:  // insert or overwrite with a dictionary token
        if (!dict_.empty()) {
          const Bytes& token = dict_[below(dict_.size())];
          const size_t at = below(b.size() + 1);
          if (below(2) || at + token.size() > b.size()) insert(b, at, token);
          else std::copy(token.begin(), token.end(), b.begin() + static_cast<ptrdiff_t>(at));
        }
        break;
      case 7:  // splice: the head of this input, the tail of another corpus entry
        if (!corpus_.empty()) {
          const Bytes& other = corpus_[below(corpus_.size())];
          b.resize(below(b.size() + 1));
          const size_t from = below(other.size() + 1);
          b.insert(b.end(), other.begin() + static_cast<ptrdiff_t>(from), other.end());
        }
        break;
    }
  }

  std::mt19937_64 rng_;
  const std::vector<Bytes>& corpus_;
  const std::vector<Bytes>& dict_;
  size_t max_len_;
};

void run_one(const Bytes& input, const std::string& artifact) {
  std::snprintf(g_artifact, sizeof g_artifact, "%s", artifact.c_str());
  g_data = input.data();
  g_size = input.size();
  g_started_ns = Clock::now().time_since_epoch().count();
  LLVMFuzzerTestOneInput(input.data(), input.size());
  g_started_ns = 0;
  g_data = nullptr;  // the input is about to be freed
  g_size = 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  if (o.seed == 0) o.seed = static_cast<uint64_t>(Clock::now().time_since_epoch().count()) | 1;
  for (int sig : {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL}) std::signal(sig, on_signal);
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_set_death_callback(save_input);
#endif
  std::thread guard(watchdog, std::cref(o));
  const auto start = Clock::now();
  std::vector<Bytes> corpus;
  for (const std::string& dir : o.corpus_dirs) {
    if (!std::filesystem::is_directory(dir)) continue;
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir))
      if (entry.is_regular_file()) files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      corpus.push_back(read_file(f));
      run_one(corpus.back(), f.string());  // a failing corpus file names itself
    }
  }
  const std::vector<Bytes> dict = o.dict.empty() ? std::vector<Bytes>() : read_dict(o.dict);
  std::printf("fuzz_driver: seed %llu, %zu corpus inputs replayed, %zu dictionary tokens\n",
              static_cast<unsigned long long>(o.seed), corpus.size(), dict.size());
  std::fflush(stdout);
  Mutator mutator(o.seed, corpus, dict, o.max_len);
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.max_total_time));
  long long run = 0;
  auto purged = start;
  for (; (o.runs < 0 || run < o.runs) && Clock::now() < end; ++run) {
#if defined(__SANITIZE_ADDRESS__)
    // ASan keeps freed memory cached (and quarantined) and its RSS grows without a leak; libFuzzer returns it to
    // the system once a second too (-purge_allocator_interval).
    if (Clock::now() - purged > std::chrono::seconds(1)) {
      __sanitizer_purge_allocator();
      purged = Clock::now();
    }
#endif
    const Bytes input = mutator.next();
    run_one(input, o.artifact_prefix + "crash-" + std::to_string(o.seed) + "-" + std::to_string(run));
  }
  g_finished = true;
  guard.join();
  std::printf("fuzz_driver: done, %lld runs in %.1f s (seed %llu)\n", run,
              std::chrono::duration<double>(Clock::now() - start).count(),
              static_cast<unsigned long long>(o.seed));
  return 0;
}
