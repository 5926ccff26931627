#include "launcher/serve/metrics.h"

#include <cmath>
#include <cstdio>

#include "engine/core/error.h"

namespace lattice::serve {

std::string escape_label_value(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string escape_help(const std::string& help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

namespace {

bool valid_name(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

// Inserts `extra` (e.g. le="0.5") into a rendered label set.
std::string with_label(const std::string& rendered, const std::string& extra) {
  if (rendered.empty()) return "{" + extra + "}";
  return rendered.substr(0, rendered.size() - 1) + "," + extra + "}";
}

}  // namespace

std::string render_labels(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    LATTICE_CHECK(valid_name(labels[i].first), "invalid metric label name '", labels[i].first, "'");
    out += (i ? "," : "") + labels[i].first + "=\"" + escape_label_value(labels[i].second) + "\"";
  }
  return out + "}";
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

void Metrics::describe(const std::string& name, Type type, const std::string& help, std::vector<double> buckets) {
  LATTICE_CHECK(valid_name(name), "invalid metric name '", name, "'");
  std::lock_guard<std::mutex> lock(mutex_);
  Family& f = families_[name];
  f.type = type;
  f.help = help;
  f.buckets = std::move(buckets);
}

Metrics::Family& Metrics::family(const std::string& name, Type type) {
  auto it = families_.find(name);
  LATTICE_CHECK(it != families_.end(), "metric ", name, " was not described");
  LATTICE_CHECK(it->second.type == type, "metric ", name, " is used with the wrong type");
  return it->second;
}

void Metrics::add(const std::string& name, const Labels& labels, double delta) {
  std::lock_guard<std::mutex> lock(mutex_);
  family(name, Type::counter).series[render_labels(labels)].value += delta;
}

void Metrics::set(const std::string& name, const Labels& labels, double value) {
  std::lock_guard<std::mutex> lock(mutex_);
  family(name, Type::gauge).series[render_labels(labels)].value = value;
}

void Metrics::observe(const std::string& name, const Labels& labels, double value) {
  std::lock_guard<std::mutex> lock(mutex_);
  Family& f = family(name, Type::histogram);
  Series& s = f.series[render_labels(labels)];
  if (s.counts.empty()) s.counts.assign(f.buckets.size() + 1, 0);
  size_t b = 0;
  while (b < f.buckets.size() && value > f.buckets[b]) ++b;
  ++s.counts[b];
  s.sum += value;
  ++s.count;
}

double Metrics::value(const std::string& name, const Labels& labels) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto f = families_.find(name);
  if (f == families_.end()) return 0;
  auto s = f->second.series.find(render_labels(labels));
  return s == f->second.series.end() ? 0 : s->second.value;
}

std::string Metrics::exposition() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  for (const auto& [name, f] : families_) {
    const char* type = f.type == Type::counter ? "counter" : f.type == Type::gauge ? "gauge" : "histogram";
    out += "# HELP " + name + " " + escape_help(f.help) + "\n# TYPE " + name + " " + type + "\n";
    if (f.type != Type::histogram) {
      for (const auto& [labels, s] : f.series) out += name + labels + " " + format_value(s.value) + "\n";
      continue;
    }
    for (const auto& [labels, s] : f.series) {
      uint64_t cumulative = 0;
      for (size_t b = 0; b <= f.buckets.size(); ++b) {
        cumulative += s.counts[b];
        const std::string le = b < f.buckets.size() ? format_value(f.buckets[b]) : "+Inf";
        out += name + "_bucket" + with_label(labels, "le=\"" + le + "\"") + " " + std::to_string(cumulative) + "\n";
      }
      out += name + "_sum" + labels + " " + format_value(s.sum) + "\n";
      out += name + "_count" + labels + " " + std::to_string(s.count) + "\n";
    }
  }
  return out;
}

}  // namespace lattice::serve
