// The op registry seen from outside native/core: which ops exist, which device kinds run them, and the
// generic entry point every op declared with KS_GENERIC_OP answers (core/registry.h declares them;
// docs/adding-an-op.md is the recipe).
#pragma once
#include <map>
#include <string>
#include <vector>
#include "kintsugi/device.h"
#include "kintsugi/tensor.h"

namespace ks {

// Whether `op` runs on `device`'s kind in this binary: every registered op has a CPU function; a CUDA
// device needs a CUDA build and a CUDA function in the op's row. Unknown ops give false. Does not ask
// whether the device exists (check_device does).
bool supports(const std::string& op, const Device& device);

struct OpEntry {
  std::string name;
  bool cuda = false;     // has a CUDA function in this binary
  bool generic = false;  // callable through call_op (by name, attributes and tensor lists)
};
// Every registered op, sorted by name.
std::vector<OpEntry> registered_ops();

// A call by name: integer attributes, input tensors, output tensors (an output may be an empty
// Tensor where the op allows it: an optional output such as a gradient that is not wanted).
struct OpCall {
  std::map<std::string, double> attrs;
  std::vector<Tensor> in, out;
};
// Validates `call` against the op's checks and queues it on the device of its tensors.
void call_op(const std::string& op, const OpCall& call);

}  // namespace ks
