/**
 * `saveTorch`: writes a value tree as a zip-format `.pt` file that `torch.load` reads. Tensors may
 * be NewTensors (bytes produced on demand, storages shareable) or TensorRefs read from another
 * file (copied, contiguous). Written to a temporary name, fsynced and renamed when complete.
 */
import { randomBytes } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";
import { basename } from "node:path";
import { DTYPES, type DTypeInfo } from "./dtype.js";
import { PickleEncoder } from "./encode-pickle.js";
import { NewStorage, NewTensor } from "./new-tensor.js";
import { PyTuple, type PyValue, TorchStorageType } from "./pyvalue.js";
import { TensorRef } from "./tensor.js";
import { ZipWriter } from "./zip-write.js";

export interface SaveOptions {
  /** The zip's folder name (default: the file's stem, as torch does when saving to a path). */
  prefix?: string;
}

const U8 = DTYPES.get("uint8") as DTypeInfo;

/** Saves `value` to `path` atomically. */
export async function saveTorch(
  path: string,
  value: PyValue | object,
  opts: SaveOptions = {},
): Promise<void> {
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
  const tmp = `${path}.tmp-${randomBytes(4).toString("hex")}`;
  const fh = await open(tmp, "w");
  try {
    const z = new ZipWriter(fh, opts.prefix ?? basename(path).replace(/\.[^.]*$/, ""));
    await z.add("data.pkl", pickle.length, pickle);
    await z.add("byteorder", 6, new TextEncoder().encode("little"));
    for (const s of order) await z.add(`data/${storages.get(s)}`, s.byteLength, s.produce());
    await z.add("version", 2, new TextEncoder().encode("3\n"));
    await z.finish();
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
}
