/** Damage done to a ZeRO optimizer file in place, for the tests of what refuses it. */
import { closeSync, openSync, writeSync } from "node:fs";
import { openTorchPath } from "../../src/torch/load.js";
import type { StorageRef } from "../../src/torch/pyvalue.js";
import { walkTensors } from "../../src/torch/walk.js";

/**
 * Overwrites one float (1234.5, 40 bytes in) of the first fp32 sub-partition of an era-A
 * `zero_pp_rank_*_optim_states.pt`: the file still parses, but that zip record's CRC-32 no
 * longer matches its bytes. Returns where the sub-partition's storage lies (its record).
 */
export async function corruptFirstSubPartition(file: string) {
  const t = await openTorchPath(file);
  let loc: Awaited<ReturnType<StorageRef["resolve"]>>;
  try {
    const lsp = walkTensors(t.value).find(
      (x) => x.name === "optimizer_state_dict.local_sub_partitions_of_fp32_groups[0][0]",
    );
    if (!lsp) throw new Error(`${file}: no local_sub_partitions_of_fp32_groups[0][0]`);
    loc = await lsp.tensor.storage.resolve();
  } finally {
    await t.source.close();
  }
  const fd = openSync(file, "r+");
  try {
    writeSync(fd, new Uint8Array(new Float32Array([1234.5]).buffer), 0, 4, loc.byteOffset + 40);
  } finally {
    closeSync(fd);
  }
  return loc;
}
