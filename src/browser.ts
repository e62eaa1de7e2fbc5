/**
 * The library's browser entry: what the static viewer (web/static.html) reads a hub repository
 * with — `fetch` range reads, NeoX steps, merge plans, ZeRO states, statistics — and nothing
 * that needs Node. Its static imports reach no `node:` module and no Node-only package
 * (test/arch/layers.test.ts checks it); `npm run build` bundles it with the static viewer into
 * web/lib/.
 */
export { statsPasses, type TensorStats, tensorStats } from "./analysis/stats.js";
export { loadYaml } from "./neox/config.js";
export { resolveModel } from "./neox/model.js";
export { planNeoxToHf } from "./neox/plan-neox-to-hf.js";
export { type NeoxStep, openNeoxStep } from "./neox/step.js";
export { type InspectReport, inspectStep } from "./ops/inspect.js";
export {
  isFloatPlan,
  matrixShape,
  sliceAnswer,
  stepAnswer,
  type TensorAnswer,
  tensorAnswer,
} from "./ops/viewer-answers.js";
export { toFloat32 } from "./plan/cast.js";
export { PlanSource } from "./plan/execute.js";
export { numelOf, type TensorPlan } from "./plan/plan.js";
export { openFetchRepository } from "./repo/fetch-repository.js";
export type { Repository, Revision } from "./repo/revisions.js";
export { FetchHubFolder, type FetchHubOptions, fetchHubRefs } from "./source/fetch-hub.js";
export { FetchSource, type FetchSourceOptions, openFetchFile } from "./source/fetch-source.js";
export { openTorch } from "./torch/load.js";
export { LS_MAX_ITEMS, type LsReport, lsReport } from "./torch/ls-report.js";
export { CheckpointError } from "./util/errors.js";
export { planOptimizerStates } from "./zero/plan-optim.js";
export { readRankOptimState, STATE_KINDS, type StateKind } from "./zero/rank-state.js";
export { optimizerScalars } from "./zero/scalars.js";
