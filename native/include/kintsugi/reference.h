// The double-precision CPU reference of the network ops and of the whole UNet, forward and backward:
// what gradient checks and the PyTorch fixtures compare with. Not part of the public API.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>
#include "kintsugi/unet.h"

namespace ks {

// Named arrays and numbers in (e.g. "x", "weight", "n"), named arrays out (e.g. "out", "grad.x").
struct RefArgs {
  std::map<std::string, std::vector<double>> arrays;
  std::map<std::string, double> numbers;
};
using RefArrays = std::map<std::string, std::vector<double>>;
using RefDone = std::function<void(RefArrays&& result, const std::string* error)>;

// Checks the arguments here (std::invalid_argument naming the key), runs on the CPU queue, then calls
// done on the worker (native/core/reference_ops.cpp).
void reference_op(const std::string& op, const RefArgs& args, RefDone done);
void reference_unet(const UNetConfig& config, const RefArgs& args, RefDone done);

namespace cpu {
// The checked work itself (native/cpu/reference.cpp): call the returned function to run it.
std::function<RefArrays()> reference_plan(const std::string& op, const RefArgs& args);
std::function<RefArrays()> reference_unet_plan(const UNetConfig& config, const RefArgs& args);
}  // namespace cpu

}  // namespace ks
