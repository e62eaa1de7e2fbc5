// @ts-check
// The JSON the API answers (web/API.md), as the server's TypeScript declares it: the web
// modules import these names from here only, so a change on the server side fails the type
// check of the pages that read it. Nothing here runs in the browser.

/** @typedef {import("../../src/server/api.js").TensorResponse} TensorResponse */
/** @typedef {TensorResponse["stats"]} TensorStats */

/**
 * `api/repo`: the repository and its revisions in step order.
 * @typedef {{
 *   name: string,
 *   analysis: boolean,
 *   data: boolean,
 *   revisions: RevisionEntry[],
 * }} RepoResponse
 */
/**
 * @typedef {{ name: string, step: number | null, files: number, bytes: number }} RevisionEntry
 */

/**
 * `api/repos` (the hub mount): the ORG/NAME folders below its root.
 * @typedef {{ root: true, repositories: string[] }} ReposResponse
 */

/**
 * The optimizer scalars of a step, as `optimizer.json` of `neox-ckpt optim` minus the states
 * not yet created.
 * @typedef {Omit<
 *   Awaited<ReturnType<typeof import("../../src/zero/scalars.js").optimizerScalars>>,
 *   "states_not_yet_created"
 * >} OptimizerScalars
 */

/**
 * `api/step/:rev`: the inspect report plus what the viewer needs around it.
 * @typedef {import("../../src/ops/inspect.js").InspectReport & {
 *   revision: string,
 *   config: Record<string, unknown>,
 *   optimizerScalars: OptimizerScalars | null,
 *   states: string[],
 * }} StepResponse
 */

/**
 * `api/slice/:rev/:name`: a window of at most 64 × 64 values (non-finite ones null) of the
 * tensor seen as a matrix.
 * @typedef {{
 *   revision: string,
 *   step: number | null,
 *   name: string,
 *   state: string,
 *   shape: number[],
 *   dtype: string,
 *   matrix: [number, number],
 *   rows: [number, number],
 *   cols: [number, number],
 *   values: (number | null)[][],
 * }} SliceResponse
 */

/**
 * One revision of `api/across`: the statistics, or why there are none.
 * @typedef {{
 *   revision: string,
 *   step: number | null,
 *   shape?: number[],
 *   stats: TensorStats | null,
 *   error?: string,
 * }} AcrossEntry
 */
/**
 * `api/across/:name`: one tensor's statistics at every revision.
 * @typedef {{ name: string, state: string, revisions: AcrossEntry[] }} AcrossResponse
 */

/**
 * `api/batch/:rev`: the first items of a training iteration's batch (when the viewer has data).
 * @typedef {import("../../src/server/batch-route.js").BatchResponse} BatchResponse
 */

/**
 * `api/ls/:rev/:file`: a file of the step as `neox-ckpt ls FILE` prints it.
 * @typedef {import("../../src/server/ls-route.js").LsResponse} LsResponse
 */

/**
 * `api/dynamics`: the analysis folder's metrics.json.
 * @typedef {import("../../src/analysis/metrics.js").Metrics} DynamicsResponse
 */

export {};
