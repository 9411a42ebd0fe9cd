// The list of registered ops (filled at load time by the KS_OP rows of native/core), supports(), and
// the helpers of calls by name.
#include "registry.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>

namespace ks {
namespace {

struct Entry {
  bool cuda = false;
  void (*generic)(const OpCall&) = nullptr;
};

// A function-local static: rows in other files register during static initialisation, in any order.
std::map<std::string, Entry>& table() {
  static std::map<std::string, Entry> t;
  return t;
}

}  // namespace

void registry::add(const char* name, bool cuda, void (*generic)(const OpCall&)) {
  auto [it, fresh] = table().emplace(name, Entry{cuda, generic});
  // Two rows of one name would make supports() and call_op() ambiguous: refuse at load time.
  if (!fresh) throw std::logic_error(std::string("op registry: \"") + name + "\" is declared twice");
}

bool supports(const std::string& op, const Device& device) {
  const auto it = table().find(op);
  if (it == table().end()) return false;
  return !device.is_cuda() || (KS_WITH_CUDA && it->second.cuda);
}

std::vector<OpEntry> registered_ops() {
  std::vector<OpEntry> out;
  for (const auto& [name, e] : table()) out.push_back(OpEntry{name, e.cuda, e.generic != nullptr});
  return out;
}

void call_op(const std::string& op, const OpCall& call) {
  const auto it = table().find(op);
  if (it == table().end() || !it->second.generic) {
    std::string names;
    for (const auto& [name, e] : table())
      if (e.generic) names += (names.empty() ? "" : ", ") + name;
    throw std::invalid_argument("op: unknown op \"" + op + "\" (ops callable by name: " + names + ")");
  }
  it->second.generic(call);
}

int64_t attr(const OpCall& call, const char* op, const char* key, int64_t lo, int64_t hi) {
  const auto it = call.attrs.find(key);
  if (it == call.attrs.end()) throw std::invalid_argument(std::string(op) + ": attribute " + key + " is missing");
  const double d = it->second;
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi) && d == std::floor(d)))
    throw std::invalid_argument(std::string(op) + ": attribute " + key + " must be an integer in [" +
                                std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string(d));
  return static_cast<int64_t>(d);
}

CallTensors call_tensors(Check& check, const OpCall& call, const std::vector<int64_t>& in_sizes,
                         const std::vector<int64_t>& out_sizes, const std::vector<bool>& optional) {
  if (call.in.size() != in_sizes.size() || call.out.size() != out_sizes.size())
    check.fail("expected " + std::to_string(in_sizes.size()) + " inputs and " + std::to_string(out_sizes.size()) +
               " outputs, got " + std::to_string(call.in.size()) + " and " + std::to_string(call.out.size()));
  CallTensors t;
  for (size_t k = 0; k < in_sizes.size(); ++k) {
    const std::string name = "input " + std::to_string(k);
    const Tensor& x = check.in(call.in[k], name.c_str());
    if (x.numel() != in_sizes[k])
      check.fail(name + " needs " + std::to_string(in_sizes[k]) + " elements, got " + std::to_string(x.numel()));
    t.in.push_back(x.data());
  }
  for (size_t k = 0; k < out_sizes.size(); ++k) {
    const std::string name = "output " + std::to_string(k);
    const Tensor& y = call.out[k];
    if (!y.storage && k < optional.size() && optional[k]) {
      t.out.push_back(nullptr);
      continue;
    }
    check.out(y, name.c_str());
    if (y.numel() != out_sizes[k])
      check.fail(name + " needs " + std::to_string(out_sizes[k]) + " elements, got " + std::to_string(y.numel()));
    t.out.push_back(y.data());
  }
  return t;
}

}  // namespace ks
