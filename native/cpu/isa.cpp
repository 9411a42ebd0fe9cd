#include "isa.h"

#include <cstdlib>
#include <vector>

namespace ks::cpu {
namespace {

// Variants this processor and OS can run, lowest first. __builtin_cpu_supports reads cpuid and (in
// libgcc) XGETBV, so a feature the OS does not save across context switches counts as absent.
std::vector<const isa::Kernels*> supported() {
  std::vector<const isa::Kernels*> list{&isa::kBase};
#if defined(__x86_64__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx2) list.push_back(&isa::kAvx2);
  if (avx2 && __builtin_cpu_supports("avx512f")) list.push_back(&isa::kAvx512);
#endif
  return list;
}

struct Choice {
  const isa::Kernels* kernels = nullptr;
  std::string error;
};

Choice choose() {
  const auto list = supported();
  Choice c{list.back(), ""};
  const char* env = std::getenv("KINTSUGI_CPU_ISA");
  if (!env || !*env) return c;
  const std::string want = env;
  if (want != "sse" && want != "avx2" && want != "avx512") {
    c.error = "KINTSUGI_CPU_ISA: expected sse, avx2 or avx512, got \"" + want + "\"";
    return c;
  }
  for (const auto* k : list)
    if (want == k->name) {
      c.kernels = k;
      return c;
    }
  c.error = "KINTSUGI_CPU_ISA: this processor cannot run \"" + want + "\" (it supports " + cpu_isa_supported() + ")";
  return c;
}

const Choice& choice() {
  static const Choice c = choose();
  return c;
}

}  // namespace

const isa::Kernels& kernels() { return *choice().kernels; }

const char* cpu_isa_name() { return kernels().name; }

std::string cpu_isa_supported() {
  std::string s;
  for (const auto* k : supported()) s += (s.empty() ? "" : ",") + std::string(k->name);
  return s;
}

const std::string& cpu_isa_error() { return choice().error; }

}  // namespace ks::cpu
