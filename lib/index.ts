// kintsugi: diffusion models trained from broken data, on handwritten CUDA kernels and a C++ CPU reference.
export { buildInfo, cudaStatus, defaultDevice, devices, resolveDevice } from './device.ts';
export type { BuildInfo, CudaStatus, DeviceInfo, DeviceSpec } from './device.ts';
export { emptyCache, memoryStats, resetPeakMemory, synchronize } from './memory.ts';
export type { MemoryStats } from './memory.ts';
export { Generator, getDefaultGenerator, manualSeed, philoxBits } from './random.ts';
export type { RngKey } from './random.ts';
export { empty, full, ones, rand, randn, tensor, Tensor, zeros } from './tensor.ts';
export type { CreateOptions, RandomOptions, Shape } from './tensor.ts';
export { presets, resolveConfig, Tape, UNet, unetLayout } from './unet.ts';
export type { ParamInfo, UNetConfig, UNetPreset } from './unet.ts';
export { decodeSafetensors, encodeSafetensors, readSafetensors, writeSafetensors } from './safetensors.ts';
export type { SafetensorsDtype, SafetensorsEntry, SafetensorsFile } from './safetensors.ts';
export { AdamW, EMA } from './optim.ts';
export type { AdamWOptions, AdamWState, Parameters } from './optim.ts';
export { CHECKPOINT_FORMAT, loadUNet, readCheckpoint, resumeTraining, saveCheckpoint } from './checkpoint.ts';
export type { Checkpoint, CheckpointOptimizerState, Prediction, SaveOptions } from './checkpoint.ts';
