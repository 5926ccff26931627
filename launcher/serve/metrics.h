// A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text
// exposition format (version 0.0.4). Thread-safe: handler threads and the serve loop update it while
// /metrics renders it.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace lattice::serve {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  enum class Type { counter, gauge, histogram };

  // Declares a metric family; `buckets` (upper bounds, ascending) only for histograms.
  void describe(const std::string& name, Type type, const std::string& help, std::vector<double> buckets = {});

  void add(const std::string& name, const Labels& labels = {}, double delta = 1);   // counter
  void set(const std::string& name, const Labels& labels, double value);            // gauge
  void set(const std::string& name, double value) { set(name, {}, value); }
  void observe(const std::string& name, const Labels& labels, double value);        // histogram
  void observe(const std::string& name, double value) { observe(name, {}, value); }

  // The value of a counter or gauge series (0 when absent); for tests and logs.
  double value(const std::string& name, const Labels& labels = {}) const;

  std::string exposition() const;

 private:
  struct Series {
    double value = 0;              // counter / gauge
    std::vector<uint64_t> counts;  // histogram: per bucket (not cumulative), +Inf last
    double sum = 0;
    uint64_t count = 0;
  };
  struct Family {
    Type type;
    std::string help;
    std::vector<double> buckets;
    std::map<std::string, Series> series;  // keyed by the rendered label set
  };
  Family& family(const std::string& name, Type type);

  mutable std::mutex mutex_;
  std::map<std::string, Family> families_;
};

// Label values escape backslash, double quote and newline; HELP text escapes backslash and newline.
std::string escape_label_value(const std::string& value);
std::string escape_help(const std::string& help);
// "{a="x",b="y"}" or "" for no labels; label names must match [a-zA-Z_][a-zA-Z0-9_]*.
std::string render_labels(const Labels& labels);
// Prometheus float syntax: integers without exponent, +Inf, -Inf, NaN.
std::string format_value(double v);

}  // namespace lattice::serve
