/** Human sizes for `--max-shard-size`, read as huggingface_hub reads them. */
import { CheckpointError } from "../util/errors.js";

/** Decimal units as huggingface_hub's `parse_size_to_int`; binary units as transformers'. */
const UNITS: Readonly<Record<string, number>> = {
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KIB: 2 ** 10,
  MIB: 2 ** 20,
  GIB: 2 ** 30,
  TIB: 2 ** 40,
};
const SIZE = /^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([KMGT]I?B)?\s*$/i;

/**
 * Parses a size: `"5GB"` = 5×10^9 bytes (KB, MB, GB, TB are decimal, case-insensitive, as in
 * huggingface_hub), `"2GiB"` = 2×2^30 (KiB, MiB, GiB, TiB), a bare integer is bytes. Fractions
 * are truncated after scaling, as Python's `int(value * multiplier)` does. A number passes
 * through (it must be a non-negative safe integer).
 */
export function parseSize(size: string | number): number {
  if (typeof size === "number") {
    if (!Number.isSafeInteger(size) || size < 0)
      throw new CheckpointError(`size ${size} is not a byte count`);
    return size;
  }
  const m = SIZE.exec(size);
  if (!m)
    throw new CheckpointError(`cannot read '${size}' as a size (e.g. 5GB, 500MB, 2GiB, 1000000)`);
  const value = Number(m[1]);
  const unit = m[2]?.toUpperCase();
  if (unit === undefined) {
    if (!Number.isSafeInteger(value))
      throw new CheckpointError(`'${size}': a size without a unit is a whole number of bytes`);
    return value;
  }
  const bytes = Math.trunc(value * (UNITS[unit] as number));
  if (!Number.isSafeInteger(bytes)) throw new CheckpointError(`'${size}' is too large`);
  return bytes;
}
