/**
 * How ZeRO-1 lays a parameter group's flat buffer over data-parallel ranks, per era.
 * Era A (DeeperSpeed 0.3.15, Pythia): interleaved sub-partitions (spec §5.2).
 * Era B/C (DeepSpeedZeroOptimizer): one contiguous partition per rank (spec §5.3).
 */

export interface SubPartition {
  /** Index k in the padded flat buffer: covers `[k·S, (k+1)·S)`. */
  readonly index: number;
  /** Owner rank `k mod D`. */
  readonly rank: number;
  /** Communication interval `k div D`. */
  readonly interval: number;
  /** First element in the flat (unpadded) group buffer. */
  readonly start: number;
  /** Elements saved (trailing padding removed: may be short or zero). */
  readonly length: number;
}

export interface LegacyZero1Layout {
  readonly numel: number;
  readonly dp: number;
  /** Effective max elements per communication after DeeperSpeed's padding choice. */
  readonly maxElemsPerComm: number;
  /** `num_comm_intervals_per_group[g]`. */
  readonly intervals: number;
  /** Sub-partition size S. */
  readonly subPartitionSize: number;
  /** Zeros appended to the flat buffer. */
  readonly padding: number;
  /** All `intervals × dp` sub-partitions in flat order. */
  readonly subPartitions: readonly SubPartition[];
}

/** DeeperSpeed `best_max_elems_per_comm` (stage1.py at eb7f5cff). */
export function bestMaxElemsPerComm(numel: number, maxPerComm: number, dp: number): number {
  const maxIntervals = Math.ceil(numel / maxPerComm);
  const padMax = maxPerComm * maxIntervals - numel;
  const minIntervals = Math.floor(numel / maxPerComm);
  if (minIntervals === 0) return maxPerComm;
  const padMin = Math.ceil(numel / (dp * minIntervals));
  return padMax > padMin ? padMin + maxPerComm : maxPerComm;
}

/** The era-A sub-partition layout of one group of `numel` elements. */
export function legacyZero1Layout(
  numel: number,
  dp: number,
  reduceBucketSize: number,
): LegacyZero1Layout {
  const M = bestMaxElemsPerComm(numel, reduceBucketSize, dp);
  const a = Math.ceil(numel / dp);
  const c = Math.floor(M / dp);
  const [intervals, S] = a <= c ? [1, a] : [Math.ceil(a / c), c];
  const padding = intervals * S * dp - numel;
  const subPartitions: SubPartition[] = [];
  for (let k = 0; k < intervals * dp; k++) {
    const start = k * S;
    subPartitions.push({
      index: k,
      rank: k % dp,
      interval: Math.floor(k / dp),
      start: Math.min(start, numel),
      length: Math.max(0, Math.min(S, numel - start)),
    });
  }
  return { numel, dp, maxElemsPerComm: M, intervals, subPartitionSize: S, padding, subPartitions };
}

export interface Zero12Layout {
  readonly numel: number;
  readonly dp: number;
  /** Elements per rank partition (padded). */
  readonly partitionSize: number;
  /** Total padding appended (multiple of 2·D alignment). */
  readonly padding: number;
  /** Per rank: first flat element, saved (unpadded) length, padding inside the partition. */
  readonly partitions: readonly { rank: number; start: number; length: number; padding: number }[];
}

/** The era-B/C layout: flat buffer padded to a multiple of `alignment` (2·D), D equal slices. */
export function zero12Layout(numel: number, dp: number, alignment = 2 * dp): Zero12Layout {
  const padded = Math.ceil(numel / alignment) * alignment;
  const P = padded / dp;
  const partitions = [];
  for (let r = 0; r < dp; r++) {
    const start = r * P;
    const length = Math.max(0, Math.min(P, numel - start));
    partitions.push({ rank: r, start: Math.min(start, numel), length, padding: P - length });
  }
  return { numel, dp, partitionSize: P, padding: padded - numel, partitions };
}
