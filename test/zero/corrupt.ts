/** Damage done to a checkpoint file in place, for the tests of what refuses it. */
import { closeSync, openSync, writeSync } from "node:fs";
import { openTorchPath } from "../../src/torch/load.js";
import type { StorageRef } from "../../src/torch/pyvalue.js";
import { walkTensors } from "../../src/torch/walk.js";

/**
 * Overwrites one float (1234.5, `at` bytes into its storage) of the tensor `name` of a torch
 * file: the file still parses, but that zip record's CRC-32 no longer matches its bytes.
 * Returns where the tensor's storage lies (its record).
 */
export async function corruptTensor(file: string, name: string, at = 40) {
  const t = await openTorchPath(file);
  let loc: Awaited<ReturnType<StorageRef["resolve"]>>;
  try {
    const found = walkTensors(t.value).find((x) => x.name === name);
    if (!found) throw new Error(`${file}: no ${name}`);
    loc = await found.tensor.storage.resolve();
  } finally {
    await t.source.close();
  }
  const fd = openSync(file, "r+");
  try {
    writeSync(fd, new Uint8Array(new Float32Array([1234.5]).buffer), 0, 4, loc.byteOffset + at);
  } finally {
    closeSync(fd);
  }
  return loc;
}

/** {@link corruptTensor} on the first fp32 sub-partition of an era-A `zero_pp_rank_*_optim_states.pt`. */
export const corruptFirstSubPartition = (file: string) =>
  corruptTensor(file, "optimizer_state_dict.local_sub_partitions_of_fp32_groups[0][0]");
