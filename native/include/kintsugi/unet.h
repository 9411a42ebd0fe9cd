// The UNet of docs/unet.md: configuration, presets, and the parameter layout shared by every backend.
// Parameters live in one flat float array in checkpoint-key order, so the optimiser, gradient
// clipping and the EMA each make one pass over one buffer.
#pragma once
#include "kintsugi/precision.h"
#include <cstdint>
#include <string>
#include <vector>

namespace ks {

struct UNetConfig {
  int in_channels = 1;
  int out_channels = 1;
  int channels = 32;            // C, the base width
  std::vector<int> mult{1, 2};  // width multiplier per level
  int res_blocks = 1;           // ResBlocks per level on the way down
  std::vector<int> attn_resolutions{8};
  int resolution = 16;  // input height = width
  // Zero-initialise each ResBlock's conv2, each Attention's proj and out.conv, so that every block
  // starts as the identity (DDPM practice). Off gives PyTorch's default initialisation everywhere.
  bool zero_init = true;
  // Operand precision of every convolution (kintsugi/precision.h): not part of the architecture or of
  // checkpoints; set per network instance (UNet's `precision` option).
  Precision precision = Precision::fp32;

  void validate() const;  // throws std::invalid_argument naming the field
  int levels() const { return static_cast<int>(mult.size()); }
};

// "tiny16", "fmnist32", "cifar32"; throws for any other name, listing the known ones.
UNetConfig unet_preset(const std::string& name);

enum class ParamRole { ConvWeight, ConvBias, LinearWeight, LinearBias, NormWeight, NormBias };

struct ParamInfo {
  std::string name;  // checkpoint key, e.g. "down.0.conv1.weight"
  std::vector<int64_t> shape;
  int64_t offset = 0;  // into the flat parameter array (elements)
  int64_t numel = 0;
  ParamRole role = ParamRole::ConvWeight;
  int64_t fan_in = 0;  // of the layer the parameter belongs to (init bounds)
  bool zero = false;   // starts at zero under zero_init
};

// The network as executors walk it: modules with their parameter offsets, and the stages in
// execution order between conv_in and the output head.
struct UNetPlan {
  struct Conv {
    int64_t w = 0, b = 0;
    int cin = 0, cout = 0, k = 3, stride = 1;
    Precision precision = Precision::fp32;
  };
  struct Norm {
    int64_t w = 0, b = 0;
    int c = 0, groups = 1;
  };
  struct Linear {
    int64_t w = 0, b = 0;
    int in = 0, out = 0;
  };
  struct Res {
    Norm norm1;
    Conv conv1;
    Linear time;
    Norm norm2;
    Conv conv2;
    bool has_skip = false;
    Conv skip;
  };
  struct Attn {
    Norm norm;
    Conv qkv, proj;
    int c = 0;
  };
  enum class Kind { Res, Attn, Down, Up };
  struct Stage {
    Kind kind;
    int index;           // into res, attn or resample by kind
    int size;            // spatial size of the stage's input
    int cin, cout;       // cin includes the concatenated skip
    bool concat_before;  // up path: h = concat(h, pop()) first
    int skip_c;          // channels of that skip (the last skip_c of cin); 0 without concat
    bool push_after;     // down path: push the output on the skip stack
  };

  UNetConfig config;
  Linear time1, time2;
  Conv conv_in;
  Norm out_norm;
  Conv out_conv;
  std::vector<Res> res;
  std::vector<Attn> attn;
  std::vector<Conv> resample;  // Downsample / Upsample convolutions
  std::vector<Stage> stages;
  std::vector<ParamInfo> params;
  int64_t param_count = 0;
};

UNetPlan unet_plan(const UNetConfig& config);

// Every parameter, in checkpoint order: time.*, conv_in, down.*, mid.*, up.*, out.*.
std::vector<ParamInfo> unet_param_layout(const UNetConfig& config);
int64_t unet_param_count(const UNetConfig& config);

// PyTorch-default initialisation drawn from Philox4x32-10: parameter k (in layout order) uses
// stream k of `seed`; a weight or bias of a layer with fan-in f gets U(-1/sqrt(f), 1/sqrt(f)) from
// 24-bit uniforms, norms get weight 1 and bias 0, and zero-init parameters 0.
void unet_init(const UNetConfig& config, uint64_t seed, float* params);

}  // namespace ks
