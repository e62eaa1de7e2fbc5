/**
 * Threads that run the forward pass's operations together on one shared WebAssembly memory:
 * the calling thread does part 0 of every operation and `threads − 1` workers the others.
 * An operation is posted through a control block at the start of the memory (arguments, a
 * sequence number the workers wait on, a count of parts still running), so posting one
 * allocates nothing and costs about a microsecond.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { Arena } from "./arena.js";
import { ComputePoolError } from "./errors.js";
import { CONTROL_BYTES, Ctl, Heap, kernelsModule, sharedMemory } from "./heap.js";
import { ARG_SLOTS, runOp } from "./ops.js";

/** Most threads a pool may have: each costs a worker and a share of every operation's handoff. */
export const MAX_THREADS = 64;
/** Default thread cap: speed-ups past this on ~1e8-flop products are unmeasured here. */
export const DEFAULT_MAX_THREADS = 16;
/** Polls of the control block before sleeping: a few microseconds, the gap between operations. */
export const SPIN_POLLS = 20000;
/** Longest the caller waits for the workers' parts of one operation before giving up. */
export const MAX_OPERATION_MS = 600_000;

/** Byte offset of the argument slots (float64) in the control block. */
export const ARGS_OFFSET = 64;
/** Byte offset and size of the error text a failing worker leaves. */
export const ERROR_OFFSET = 1024;
export const ERROR_BYTES = CONTROL_BYTES - ERROR_OFFSET;

/** What a worker receives. */
export interface WorkerData {
  memory: unknown;
  module: unknown;
  part: number;
  parts: number;
}

/** Options of {@link ComputePool.create}. */
export interface ComputePoolOptions {
  /** Threads, the caller's included. Default: the available cores, at most 16. */
  threads?: number;
}

/** The caller's thread and its workers over one shared memory. */
export class ComputePool {
  /** Argument slots of the next operation (write them, then {@link run}). */
  readonly args: Float64Array;
  private readonly ctl: Int32Array;
  private disposed = false;

  private constructor(
    readonly heap: Heap,
    readonly arena: Arena,
    private readonly workers: Worker[],
  ) {
    const buffer = heap.memory.buffer;
    this.ctl = heap.ctl;
    this.args = new Float64Array(buffer, ARGS_OFFSET, ARG_SLOTS);
  }

  /** Starts a pool: compiles the kernels, makes the memory and starts the workers. */
  static async create(options: ComputePoolOptions = {}): Promise<ComputePool> {
    const threads = options.threads ?? Math.min(availableParallelism(), DEFAULT_MAX_THREADS);
    if (!Number.isSafeInteger(threads) || threads < 1 || threads > MAX_THREADS) {
      throw new ComputePoolError(`threads ${threads} is not an integer in [1, ${MAX_THREADS}]`);
    }
    const module = kernelsModule();
    const memory = sharedMemory(1);
    const heap = new Heap(memory, module);
    const arena = new Arena(memory, CONTROL_BYTES);
    const workers: Worker[] = [];
    try {
      await Promise.all(
        Array.from({ length: threads - 1 }, (_, i) => {
          const data: WorkerData = { memory, module, part: i + 1, parts: threads };
          const w = new Worker(new URL("./worker.js", import.meta.url), { workerData: data });
          workers.push(w);
          return new Promise<void>((resolve, reject) => {
            w.once("message", () => resolve());
            w.once("error", reject);
            w.once("exit", (code) =>
              reject(new ComputePoolError(`worker exited with ${code} while starting`)),
            );
          });
        }),
      );
    } catch (e) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw e instanceof ComputePoolError
        ? e
        : new ComputePoolError(`starting a worker failed: ${String(e)}`);
    }
    for (const w of workers) {
      w.removeAllListeners();
      // A worker that dies later is reported by the next operation's failure or timeout.
      w.on("error", () => {});
      w.unref();
    }
    return new ComputePool(heap, arena, workers);
  }

  /** Threads taking part in every operation, the caller's included. */
  get parts(): number {
    return this.workers.length + 1;
  }

  /**
   * Runs operation `op` with the arguments in {@link args} on every thread and returns when all
   * parts are done. Blocks the calling thread meanwhile (it computes part 0).
   */
  run(op: number): void {
    if (this.disposed) throw new ComputePoolError("the compute pool was disposed");
    this.heap.refresh();
    const parts = this.parts;
    const ctl = this.ctl;
    ctl[Ctl.ticket] = 0;
    if (parts === 1) {
      runOp(this.heap, op, this.args, 0, 1);
      return;
    }
    ctl[Ctl.op] = op;
    Atomics.store(ctl, Ctl.pending, parts - 1);
    Atomics.add(ctl, Ctl.seq, 1);
    Atomics.notify(ctl, Ctl.seq);
    let own: unknown;
    try {
      runOp(this.heap, op, this.args, 0, parts);
    } catch (e) {
      own = e;
    }
    this.waitForWorkers();
    if (Atomics.load(ctl, Ctl.failed)) {
      const n = ctl[Ctl.errorLength] as number;
      const text = new TextDecoder().decode(
        new Uint8Array(this.heap.memory.buffer, ERROR_OFFSET, n).slice(),
      );
      Atomics.store(ctl, Ctl.failed, 0);
      throw new ComputePoolError(`a worker failed: ${text}`);
    }
    if (own !== undefined) throw own;
  }

  private waitForWorkers(): void {
    const ctl = this.ctl;
    let polls = 0;
    let started = 0;
    for (;;) {
      const left = Atomics.load(ctl, Ctl.pending);
      if (left === 0) return;
      if (++polls < SPIN_POLLS) continue;
      if (started === 0) started = performance.now();
      else if (performance.now() - started > MAX_OPERATION_MS) {
        throw new ComputePoolError(
          `workers did not finish an operation within ${MAX_OPERATION_MS} ms`,
        );
      }
      Atomics.wait(ctl, Ctl.pending, left, 100);
    }
  }

  /** Stops the workers. The pool cannot be used afterwards. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    Atomics.store(this.ctl, Ctl.stop, 1);
    Atomics.add(this.ctl, Ctl.seq, 1);
    Atomics.notify(this.ctl, Ctl.seq);
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
