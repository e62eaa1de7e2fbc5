/**
 * One thread's handle on the shared WebAssembly memory: its kernels instance and float views,
 * refreshed when another thread has grown the memory. The main thread and every worker each
 * hold one over the same memory.
 */
import { KERNELS_WASM_BASE64 } from "./kernels-wasm.js";
import { type WasmMemory, type WasmModule, wasmApi } from "./wasm-api.js";

/** `gemm` of kernels.wat: every argument an i32 (addresses and strides in bytes). */
export type GemmKernel = (
  a: number,
  lda: number,
  b: number,
  bps: number,
  ldb: number,
  c: number,
  ldc: number,
  bias: number,
  m: number,
  np: number,
  k: number,
) => void;

/** Bytes reserved at the start of the memory for the control block (address 0 means "none"). */
export const CONTROL_BYTES = 4096;
/**
 * Int32 slots of the control block: the operation sequence number workers wait on, parts still
 * running, a failure flag, the operation code, the stop flag, the error text's length, and the
 * next unclaimed work item of the running operation (threads claim items with `Atomics.add`).
 */
export const Ctl = {
  seq: 0,
  pending: 1,
  failed: 2,
  op: 3,
  stop: 4,
  errorLength: 5,
  ticket: 6,
} as const;
/** Largest memory in 64 KiB pages: wasm32 addresses 4 GiB. */
export const MAX_PAGES = 65536;
/** Bytes of one WebAssembly page. */
export const PAGE_BYTES = 65536;

let compiled: WasmModule | undefined;

/** The kernels module, compiled once per thread from the embedded bytes. */
export function kernelsModule(): WasmModule {
  compiled ??= new wasmApi.Module(new Uint8Array(Buffer.from(KERNELS_WASM_BASE64, "base64")));
  return compiled;
}

/** A new shared memory of `pages` pages that may grow to {@link MAX_PAGES}. */
export function sharedMemory(pages: number): WasmMemory {
  return new wasmApi.Memory({ initial: pages, maximum: MAX_PAGES, shared: true });
}

/** Views and kernels of one thread over the shared memory. */
export class Heap {
  /** Every float of the memory (index = byte address / 4). */
  f32: Float32Array;
  /** The control block's int32 slots ({@link Ctl}). */
  readonly ctl: Int32Array;
  readonly gemm: GemmKernel;

  constructor(
    readonly memory: WasmMemory,
    module: WasmModule,
  ) {
    const instance = new wasmApi.Instance(module, { env: { memory } });
    this.gemm = instance.exports.gemm as GemmKernel;
    this.f32 = new Float32Array(memory.buffer);
    this.ctl = new Int32Array(memory.buffer, 0, 16);
  }

  /** Re-creates the views if the memory grew since they were made. */
  refresh(): void {
    const buffer = this.memory.buffer;
    if (buffer.byteLength !== this.f32.byteLength) this.f32 = new Float32Array(buffer);
  }
}
