/** torch dtypes: names, element sizes and how they are stored. */

export type TypedArray =
  | Float32Array
  | Float64Array
  | Uint16Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** A torch dtype: its name, item size, and how to view its bytes. */
export interface DTypeInfo {
  /** torch's primary name, e.g. `float16` (printed as `torch.float16`). */
  readonly name: string;
  /** Bytes per element. */
  readonly itemsize: number;
  /** Size of one scalar component for byte swapping (complex types swap each half). */
  readonly componentSize: number;
  /** The legacy typed-storage class torch writes for this dtype, if any. */
  readonly storageClass?: string;
  /** safetensors dtype string, if the format has one. */
  readonly safetensors?: string;
  /**
   * The typed array a contiguous little-endian read is returned as. f16 and bf16 come back as
   * raw bits in a Uint16Array (convert with the helpers in `half.ts`); complex as interleaved
   * real/imaginary floats; bool as bytes 0/1; quantized and packed types as their bytes.
   */
  readonly array: "f32" | "f64" | "u16" | "i8" | "u8" | "i16" | "i32" | "u32" | "i64" | "u64";
}

const D = (
  name: string,
  itemsize: number,
  array: DTypeInfo["array"],
  storageClass?: string,
  safetensors?: string,
  componentSize = itemsize,
): DTypeInfo => ({ name, itemsize, array, storageClass, safetensors, componentSize });

/** Every dtype torch can save, by primary name. */
export const DTYPES: ReadonlyMap<string, DTypeInfo> = new Map(
  [
    D("float64", 8, "f64", "DoubleStorage", "F64"),
    D("float32", 4, "f32", "FloatStorage", "F32"),
    D("float16", 2, "u16", "HalfStorage", "F16"),
    D("bfloat16", 2, "u16", "BFloat16Storage", "BF16"),
    D("int64", 8, "i64", "LongStorage", "I64"),
    D("int32", 4, "i32", "IntStorage", "I32"),
    D("int16", 2, "i16", "ShortStorage", "I16"),
    D("int8", 1, "i8", "CharStorage", "I8"),
    D("uint8", 1, "u8", "ByteStorage", "U8"),
    D("bool", 1, "u8", "BoolStorage", "BOOL"),
    D("complex64", 8, "f32", "ComplexFloatStorage", "C64", 4),
    D("complex128", 16, "f64", "ComplexDoubleStorage", undefined, 8),
    D("complex32", 4, "u16", undefined, undefined, 2),
    D("qint8", 1, "i8", "QInt8Storage"),
    D("quint8", 1, "u8", "QUInt8Storage"),
    D("qint32", 4, "i32", "QInt32Storage"),
    D("quint4x2", 1, "u8", "QUInt4x2Storage"),
    D("quint2x4", 1, "u8", "QUInt2x4Storage"),
    D("uint16", 2, "u16", undefined, "U16"),
    D("uint32", 4, "u32", undefined, "U32"),
    D("uint64", 8, "u64", undefined, "U64"),
    D("float8_e5m2", 1, "u8", undefined, "F8_E5M2"),
    D("float8_e4m3fn", 1, "u8", undefined, "F8_E4M3"),
    D("float8_e5m2fnuz", 1, "u8", undefined, "F8_E5M2FNUZ"),
    D("float8_e4m3fnuz", 1, "u8", undefined, "F8_E4M3FNUZ"),
    D("float8_e8m0fnu", 1, "u8", undefined, "F8_E8M0"),
    D("float4_e2m1fn_x2", 1, "u8"),
    D("bits8", 1, "u8"),
    D("bits16", 2, "u16"),
    D("bits1x8", 1, "u8"),
    D("bits2x4", 1, "u8"),
    D("bits4x2", 1, "u8"),
  ].map((d) => [d.name, d]),
);

/** Aliases torch accepts for dtype names (`torch.half` is `torch.float16`). */
const ALIASES: Record<string, string> = {
  float: "float32",
  double: "float64",
  half: "float16",
  long: "int64",
  int: "int32",
  short: "int16",
  cfloat: "complex64",
  cdouble: "complex128",
  chalf: "complex32",
};

/** Looks a dtype up by primary name or alias; undefined when unknown. */
export function dtypeByName(name: string): DTypeInfo | undefined {
  return DTYPES.get(ALIASES[name] ?? name);
}

const BY_STORAGE = new Map<string, DTypeInfo>();
for (const d of DTYPES.values()) if (d.storageClass) BY_STORAGE.set(d.storageClass, d);

/**
 * The dtype of a storage class name. torch treats any global whose name contains `Storage` as
 * a storage type; `UntypedStorage` (and `TypedStorage` without a dtype) counts bytes (uint8).
 */
export function dtypeOfStorageClass(name: string): DTypeInfo | undefined {
  const d = BY_STORAGE.get(name);
  if (d) return d;
  if (name === "UntypedStorage" || name === "TypedStorage") return DTYPES.get("uint8");
  return undefined;
}

/** The dtype for a safetensors dtype string. */
export function dtypeBySafetensors(st: string): DTypeInfo | undefined {
  for (const d of DTYPES.values()) if (d.safetensors === st) return d;
  return undefined;
}

const ARRAY_ELEMENT_BYTES: Record<DTypeInfo["array"], number> = {
  f32: 4,
  f64: 8,
  u16: 2,
  i16: 2,
  i8: 1,
  u8: 1,
  i32: 4,
  u32: 4,
  i64: 8,
  u64: 8,
};

/** Allocates the typed array matching `d` over `bytes` (which must be aligned for it). */
export function typedView(d: DTypeInfo, bytes: Uint8Array): TypedArray {
  const n = bytes.byteLength / ARRAY_ELEMENT_BYTES[d.array];
  const { buffer, byteOffset } = bytes;
  switch (d.array) {
    case "f32":
      return new Float32Array(buffer, byteOffset, n);
    case "f64":
      return new Float64Array(buffer, byteOffset, n);
    case "u16":
      return new Uint16Array(buffer, byteOffset, n);
    case "i16":
      return new Int16Array(buffer, byteOffset, n);
    case "i8":
      return new Int8Array(buffer, byteOffset, n);
    case "u8":
      return new Uint8Array(buffer, byteOffset, n);
    case "i32":
      return new Int32Array(buffer, byteOffset, n);
    case "u32":
      return new Uint32Array(buffer, byteOffset, n);
    case "i64":
      return new BigInt64Array(buffer, byteOffset, n);
    case "u64":
      return new BigUint64Array(buffer, byteOffset, n);
  }
}
