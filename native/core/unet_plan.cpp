// Builds the UNet plan from its configuration: walks the wiring of docs/unet.md once, naming every
// module in execution order and laying its parameters out in the flat array.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include "kintsugi/philox.h"
#include "kintsugi/unet.h"

namespace ks {

void UNetConfig::validate() const {
  auto bad = [](const std::string& m) { throw std::invalid_argument("unet config: " + m); };
  if (in_channels < 1) bad("inChannels must be >= 1, got " + std::to_string(in_channels));
  if (out_channels < 1) bad("outChannels must be >= 1, got " + std::to_string(out_channels));
  if (channels < 2 || channels % 2) bad("channels must be even and >= 2, got " + std::to_string(channels));
  if (mult.empty()) bad("mult must list at least one level");
  for (int m : mult)
    if (m < 1) bad("every mult entry must be >= 1, got " + std::to_string(m));
  if (res_blocks < 1) bad("resBlocks must be >= 1, got " + std::to_string(res_blocks));
  const int down = 1 << (levels() - 1);
  if (resolution < down || resolution % down)
    bad("resolution must be divisible by 2^(levels-1) = " + std::to_string(down) + ", got " +
        std::to_string(resolution));
  for (int m : mult) {
    const int c = channels * m;
    if (c % std::min(32, c)) bad("channels*mult = " + std::to_string(c) + " is not divisible by its GroupNorm groups");
  }
  // (The widths of the up path's concatenations are checked as the plan is built.)
}

UNetConfig unet_preset(const std::string& name) {
  UNetConfig c;
  if (name == "tiny16") {
    c.in_channels = 1;
    c.out_channels = 1;
    c.channels = 32;
    c.mult = {1, 2};
    c.res_blocks = 1;
    c.attn_resolutions = {8};
    c.resolution = 16;
  } else if (name == "fmnist32") {
    c.in_channels = 1;
    c.out_channels = 1;
    c.channels = 64;
    c.mult = {1, 2, 2};
    c.res_blocks = 2;
    c.attn_resolutions = {8};
    c.resolution = 32;
  } else if (name == "cifar32") {
    c.in_channels = 3;
    c.out_channels = 3;
    c.channels = 128;
    c.mult = {1, 2, 2, 2};
    c.res_blocks = 2;
    c.attn_resolutions = {16};
    c.resolution = 32;
  } else {
    throw std::invalid_argument("unet preset: expected \"tiny16\", \"fmnist32\" or \"cifar32\", got \"" + name + "\"");
  }
  return c;
}

namespace {

class Builder {
 public:
  explicit Builder(UNetPlan& plan) : plan_(plan), precision_(plan.config.precision) {}

  UNetPlan::Conv conv(const std::string& path, int cin, int cout, int k, int stride = 1, bool zero = false) {
    UNetPlan::Conv c;
    c.cin = cin;
    c.cout = cout;
    c.k = k;
    c.stride = stride;
    c.precision = precision_;
    const int64_t fan_in = static_cast<int64_t>(cin) * k * k;
    c.w = add(path + ".weight", {cout, cin, k, k}, ParamRole::ConvWeight, fan_in, zero);
    c.b = add(path + ".bias", {cout}, ParamRole::ConvBias, fan_in, zero);
    return c;
  }
  UNetPlan::Norm norm(const std::string& path, int c) {
    UNetPlan::Norm n;
    n.c = c;
    n.groups = std::min(32, c);
    // GroupNorm(min(32, c), c) needs c divisible by its groups; the up path's concatenations can break
    // that even when every level width is fine (PyTorch refuses such a module too).
    if (c % n.groups)
      throw std::invalid_argument("unet config: " + path + " would normalise " + std::to_string(c) + " channels in " +
                                  std::to_string(n.groups) +
                                  " groups; widths above 32 (including concatenated skips) must be multiples of 32");
    n.w = add(path + ".weight", {c}, ParamRole::NormWeight, 0, false);
    n.b = add(path + ".bias", {c}, ParamRole::NormBias, 0, false);
    return n;
  }
  UNetPlan::Linear linear(const std::string& path, int in, int out) {
    UNetPlan::Linear l;
    l.in = in;
    l.out = out;
    l.w = add(path + ".weight", {out, in}, ParamRole::LinearWeight, in, false);
    l.b = add(path + ".bias", {out}, ParamRole::LinearBias, in, false);
    return l;
  }

 private:
  int64_t add(const std::string& name, std::vector<int64_t> shape, ParamRole role, int64_t fan_in, bool zero) {
    ParamInfo p;
    p.name = name;
    p.numel = 1;
    for (int64_t d : shape) p.numel *= d;
    p.shape = std::move(shape);
    p.offset = plan_.param_count;
    p.role = role;
    p.fan_in = fan_in;
    p.zero = zero;
    plan_.param_count += p.numel;
    plan_.params.push_back(std::move(p));
    return plan_.params.back().offset;
  }
  UNetPlan& plan_;
  Precision precision_;
};

}  // namespace

UNetPlan unet_plan(const UNetConfig& config) {
  config.validate();
  UNetPlan plan;
  plan.config = config;
  Builder b(plan);
  const int C = config.channels, T = 4 * C;
  const bool z = config.zero_init;
  auto attn_at = [&](int size) {
    return std::find(config.attn_resolutions.begin(), config.attn_resolutions.end(), size) !=
           config.attn_resolutions.end();
  };
  auto add_res = [&](const std::string& path, int cin, int cout) {
    UNetPlan::Res r;
    r.norm1 = b.norm(path + ".norm1", cin);
    r.conv1 = b.conv(path + ".conv1", cin, cout, 3);
    r.time = b.linear(path + ".time", T, cout);
    r.norm2 = b.norm(path + ".norm2", cout);
    r.conv2 = b.conv(path + ".conv2", cout, cout, 3, 1, z);
    r.has_skip = cin != cout;
    if (r.has_skip) r.skip = b.conv(path + ".skip", cin, cout, 1);
    plan.res.push_back(r);
    return static_cast<int>(plan.res.size()) - 1;
  };
  auto add_attn = [&](const std::string& path, int c) {
    UNetPlan::Attn a;
    a.c = c;
    a.norm = b.norm(path + ".norm", c);
    a.qkv = b.conv(path + ".qkv", c, 3 * c, 1);
    a.proj = b.conv(path + ".proj", c, c, 1, 1, z);
    plan.attn.push_back(a);
    return static_cast<int>(plan.attn.size()) - 1;
  };
  auto add_resample = [&](const std::string& path, int c, int stride) {
    plan.resample.push_back(b.conv(path + ".conv", c, c, 3, stride));
    return static_cast<int>(plan.resample.size()) - 1;
  };
  using K = UNetPlan::Kind;
  auto stage = [&](K kind, int index, int size, int cin, int cout, bool concat, bool push, int skip_c = 0) {
    plan.stages.push_back({kind, index, size, cin, cout, concat, skip_c, push});
  };

  plan.time1 = b.linear("time.linear1", C, T);
  plan.time2 = b.linear("time.linear2", T, T);
  plan.conv_in = b.conv("conv_in", config.in_channels, C, 3);

  std::vector<int> skips{C};  // channel counts on the skip stack
  int c = C, size = config.resolution, k = 0;
  for (int level = 0; level < config.levels(); ++level) {
    const int cout = C * config.mult[static_cast<size_t>(level)];
    for (int r = 0; r < config.res_blocks; ++r) {
      const bool attn = attn_at(size);
      stage(K::Res, add_res("down." + std::to_string(k++), c, cout), size, c, cout, false, !attn);
      c = cout;
      if (attn) stage(K::Attn, add_attn("down." + std::to_string(k++), c), size, c, c, false, true);
      skips.push_back(c);
    }
    if (level + 1 < config.levels()) {
      stage(K::Down, add_resample("down." + std::to_string(k++), c, 2), size, c, c, false, true);
      skips.push_back(c);
      size /= 2;
    }
  }
  stage(K::Res, add_res("mid.0", c, c), size, c, c, false, false);
  stage(K::Attn, add_attn("mid.1", c), size, c, c, false, false);
  stage(K::Res, add_res("mid.2", c, c), size, c, c, false, false);
  k = 0;
  for (int level = config.levels() - 1; level >= 0; --level) {
    const int cout = C * config.mult[static_cast<size_t>(level)];
    for (int r = 0; r < config.res_blocks + 1; ++r) {
      const int skip_c = skips.back();
      skips.pop_back();
      stage(K::Res, add_res("up." + std::to_string(k++), c + skip_c, cout), size, c + skip_c, cout, true, false,
            skip_c);
      c = cout;
      if (attn_at(size)) stage(K::Attn, add_attn("up." + std::to_string(k++), c), size, c, c, false, false);
    }
    if (level > 0) {
      stage(K::Up, add_resample("up." + std::to_string(k++), c, 1), size, c, c, false, false);
      size *= 2;
    }
  }
  plan.out_norm = b.norm("out.norm", c);
  plan.out_conv = b.conv("out.conv", c, config.out_channels, 3, 1, z);
  return plan;
}

std::vector<ParamInfo> unet_param_layout(const UNetConfig& config) { return unet_plan(config).params; }

int64_t unet_param_count(const UNetConfig& config) { return unet_plan(config).param_count; }

void unet_init(const UNetConfig& config, uint64_t seed, float* params) {
  const auto layout = unet_param_layout(config);
  for (size_t k = 0; k < layout.size(); ++k) {
    const ParamInfo& p = layout[k];
    float* out = params + p.offset;
    if (p.zero && config.zero_init) {
      std::fill(out, out + p.numel, 0.0f);
    } else if (p.role == ParamRole::NormWeight) {
      std::fill(out, out + p.numel, 1.0f);
    } else if (p.role == ParamRole::NormBias) {
      std::fill(out, out + p.numel, 0.0f);
    } else {
      // kaiming_uniform(a = sqrt(5)) has bound 1/sqrt(fan_in), as does PyTorch's bias init.
      const float bound = static_cast<float>(1.0 / std::sqrt(static_cast<double>(p.fan_in)));
      for (int64_t b = 0; b * 4 < p.numel; ++b) {
        const Philox4 w = philox_block(seed, 0, k, static_cast<uint64_t>(b));
        for (int64_t j = 0; j < 4 && 4 * b + j < p.numel; ++j)
          out[4 * b + j] = bound * (2.0f * u32_to_unit(w.v[j]) - 1.0f);
      }
    }
  }
}

}  // namespace ks
