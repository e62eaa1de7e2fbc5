/**
 * `--plan`: a job's units and their assignment as text, without doing any of them — a summary
 * line, one line per task, then one line per unit (task, bytes, id) grouped by task.
 */
import { formatBytes } from "../../torch/repr.js";
import { balanceOf, type ShardAssignment } from "./assign.js";
import type { JobUnit } from "./units.js";

/** Options of {@link planText}. */
export interface PlanTextOptions {
  /** Only this task's units (the summary still covers the whole job). */
  readonly task?: number;
}

/** The plan of a job as text, ending in a newline. */
export function planText(
  units: readonly JobUnit[],
  assignment: ShardAssignment,
  options: PlanTextOptions = {},
): string {
  if (assignment.taskOf.length !== units.length)
    throw new RangeError(
      `assignment of ${assignment.taskOf.length} units used with ${units.length}`,
    );
  const total = units.reduce((n, u) => n + u.bytes, 0);
  const kinds = [...new Set(units.map((u) => u.kind))].join("+") || "empty";
  const heaviest = assignment.bytes.reduce((a, b) => Math.max(a, b), 0);
  const lines = [
    `${kinds} job: ${units.length} units, ${total} bytes (${formatBytes(total)}), ${assignment.count} tasks; heaviest task ${heaviest} bytes (${balanceOf(assignment).toFixed(4)} × mean)`,
  ];
  const w = String(assignment.count - 1).length;
  const tasks =
    options.task === undefined
      ? Array.from({ length: assignment.count }, (_, i) => i)
      : [options.task];
  for (const t of tasks) {
    if (!Number.isSafeInteger(t) || t < 0 || t >= assignment.count)
      throw new RangeError(`task ${t} is not one of 0…${assignment.count - 1}`);
  }
  for (const t of tasks) {
    const b = assignment.bytes[t] as number;
    lines.push(
      `task ${String(t).padStart(w)}: ${assignment.units[t]} units, ${b} bytes (${formatBytes(b)})`,
    );
  }
  const bw = String(units.reduce((m, u) => Math.max(m, u.bytes), 0)).length;
  const byTask = new Map<number, string[]>(tasks.map((t) => [t, []]));
  units.forEach((u, i) => {
    const t = assignment.taskOf[i] as number;
    byTask.get(t)?.push(`${String(t).padStart(w)}  ${String(u.bytes).padStart(bw)}  ${u.id}`);
  });
  for (const t of tasks) lines.push(...(byTask.get(t) ?? []));
  return `${lines.join("\n")}\n`;
}
