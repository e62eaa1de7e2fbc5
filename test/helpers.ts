import { fileURLToPath } from "node:url";

/** Absolute path of a file under the repository's `test/fixtures/` (tests run from dist/). */
export function fixture(rel: string): string {
  return fileURLToPath(new URL(`../../test/fixtures/${rel}`, import.meta.url));
}

/** Absolute path of the repository root. */
export const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
