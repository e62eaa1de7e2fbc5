/**
 * What a request may reach below a served root. Request parts name files only through
 * {@link isSafeName} parts joined below a known folder, and symbolic links are followed only
 * to targets inside the root — unless the operator allows every link (`--follow-symlinks`),
 * for a root whose steps are links into other storage.
 */
import { realpath } from "node:fs/promises";
import { join, sep } from "node:path";
import { CheckpointError } from "../util/errors.js";

/**
 * Names never listed or served: a clone's git internals and huggingface_hub's download
 * metadata are not files of the repository.
 */
const UNLISTED = new Set([".git", ".cache"]);

/** One path part a request may use: not empty, `.`, `..`, unlisted, nor holding `/`, `\` or NUL. */
export function isSafeName(part: string): boolean {
  return (
    part !== "" && part !== "." && part !== ".." && !UNLISTED.has(part) && !/[/\\\0]/.test(part)
  );
}

/** Whether a directory entry is left out of listings. */
export function isUnlisted(name: string): boolean {
  return UNLISTED.has(name);
}

export class RootFence {
  private readonly prefix: string;

  private constructor(
    /** The root's real path (symbolic links resolved). */
    readonly root: string,
    /** Whether links leaving the root are followed. */
    readonly followSymlinks: boolean,
  ) {
    this.prefix = root.endsWith(sep) ? root : root + sep;
  }

  static async create(root: string, followSymlinks = false): Promise<RootFence> {
    return new RootFence(await realpath(root), followSymlinks);
  }

  /** Whether a real path is the root or below it. */
  contains(real: string): boolean {
    return real === this.root || real.startsWith(this.prefix);
  }

  /**
   * The real path of `path` when a request may reach it; undefined when it is missing, a
   * dangling or looping link, or (links not followed) outside the root.
   */
  async admit(path: string): Promise<string | undefined> {
    const real = await realpath(path).catch(() => undefined);
    if (real === undefined) return undefined;
    return this.followSymlinks || this.contains(real) ? real : undefined;
  }

  /** {@link admit} of `base/parts…`, or undefined when a part is not {@link isSafeName}. */
  async join(base: string, parts: readonly string[]): Promise<string | undefined> {
    if (!parts.every(isSafeName)) return undefined;
    return this.admit(join(base, ...parts));
  }
}

/**
 * A path a request may not reach, reported as missing (`code` ENOENT, as the file system
 * would), so that callers treat it as an absent file.
 */
export class PathRefusedError extends CheckpointError {
  override readonly name = "PathRefusedError";
  readonly code = "ENOENT";
  constructor(path: string) {
    super("no such file below the served root", { file: path });
  }
}
