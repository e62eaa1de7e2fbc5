/**
 * The few WebAssembly JS-API members this package uses, typed here because the project compiles
 * against ES2022 + Node types only (no `dom` lib, where TypeScript declares `WebAssembly`).
 */

/** A linear memory; a shared one exposes a SharedArrayBuffer that grows in place. */
export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  grow(pages: number): number;
}

/** A compiled module: cheap to post to a worker and instantiate there. */
export type WasmModule = object;

/** An instance's exports. */
export interface WasmInstance {
  readonly exports: Record<string, unknown>;
}

interface WasmApi {
  Memory: new (d: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (
    module: WasmModule,
    imports: Record<string, Record<string, unknown>>,
  ) => WasmInstance;
  validate(bytes: Uint8Array): boolean;
}

/** The global `WebAssembly` namespace, typed. */
export const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
