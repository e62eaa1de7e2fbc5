/**
 * `saveTorch`: writes a value tree as a zip-format `.pt` file that `torch.load` reads. Tensors may
 * be NewTensors (bytes produced on demand, storages shareable) or TensorRefs read from another
 * file (copied, contiguous). Written as every output is (`writeFileAtomic`): a temporary name,
 * writes in flight, storages that lie unchanged in a local file copied inside the kernel, fsynced
 * and renamed when complete.
 */
import { basename } from "node:path";
import { type AtomicWriteOptions, writeFileAtomic } from "../source/atomic-write.js";
import type { CopyStats } from "../source/file-sink.js";
import { DTYPES, type DTypeInfo } from "./dtype.js";
import { CHUNK_BYTES, type ElementSource, elementChunks, readAhead } from "./element-source.js";
import { PickleEncoder } from "./encode-pickle.js";
import { NewStorage, NewTensor } from "./new-tensor.js";
import { PyTuple, type PyValue, TorchStorageType } from "./pyvalue.js";
import { TensorRef } from "./tensor.js";
import { ZipWriter } from "./zip-write.js";

export interface SaveOptions {
  /** The zip's folder name (default: the file's stem, as torch does when saving to a path). */
  prefix?: string;
  /** How the file is written (kernel copy or not, leftovers heard). Default: the process's. */
  sink?: AtomicWriteOptions;
}

const U8 = DTYPES.get("uint8") as DTypeInfo;

/** Saves `value` to `path` atomically; returns where the storages' bytes came from. */
export async function saveTorch(
  path: string,
  value: PyValue | object,
  opts: SaveOptions = {},
): Promise<CopyStats> {
  const { pickle, storages: order } = encodeTorch(value);
  const prefix = opts.prefix ?? basename(path).replace(/\.[^.]*$/, "");
  return writeFileAtomic(
    path,
    async (sink) => {
      const z = new ZipWriter(sink, prefix);
      await z.add("data.pkl", pickle.length, pickle);
      await z.add("byteorder", 6, new TextEncoder().encode("little"));
      for (const [k, s] of order.entries()) await addStorage(z, `data/${k}`, s);
      await z.add("version", 2, new TextEncoder().encode("3\n"));
      await z.finish();
    },
    opts.sink,
  );
}

/**
 * The pickle of a `.pt` file for `value` and its storages in record order (storage `k` is
 * record `data/k`), as {@link saveTorch} writes them.
 */
export function encodeTorch(value: PyValue | object): {
  pickle: Uint8Array;
  storages: NewStorage[];
} {
  const storages = new Map<NewStorage, string>();
  const order: NewStorage[] = [];
  const copies = new Map<TensorRef, NewTensor>();
  const keyOf = (s: NewStorage): string => {
    let k = storages.get(s);
    if (k === undefined) {
      k = String(order.length);
      storages.set(s, k);
      order.push(s);
    }
    return k;
  };
  const encodeTensor = (t: NewTensor, enc: PickleEncoder): void => {
    const d = t.dtype;
    if (d.name.startsWith("q"))
      throw new TypeError(`writing quantized ${d.name} tensors is not supported`);
    const v3 = !d.storageClass;
    if (t.isParameter) enc.global("torch._utils", "_rebuild_parameter");
    enc.global("torch._utils", v3 ? "_rebuild_tensor_v3" : "_rebuild_tensor_v2");
    enc.byte(0x28);
    const storageType = v3
      ? new TorchStorageType("torch.storage", "UntypedStorage", U8)
      : new TorchStorageType("torch", d.storageClass as string, d);
    const numel = v3 ? t.storage.byteLength : t.storage.numel;
    enc.persistent(PyTuple.of_(["storage", storageType, keyOf(t.storage), "cpu", numel]));
    enc.value(t.storageOffset);
    enc.tuple(t.shape);
    enc.tuple(t.stride);
    enc.value(t.isParameter ? false : t.requiresGrad);
    enc.emptyOrderedDict();
    if (v3) enc.global("torch", d.name);
    enc.byte(0x74);
    enc.byte(0x52);
    if (t.isParameter) {
      enc.value(t.requiresGrad);
      enc.emptyOrderedDict();
      enc.byte(0x87);
      enc.byte(0x52);
    }
  };
  const pickle = PickleEncoder.encode(value as PyValue, {
    custom: (v, enc) => {
      if (v instanceof NewTensor) {
        encodeTensor(v, enc);
        return true;
      }
      if (v instanceof TensorRef) {
        let c = copies.get(v);
        if (v.metadata !== undefined || v.subclass !== undefined) {
          throw new TypeError(
            "copying a lazily negated/conjugated tensor or a tensor subclass is not supported",
          );
        }
        if (!c) {
          c = new NewTensor(
            NewStorage.fromSource(v),
            v.shape,
            0,
            undefined,
            v.requiresGrad,
            v.isParameter,
          );
          copies.set(v, c);
        }
        encodeTensor(c, enc);
        return true;
      }
      return false;
    },
  });
  return { pickle, storages: order };
}

/**
 * One storage record: the byte runs of its source copied as they lie when it has them (a tensor
 * of another file, unchanged; where the sink copies inside the kernel, once the source has read
 * what they wait on), else its chunks, recycled once written when made for this write
 * (and not checksummed when the source derives its CRC-32: a synthetic tensor).
 */
async function addStorage(z: ZipWriter, record: string, s: NewStorage): Promise<void> {
  // The source of a non-empty storage: runs, a derived CRC-32 and a tile are asked of it only.
  const src = s.byteLength > 0 ? s.source : undefined;
  // Bytes copied inside the kernel are never seen: what their runs wait on is checked first.
  if (src?.prepareRuns && z.copiesInKernel) await src.prepareRuns();
  const runs = await src?.runs?.(0, src.numel);
  if (runs) return z.addRuns(record, s.byteLength, runs);
  const crc = await src?.crc32?.(0, src.numel);
  const window = src && crc !== undefined ? await repeatWindow(z, src, s.byteLength) : 0;
  if (src && crc !== undefined && window > 0) {
    const chunks = elementChunks(src, CHUNK_BYTES, 0, window / s.dtype.itemsize);
    return z.addRepeating(record, s.byteLength, window, readAhead(chunks), crc);
  }
  await z.add(record, s.byteLength, s.produce(), s.source !== undefined, crc);
}

/** The least window of a periodic tensor worth writing before it is repeated in the kernel. */
const MIN_REPEAT_WINDOW = 8 << 20;

/**
 * Bytes of the window to write of a periodic source of `size` bytes (a whole number of its
 * periods, at least {@link MIN_REPEAT_WINDOW}) when the rest, at least as long again, can be
 * repeated from it inside the kernel; else 0 (the tensor is written whole).
 */
async function repeatWindow(z: ZipWriter, src: ElementSource, size: number): Promise<number> {
  if (!z.repeatsInKernel || !src.tile || size < 2 * MIN_REPEAT_WINDOW) return 0;
  const period = (await src.tile())?.byteLength;
  if (!period) return 0;
  const window = Math.ceil(MIN_REPEAT_WINDOW / period) * period;
  return 2 * window <= size ? window : 0;
}
