// kintsugi: diffusion models trained from broken data, on handwritten CUDA kernels and a C++ CPU reference.
export { buildInfo, cudaStatus, defaultDevice, devices, resolveDevice, supports } from './device.ts';
export type { BuildInfo, CudaStatus, DeviceInfo, DeviceSpec } from './device.ts';
export { emptyCache, memoryStats, resetPeakMemory, synchronize } from './memory.ts';
export type { MemoryStats } from './memory.ts';
export { Generator, getDefaultGenerator, manualSeed, philoxBits } from './random.ts';
export type { RngKey } from './random.ts';
export { empty, full, ones, rand, randn, tensor, Tensor, zeros } from './tensor.ts';
export type { CreateOptions, RandomOptions, Shape } from './tensor.ts';
export { presets, resizedConfig, resolveConfig, Tape, UNet, unetLayout } from './unet.ts';
export { unetCost } from './cost.ts';
export type { UNetCost, UNetStage } from './cost.ts';
export type { ParamInfo, Precision, StageTime, TimedStage, UNetConfig, UNetPreset } from './unet.ts';
export { decodeSafetensors, encodeSafetensors, readSafetensors, writeSafetensors } from './safetensors.ts';
export type { SafetensorsDtype, SafetensorsEntry, SafetensorsFile } from './safetensors.ts';
export { AdamW, EMA } from './optim.ts';
export type { AdamWOptions, AdamWState, Parameters } from './optim.ts';
export { CHECKPOINT_FORMAT, loadUNet, readCheckpoint, resumeTraining, saveCheckpoint } from './checkpoint.ts';
export type { Checkpoint, CheckpointOptimizerState, Prediction, SaveOptions } from './checkpoint.ts';
export { NoiseSchedule, targetOf, splitPrediction } from './schedule.ts';
export type { ScheduleConfig } from './schedule.ts';
export { sample, TIMESTEP_SPACINGS, timesteps, unetDenoiser } from './sample.ts';
export { uniformAttentionGuidance, uniformAttentionParams } from './guidance.ts';
export type { Denoiser, SampleOptions, TimestepSpacing } from './sample.ts';
export { philoxBlock, philoxIntegers } from './random.ts';
export { train } from './train.ts';
export type { Dataset, TrainOptions, TrainProgress, TrainResult } from './train.ts';
export { trainingLoop, TrainingRun, trainingRun } from './training-loop.ts';
export type { CheckpointMeta, LoopOptions, QueuedStep, StepFn } from './training-loop.ts';
export { decodeIdx, encodeIdx, readIdx, writeIdx } from './data/idx.ts';
export type { IdxArray, IdxType } from './data/idx.ts';
export { decodePng, encodePng, gridToPng, imageToPng, readPng, writePng } from './data/png.ts';
export type { GridOptions, PngImage } from './data/png.ts';
export { decodeNpy, encodeNpy, readNpy, writeNpy } from './data/npy.ts';
export type { NpyArray } from './data/npy.ts';
export { readImageFolder } from './data/images.ts';
export type { ImageFolder, ImageFolderOptions } from './data/images.ts';
export { DEBIAN_FASHION_MNIST_DIR, FASHION_MNIST_CLASSES, loadFashionMnist } from './data/fashion-mnist.ts';
export type { FashionMnist, FashionMnistOptions } from './data/fashion-mnist.ts';
export { lossCurveSvg } from './data/plot.ts';
export { writeFileAtomic } from './write-atomic.ts';
export { DEFAULT_GSURE_DIFFERENCE, DEFAULT_GSURE_EPS, GSURE_STREAMS_PER_STEP, gsureDraws, gsureStep } from './gsure/step.ts';
export type { GsureBatch, GsureLossValues, GsureModel, GsureOptions, GsureStepResult } from './gsure/step.ts';
export { divergenceCoefficients, gsureProbes, gsureTerms, minValidStep, OFFICIAL_LAMBDA, svdNoise } from './gsure/kernels.ts';
export type { GsureTermsInputs, GsureTermsOutputs, GsureVariant } from './gsure/kernels.ts';
export { divergenceStudy } from './gsure/divergence.ts';
export { checkObserved, gsureBatch, gsureSchedule, svdStatistics, trainGsure, unobservedCoordinates } from './gsure/train.ts';
export type { GsureTrainOptions, SvdStatistics } from './gsure/train.ts';
export type { DivergenceStudy, DivergenceStudyOptions, DivergenceStudyRow } from './gsure/divergence.ts';
export { BlockAverageOperator } from './corruption/block-average.ts';
export { FourierOperator, LINE_STREAM, randomFourier, randomLineMask } from './corruption/fourier.ts';
export type { LineMaskOptions } from './corruption/fourier.ts';
export { MASK_STREAM, MaskOperator, randomMask, randomPatchMask } from './corruption/mask.ts';
export type { MaskOperatorOptions, RandomMaskOptions } from './corruption/mask.ts';
export { measure, NOISE_STREAM } from './corruption/measure.ts';
export type { MeasureOptions } from './corruption/measure.ts';
export type { Degradation, DegradationKind } from './corruption/operator.ts';
export {
  corruptDataset,
  loadMeasurements,
  MEASUREMENTS_FORMAT,
  MeasurementSet,
  parseCorruption,
  saveMeasurements,
} from './corruption/dataset.ts';
export type { CorruptionSpec, CorruptOptions, OperatorParams } from './corruption/dataset.ts';
export { readMaskedImageFolder, readMeasurementNpy } from './data/measurements.ts';
export type { MaskedFolderOptions, NpyMeasurementOptions } from './data/measurements.ts';
export { psnr } from './metrics/psnr.ts';
export type { ImageMetric, ImageMetricOptions } from './metrics/psnr.ts';
export { ssim } from './metrics/ssim.ts';
export { slicedWasserstein } from './metrics/sliced-wasserstein.ts';
export type { SlicedWassersteinOptions } from './metrics/sliced-wasserstein.ts';
export { frechetDistance, frechetDistanceGaussians, gaussianFit } from './metrics/frechet.ts';
export type { Gaussian } from './metrics/frechet.ts';
export { precisionRecall } from './metrics/precision-recall.ts';
export type { PrecisionRecall, PrecisionRecallOptions } from './metrics/precision-recall.ts';
export { fdFmnist, fdFmnistClassify, fdFmnistFeatures, loadFdFmnistClassifier } from './metrics/fd-fmnist.ts';
export type { FdFmnistOptions } from './metrics/fd-fmnist.ts';
export type { SampleBatch } from './metrics/batch.ts';
export {
  aggregate,
  avgPool,
  concatChannels,
  extractPatches,
  highPass,
  overlapAdd,
  patchCount,
  patchOffsets,
  upsampleNearest,
} from './bootstrap/views.ts';
export type { AggregateInputs, LowresView, PatchView, PatchWindow, View } from './bootstrap/views.ts';
export { alphaBarAt, matchPooledLevel, timeAtLogSnr } from './bootstrap/noise-level.ts';
export type { MatchedLevel } from './bootstrap/noise-level.ts';
export { aggregateEstimate, bootstrapDenoiser } from './bootstrap/denoiser.ts';
export type { BootstrapViews, LowresViewModel, PatchViewModel, ResidualModel, ViewModel } from './bootstrap/denoiser.ts';
export { residualLoss, trainResidual } from './bootstrap/train.ts';
export type { ResidualPenalty, ResidualTrainOptions } from './bootstrap/train.ts';
export { cropDataset, lowresDataset } from './bootstrap/data.ts';
export type { CropDataset } from './bootstrap/data.ts';
export { patchPosition, trainPatchModel } from './bootstrap/train-patches.ts';
export type { PatchTrainOptions } from './bootstrap/train-patches.ts';
export { loadBootstrap, parseViews, trainBootstrap } from './bootstrap/run.ts';
export type { BootstrapManifest, BootstrapRunOptions, LoadedBootstrap, ViewSpec } from './bootstrap/run.ts';
export { GaussianMixture, MIXTURE_FORMAT, NoisedMixture, TRAINING_STREAM } from './score-error/mixture.ts';
export type { MixtureComponent, RandomMixtureOptions } from './score-error/mixture.ts';
export { binomialCdf, minimumSamples, quantileWithBound } from './score-error/quantile.ts';
export type { QuantileEstimate } from './score-error/quantile.ts';
export { scoreErrorAudit } from './score-error/audit.ts';
export type { AuditedDenoiser, ScoreErrorLevel, ScoreErrorOptions, ScoreErrorReport } from './score-error/audit.ts';
export { expandMask, fitGaussianPrior, observationLogLikelihood, posteriorMean, posteriorSample } from './diffem/gaussian-prior.ts';
export type { GaussianPrior, GaussianPriorFitOptions } from './diffem/gaussian-prior.ts';
export { karrasSigmas, precondition, resolveEdm } from './diffem/edm.ts';
export type { EdmConfig, Preconditioning, ResolvedEdm } from './diffem/edm.ts';
export { checkConditionalModel, conditionalDenoiser, conditionalSample, trainConditional, veSample } from './diffem/conditional.ts';
export type { ConditionalPairs, ConditionalTrainOptions, Observations, VeDenoiser, VeSampleOptions } from './diffem/conditional.ts';
export { corruptWithMasks, diffem, DIFFEM_DEFAULTS, lastReconstructions, observationsOf } from './diffem/em.ts';
export type { DiffemOptions, DiffemResult, DiffemRound, EStep } from './diffem/em.ts';
export { corruptWith, observationsFrom } from './diffem/observations.ts';
export type { ConditionKind, DiffemCorruption, MaskCorruption, ObservationOptions, OperatorCorruption } from './diffem/observations.ts';
export { gaussianRoundZero } from './diffem/round-zero.ts';
export type { RoundZero, RoundZeroOptions } from './diffem/round-zero.ts';
export { unetPrior, x0Coefficients } from './restore/denoiser.ts';
export type { Denoised, PriorDenoiser } from './restore/denoiser.ts';
export { denseGaussian, denseOperator, gaussianDenoiser, gaussianPosterior } from './restore/gaussian.ts';
export type { DenseGaussian } from './restore/gaussian.ts';
export { conjugateGradient } from './restore/cg.ts';
export { DEFAULT_STEPS, posteriorBatch, RESTORE_METHODS } from './restore/samplers.ts';
export type { PosteriorOptions, RestoreMethod } from './restore/samplers.ts';
export { momentsOf, restore } from './restore/restore.ts';
export type { Restoration, RestoreOptions } from './restore/restore.ts';
// Transfer learning through a shared condition encoder (docs/transfer.md).
export { HostAdamW } from './optim.ts';
export type { ParamGroup } from './optim.ts';
export { Mlp, mlpLayout } from './transfer/mlp.ts';
export type { Activation, MlpConfig } from './transfer/mlp.ts';
export { alphaOf, sigmaOf, targetModel, TransferModel } from './transfer/model.ts';
export type { NetConfig, TransferConfig } from './transfer/model.ts';
export { dsmStep, trainTransfer } from './transfer/train.ts';
export type { PairSet, TransferTrainOptions, TransferTrainResult } from './transfer/train.ts';
export {
  ancestralSample,
  meanSquaredError,
  posteriorMean as transferPosteriorMean,
  sampleConditional,
  sampleMse,
} from './transfer/sample.ts';
export type { SampleOptions as TransferSampleOptions } from './transfer/sample.ts';
export { loadTransfer, saveTransfer } from './transfer/checkpoint.ts';
export type { LoadedTransfer, TransferMeta } from './transfer/checkpoint.ts';
export { langevinPaths, langevinTask, malaPosteriorMean, measurementMatrix } from './transfer/langevin.ts';
export { loadMnistDigit } from './transfer/mnist.ts';
export { loadPairs, parseDataSpec } from './transfer/data.ts';
export { unetCondition } from './transfer/unet-cond.ts';
export type { UNetCondition } from './transfer/unet-cond.ts';
export { AMBIENT_SAMPLING_STREAM, furtherCorrupt } from './ambient/masks.ts';
export type { FurtherCorruption } from './ambient/masks.ts';
export { ambientBatch, ambientLoss, ambientMaskLaw, DEFAULT_AMBIENT_DELTA, trainAmbient } from './ambient/train.ts';
export type { AmbientBatch, AmbientMaskLaw, AmbientTrainOptions } from './ambient/train.ts';
export { ambientDenoiser, ambientLawOf, ambientSamplingMasks } from './ambient/sample.ts';
