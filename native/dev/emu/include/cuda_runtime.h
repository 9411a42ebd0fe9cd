// Stand-in for the CUDA runtime header under the host emulator: the real native/cuda/common.cuh (and
// every kernel file) compiles against emu.h instead.
#pragma once
#include "../emu.h"
