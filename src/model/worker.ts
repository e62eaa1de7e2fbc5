/** A compute-pool worker: waits for operations in the control block and runs its part of each. */
import { parentPort, workerData } from "node:worker_threads";
import { Ctl, Heap } from "./heap.js";
import { ARG_SLOTS, runOp } from "./ops.js";
import { ARGS_OFFSET, ERROR_BYTES, ERROR_OFFSET, SPIN_POLLS, type WorkerData } from "./pool.js";
import type { WasmMemory, WasmModule } from "./wasm-api.js";

const data = workerData as WorkerData;
const memory = data.memory as WasmMemory;
const heap = new Heap(memory, data.module as WasmModule);
const ctl = heap.ctl;
const args = new Float64Array(memory.buffer, ARGS_OFFSET, ARG_SLOTS);
const encoder = new TextEncoder();

function fail(e: unknown): void {
  const bytes = encoder.encode(e instanceof Error ? (e.stack ?? e.message) : String(e));
  const n = Math.min(bytes.length, ERROR_BYTES);
  new Uint8Array(memory.buffer, ERROR_OFFSET, n).set(bytes.subarray(0, n));
  ctl[Ctl.errorLength] = n;
  Atomics.store(ctl, Ctl.failed, 1);
}

let seen = Atomics.load(ctl, Ctl.seq);
parentPort?.postMessage("ready");
for (;;) {
  let polls = 0;
  while (Atomics.load(ctl, Ctl.seq) === seen) {
    if (++polls > SPIN_POLLS) {
      Atomics.wait(ctl, Ctl.seq, seen);
      polls = 0;
    }
  }
  seen = Atomics.load(ctl, Ctl.seq);
  if (Atomics.load(ctl, Ctl.stop)) break;
  try {
    heap.refresh();
    runOp(heap, ctl[Ctl.op] as number, args, data.part, data.parts);
  } catch (e) {
    fail(e);
  }
  if (Atomics.sub(ctl, Ctl.pending, 1) === 1) Atomics.notify(ctl, Ctl.pending);
}
