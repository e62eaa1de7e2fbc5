/**
 * Units → tasks, balanced by bytes: the longest-processing-time rule (heaviest unit first, each to
 * the task with the fewest bytes so far). The order is total (bytes, then id), so the same units
 * give the same assignment in every task of an array, whatever order they were listed in.
 */
import { byWeight, checkUnits, type JobUnit } from "./units.js";

/** Which task runs each unit, and what each task weighs. */
export interface ShardAssignment {
  /** Number of tasks N. */
  readonly count: number;
  /** The task (0 … N − 1) of each unit, aligned with the unit list given. */
  readonly taskOf: readonly number[];
  /** Bytes per task. */
  readonly bytes: readonly number[];
  /** Units per task. */
  readonly units: readonly number[];
}

/** A min-heap of tasks by (bytes, index): the next task to give a unit to. */
class TaskHeap {
  private readonly heap: number[];
  constructor(
    private readonly load: number[],
    count: number,
  ) {
    this.heap = Array.from({ length: count }, (_, i) => i); // all loads 0: already a heap
  }
  private less(a: number, b: number): boolean {
    const x = this.heap[a] as number;
    const y = this.heap[b] as number;
    const lx = this.load[x] as number;
    const ly = this.load[y] as number;
    return lx < ly || (lx === ly && x < y);
  }
  private swap(a: number, b: number): void {
    const h = this.heap;
    [h[a], h[b]] = [h[b] as number, h[a] as number];
  }
  /** The lightest task. */
  top(): number {
    return this.heap[0] as number;
  }
  /** Restores the heap after the top task's load grew. */
  siftTop(): void {
    const n = this.heap.length;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.less(l, m)) m = l;
      if (r < n && this.less(r, m)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }
}

/**
 * Assigns `units` to `count` tasks, balanced by bytes and deterministic. With many more units
 * than tasks the heaviest task exceeds the mean by less than one of the lightest units that
 * were given out last; with fewer units than tasks some tasks get none.
 */
export function assignShards(units: readonly JobUnit[], count: number): ShardAssignment {
  if (!Number.isSafeInteger(count) || count < 1)
    throw new RangeError(`a job runs on a whole number ≥ 1 of tasks, not ${count}`);
  checkUnits(units);
  const order = units.map((_, i) => i);
  order.sort((a, b) => byWeight(units[a] as JobUnit, units[b] as JobUnit));
  const bytes = new Array<number>(count).fill(0);
  const perTask = new Array<number>(count).fill(0);
  const taskOf = new Array<number>(units.length).fill(0);
  const heap = new TaskHeap(bytes, count);
  for (const i of order) {
    const t = heap.top();
    taskOf[i] = t;
    bytes[t] = (bytes[t] as number) + (units[i] as JobUnit).bytes;
    perTask[t] = (perTask[t] as number) + 1;
    heap.siftTop();
  }
  return { count, taskOf, bytes, units: perTask };
}

/** The units of task `index`, in the unit list's order (per step, then per item). */
export function shareOf(
  units: readonly JobUnit[],
  assignment: ShardAssignment,
  index: number,
): JobUnit[] {
  if (assignment.taskOf.length !== units.length)
    throw new RangeError(
      `assignment of ${assignment.taskOf.length} units used with ${units.length}`,
    );
  if (!Number.isSafeInteger(index) || index < 0 || index >= assignment.count)
    throw new RangeError(`task ${index} is not one of 0…${assignment.count - 1}`);
  return units.filter((_, i) => assignment.taskOf[i] === index);
}

/** Largest task's bytes ÷ mean bytes per task: 1 is perfect balance (and an empty job's value). */
export function balanceOf(assignment: ShardAssignment): number {
  const total = assignment.bytes.reduce((a, b) => a + b, 0);
  if (total === 0) return 1;
  return assignment.bytes.reduce((a, b) => Math.max(a, b), 0) / (total / assignment.count);
}
