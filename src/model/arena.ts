/** First-fit allocation of byte ranges inside the shared WebAssembly memory, growing it on demand. */
import { ComputePoolError } from "./errors.js";
import { MAX_PAGES, PAGE_BYTES } from "./heap.js";
import type { WasmMemory } from "./wasm-api.js";

/** Alignment of every block: a cache line, so threads writing neighbouring blocks do not share one. */
export const BLOCK_ALIGN = 64;
/** Bytes added past every block: partial 8-column panels may read up to 7 floats beyond a row. */
export const BLOCK_SLACK = 64;

interface Range {
  start: number;
  size: number;
}

/** Allocates blocks in a memory whose first `reserved` bytes are not handed out. */
export class Arena {
  private readonly free: Range[] = [];
  private readonly used = new Map<number, number>();

  constructor(
    private readonly memory: WasmMemory,
    reserved: number,
  ) {
    const size = memory.buffer.byteLength;
    if (size > reserved) this.free.push({ start: reserved, size: size - reserved });
  }

  /** Bytes of the memory now. */
  get byteLength(): number {
    return this.memory.buffer.byteLength;
  }

  /** A block of at least `bytes` bytes, 64-byte aligned; contents undefined. */
  alloc(bytes: number): number {
    const size = Math.ceil((bytes + BLOCK_SLACK) / BLOCK_ALIGN) * BLOCK_ALIGN;
    let i = this.free.findIndex((r) => r.size >= size);
    if (i < 0) {
      this.grow(size);
      i = this.free.findIndex((r) => r.size >= size);
    }
    const r = this.free[i] as Range;
    const start = r.start;
    if (r.size === size) this.free.splice(i, 1);
    else {
      r.start += size;
      r.size -= size;
    }
    this.used.set(start, size);
    return start;
  }

  /** Returns a block to the free list, merging it with free neighbours. */
  release(start: number): void {
    const size = this.used.get(start);
    if (size === undefined) return;
    this.used.delete(start);
    let i = this.free.findIndex((r) => r.start > start);
    if (i < 0) i = this.free.length;
    this.free.splice(i, 0, { start, size });
    const next = this.free[i + 1];
    if (next && start + size === next.start) {
      (this.free[i] as Range).size += next.size;
      this.free.splice(i + 1, 1);
    }
    const prev = this.free[i - 1];
    if (prev && prev.start + prev.size === start) {
      prev.size += (this.free[i] as Range).size;
      this.free.splice(i, 1);
    }
  }

  private grow(size: number): void {
    const end = this.memory.buffer.byteLength;
    const last = this.free[this.free.length - 1];
    const tail = last && last.start + last.size === end ? last.size : 0;
    const pages = Math.ceil((size - tail) / PAGE_BYTES);
    const have = end / PAGE_BYTES;
    if (have + pages > MAX_PAGES) {
      throw new ComputePoolError(
        `out of memory: a block of ${size} bytes does not fit the ${MAX_PAGES * PAGE_BYTES} bytes a WebAssembly memory can address (${end} in use or reserved)`,
      );
    }
    this.memory.grow(pages);
    if (tail) (last as Range).size += pages * PAGE_BYTES;
    else this.free.push({ start: end, size: pages * PAGE_BYTES });
  }
}
