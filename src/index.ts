/** neox-ckpt: read, stream, convert and verify GPT-NeoX / DeepSpeed checkpoints without Python. */

export type { Metrics, StepMetrics, TensorInfo } from "./analysis/metrics.js";
export { metricsCsv } from "./analysis/metrics.js";
export {
  type AnalysisFiles,
  type WriteAnalysisOptions,
  writeAnalysis,
} from "./analysis/outputs.js";
export { type WritePlotsOptions, writePlots } from "./analysis/plots.js";
export {
  type BatchItem,
  type BatchSummary,
  batchItems,
  type ExportBatchOptions,
  exportBatch,
  stepItems,
} from "./data/batch.js";
export { type DatasetSummary, describeDataset } from "./data/describe-dataset.js";
export {
  DatasetFileNotFoundError,
  DatasetFormatError,
  DatasetIndexError,
  ItemsOutOfRangeError,
} from "./data/errors.js";
// Training data (Megatron indexed datasets).
export { IndexedDataset, openIndexedDataset } from "./data/indexed-dataset.js";
export * from "./model/index.js";
export { NeoxLayoutError } from "./neox/errors.js";
export { type NeoxModel, resolveModel } from "./neox/model.js";
export { planNeoxToHf } from "./neox/plan-neox-to-hf.js";
export { type NeoxStep, openNeoxStep } from "./neox/step.js";
export { openTensorSet } from "./neox/tensor-set.js";
export type { AnalyzeOptions } from "./ops/analyze.js";
export { analyzeRepository } from "./ops/analyze.js";
export type { AuditOptions, AuditReport, Finding, FindingKind } from "./ops/audit.js";
export { auditRepository } from "./ops/audit.js";
export { type BatchLossReport, batchLoss } from "./ops/batch-loss.js";
export { HfWeightsMismatchError } from "./ops/check-hf-weights.js";
// Options and results of the operations.
export type { ConvertOptions, ConvertResult, PlanConversionOptions } from "./ops/convert.js";
export { convertToHf, planConversion } from "./ops/convert.js";
export type { DiffOptions, TensorDiff } from "./ops/diff.js";
export { diffTensorSets } from "./ops/diff.js";
// Resuming in today's trainers.
export {
  type ExportTrainerOptions,
  type ExportTrainerResult,
  exportTrainerCheckpoint,
  TrainerExportError,
} from "./ops/export-trainer.js";
export {
  type ReadTrainerOptions,
  readTrainerCheckpoint,
  TrainerCheckpointError,
  type TrainerStates,
} from "./ops/from-trainer.js";
export type { InspectReport } from "./ops/inspect.js";
export { inspectStep } from "./ops/inspect.js";
export { type MemorizationReport, memorizationScores } from "./ops/memorization.js";
export type { OptimExportOptions, OptimExportResult } from "./ops/optim.js";
export { exportOptimizerStates } from "./ops/optim.js";
export {
  hfToNeox,
  type ReshardOptions,
  reshardStep,
  type ToNeoxOptimizer,
  type ToNeoxOptions,
  type ToNeoxResult,
} from "./ops/reshard.js";
export type { SynthOptions, SynthResult } from "./ops/synth.js";
export { synthesize } from "./ops/synth.js";
export type { VerifyFinding, VerifyOptions, VerifyReport } from "./ops/verify.js";
export { verifyStep } from "./ops/verify.js";
export { type FullCheckpoint, writeNeoxStep } from "./ops/write-neox-step.js";
export {
  type ExecuteOptions,
  executePlan,
  PlanError,
  PlanSource,
  replicatedMaxDiff,
} from "./plan/execute.js";
export type { MergeOp, TensorPlan } from "./plan/plan.js";
export { downloadFolder } from "./repo/download.js";
export { openRepository } from "./repo/repository.js";
// Repository selection.
export {
  nearestStep,
  type SelectNamesOptions,
  type SelectStepsOptions,
  selectNames,
  selectSteps,
  steppedRevisions,
} from "./repo/select.js";
export { openSafetensors } from "./safetensors/read.js";
export { openSafetensorsDir } from "./safetensors/read-dir.js";
export { writeShardedSafetensors } from "./safetensors/shard.js";
export { writeSafetensors } from "./safetensors/write.js";
export { createViewerApi } from "./server/api.js";
export { startHubServer } from "./server/hub.js";
export { createHubViewer, startViewer } from "./server/viewer.js";
export { type ByteSource, CountingSource, SourceRangeError } from "./source/byte-source.js";
// Remote sources: block cache, hub errors, S3.
export { CachedSource } from "./source/cached.js";
export type { FileInfo, Folder } from "./source/folder.js";
export { HttpSource, HttpSourceError, HttpStats, SourceChangedError } from "./source/http.js";
export { openHttpFile } from "./source/http-file.js";
export { RepositoryNotFoundError } from "./source/hub-api.js";
export { LocalFileSource } from "./source/local-file.js";
export { LocalFolder } from "./source/local-folder.js";
export { MemorySource } from "./source/memory.js";
export { openFolder, openSource } from "./source/open.js";
export {
  type OutputFolder,
  OutputNotEmptyError,
  writeOutputFolder,
} from "./source/output-folder.js";
export { RevisionNotFoundError } from "./source/revision-not-found.js";
export { openS3File, S3Source } from "./source/s3.js";
export { S3Client, S3RequestError } from "./source/s3-client.js";
export { S3Folder } from "./source/s3-folder.js";
export { S3ObjectSink, writeS3Object } from "./source/s3-sink.js";
export { DTYPES, type DTypeInfo, dtypeByName } from "./torch/dtype.js";
export { CHUNK_BYTES, type ElementSource, elementChunks } from "./torch/element-source.js";
export { TorchFormatError } from "./torch/errors.js";
export { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "./torch/half.js";
export { openTorch, openTorchPath, type TorchFile } from "./torch/load.js";
export { NewStorage, NewTensor } from "./torch/new-tensor.js";
export * from "./torch/pyvalue.js";
export { saveTorch } from "./torch/save-torch.js";
export { TensorRef } from "./torch/tensor.js";
export { tensorSha256 } from "./torch/tensor-hash.js";
export { formatTree, toJsonTree } from "./torch/tree.js";
// Scanning a file for what torch would run.
export {
  type ForeignFinding,
  type ForeignScan,
  type NamedTensor,
  scanForeign,
  walkTensors,
} from "./torch/walk.js";
// Errors: every typed error of the library extends CheckpointError (file, record, offset).
export { CheckpointError, NotFoundError } from "./util/errors.js";
export { optimizerState, planOptimizerStates } from "./zero/plan-optim.js";
export { readRankOptimState } from "./zero/rank-state.js";
