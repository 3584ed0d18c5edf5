#include "oss/metrics/registry.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <variant>

namespace oss::metrics {

namespace {

enum class Type { counter = 0, gauge = 1, histogram = 2 };

const char* type_name(Type t) {
  switch (t) {
    case Type::counter: return "counter";
    case Type::gauge: return "gauge";
    case Type::histogram: return "histogram";
  }
  return "untyped";
}

void atomic_add(std::atomic<double>& a, double v) {
  double cur = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

bool valid_metric_name(const std::string& n) {
  if (n.empty()) return false;
  for (std::size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    const bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) return false;
  }
  return true;
}

bool valid_label_name(const std::string& n) {
  if (n.empty() || n.rfind("__", 0) == 0) return false;
  for (std::size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) return false;
  }
  return true;
}

Labels normalize(const std::string& metric, const Labels& labels, Type type) {
  Labels sorted = labels;
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (!valid_label_name(sorted[i].first))
      throw std::invalid_argument("metric " + metric + ": invalid label name '" + sorted[i].first + "'");
    if (type == Type::histogram && sorted[i].first == "le")
      throw std::invalid_argument("metric " + metric + ": label 'le' is reserved for histograms");
    if (i > 0 && sorted[i - 1].first == sorted[i].first)
      throw std::invalid_argument("metric " + metric + ": duplicate label '" + sorted[i].first + "'");
  }
  return sorted;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

std::string escape_help(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string escape_label_value(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

// {a="1",b="2"} with an optional extra label (histogram "le") appended last.
std::string label_block(const Labels& labels, const char* extra_name = nullptr, const std::string& extra_value = {}) {
  if (labels.empty() && extra_name == nullptr) return {};
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k;
    out += "=\"";
    out += escape_label_value(v);
    out += '"';
  }
  if (extra_name != nullptr) {
    if (!first) out += ',';
    out += extra_name;
    out += "=\"";
    out += escape_label_value(extra_value);
    out += '"';
  }
  out += '}';
  return out;
}

void validate_buckets(const std::vector<double>& b) {
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (!std::isfinite(b[i])) throw std::invalid_argument("histogram buckets must be finite (+Inf is implicit)");
    if (i > 0 && !(b[i - 1] < b[i])) throw std::invalid_argument("histogram buckets must be strictly increasing");
  }
}

}  // namespace

// ---- Counter / Gauge ----

void Counter::inc(double v) {
  if (!(v > 0.0)) return;  // also drops NaN
  atomic_add(value_, v);
}
double Counter::value() const { return value_.load(std::memory_order_relaxed); }

void Gauge::set(double v) { value_.store(v, std::memory_order_relaxed); }
void Gauge::inc(double v) { atomic_add(value_, v); }
void Gauge::dec(double v) { atomic_add(value_, -v); }
double Gauge::value() const { return value_.load(std::memory_order_relaxed); }

// ---- Histogram ----

Histogram::Histogram(std::vector<double> buckets)
    : bounds_(std::move(buckets)), counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {
  validate_buckets(bounds_);
  for (std::size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) {
  // First bucket whose upper bound is >= v; NaN lands in +Inf.
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);
  const auto idx = static_cast<std::size_t>(it - bounds_.begin());
  counts_[idx].fetch_add(1, std::memory_order_relaxed);
  atomic_add(sum_, v);
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t Histogram::count() const { return count_.load(std::memory_order_relaxed); }
double Histogram::sum() const { return sum_.load(std::memory_order_relaxed); }

std::vector<std::uint64_t> Histogram::cumulative_counts() const {
  std::vector<std::uint64_t> out(bounds_.size() + 1);
  std::uint64_t acc = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    acc += counts_[i].load(std::memory_order_relaxed);
    out[i] = acc;
  }
  return out;
}

// ---- Registry ----

struct Registry::Family {
  std::string name;
  std::string help;
  Type type = Type::counter;
  std::vector<double> buckets;  // histograms only
  struct Child {
    Labels labels;
    std::variant<std::unique_ptr<Counter>, std::unique_ptr<Gauge>, std::unique_ptr<Histogram>> metric;
  };
  std::vector<Child> children;

  Child* find(const Labels& labels) {
    for (auto& c : children)
      if (c.labels == labels) return &c;
    return nullptr;
  }
};

Registry::Registry() = default;
Registry::~Registry() = default;

Registry::Family& Registry::family_locked(const std::string& name, const std::string& help, int type_int) {
  const auto type = static_cast<Type>(type_int);
  for (auto& f : families_) {
    if (f->name == name) {
      if (f->type != type)
        throw std::logic_error("metric " + name + " is already registered as a " + type_name(f->type) +
                               ", not a " + type_name(type));
      return *f;
    }
  }
  if (!valid_metric_name(name)) throw std::invalid_argument("invalid metric name '" + name + "'");
  auto f = std::make_unique<Family>();
  f->name = name;
  f->help = help;
  f->type = type;
  families_.push_back(std::move(f));
  return *families_.back();
}

Counter& Registry::counter(const std::string& name, const std::string& help, const Labels& labels) {
  const Labels norm = normalize(name, labels, Type::counter);
  std::lock_guard lock(mutex_);
  Family& f = family_locked(name, help, static_cast<int>(Type::counter));
  if (auto* c = f.find(norm)) return *std::get<std::unique_ptr<Counter>>(c->metric);
  f.children.push_back({norm, std::make_unique<Counter>()});
  return *std::get<std::unique_ptr<Counter>>(f.children.back().metric);
}

Gauge& Registry::gauge(const std::string& name, const std::string& help, const Labels& labels) {
  const Labels norm = normalize(name, labels, Type::gauge);
  std::lock_guard lock(mutex_);
  Family& f = family_locked(name, help, static_cast<int>(Type::gauge));
  if (auto* c = f.find(norm)) return *std::get<std::unique_ptr<Gauge>>(c->metric);
  f.children.push_back({norm, std::make_unique<Gauge>()});
  return *std::get<std::unique_ptr<Gauge>>(f.children.back().metric);
}

Histogram& Registry::histogram(const std::string& name, const std::string& help, std::vector<double> buckets,
                               const Labels& labels) {
  validate_buckets(buckets);
  const Labels norm = normalize(name, labels, Type::histogram);
  std::lock_guard lock(mutex_);
  const bool is_new = std::none_of(families_.begin(), families_.end(), [&](const auto& f) { return f->name == name; });
  Family& f = family_locked(name, help, static_cast<int>(Type::histogram));
  if (is_new) f.buckets = buckets;
  if (f.buckets != buckets)
    throw std::logic_error("histogram " + name + " is already registered with other buckets");
  if (auto* c = f.find(norm)) return *std::get<std::unique_ptr<Histogram>>(c->metric);
  f.children.push_back({norm, std::make_unique<Histogram>(std::move(buckets))});
  return *std::get<std::unique_ptr<Histogram>>(f.children.back().metric);
}

void Registry::on_collect(std::function<void()> fn) {
  if (!fn) throw std::invalid_argument("on_collect: empty function");
  std::lock_guard lock(mutex_);
  collectors_.push_back(std::move(fn));
}

std::string Registry::render() const {
  std::vector<std::function<void()>> collectors;
  {
    std::lock_guard lock(mutex_);
    collectors = collectors_;
  }
  // Outside the lock: a collector may register or update metrics of this registry.
  for (const auto& fn : collectors) fn();

  std::string out;
  std::lock_guard lock(mutex_);
  for (const auto& f : families_) {
    out += "# HELP " + f->name + ' ' + escape_help(f->help) + '\n';
    out += "# TYPE " + f->name + ' ' + type_name(f->type) + '\n';
    for (const auto& child : f->children) {
      switch (f->type) {
        case Type::counter:
          out += f->name + label_block(child.labels) + ' ' +
                 format_value(std::get<std::unique_ptr<Counter>>(child.metric)->value()) + '\n';
          break;
        case Type::gauge:
          out += f->name + label_block(child.labels) + ' ' +
                 format_value(std::get<std::unique_ptr<Gauge>>(child.metric)->value()) + '\n';
          break;
        case Type::histogram: {
          const auto& h = *std::get<std::unique_ptr<Histogram>>(child.metric);
          const auto cumulative = h.cumulative_counts();
          const auto& bounds = h.buckets();
          for (std::size_t i = 0; i < cumulative.size(); ++i) {
            const std::string le = i < bounds.size() ? format_value(bounds[i]) : "+Inf";
            out += f->name + "_bucket" + label_block(child.labels, "le", le) + ' ' + std::to_string(cumulative[i]) + '\n';
          }
          out += f->name + "_sum" + label_block(child.labels) + ' ' + format_value(h.sum()) + '\n';
          // _count equals the +Inf bucket so a scrape is self-consistent even during observe().
          out += f->name + "_count" + label_block(child.labels) + ' ' + std::to_string(cumulative.back()) + '\n';
          break;
        }
      }
    }
  }
  return out;
}

std::vector<double> exponential_buckets(double start, double factor, std::size_t count) {
  if (!(start > 0.0) || !(factor > 1.0) || count == 0)
    throw std::invalid_argument("exponential_buckets: need start > 0, factor > 1, count >= 1");
  std::vector<double> out;
  out.reserve(count);
  double v = start;
  for (std::size_t i = 0; i < count; ++i) {
    out.push_back(v);
    v *= factor;
  }
  return out;
}

std::vector<double> latency_buckets_seconds() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0};
}

}  // namespace oss::metrics
