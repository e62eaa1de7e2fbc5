/**
 * Writes test/fixtures/written/*.pt with our writer and manifest.json describing them; then run
 * `/usr/bin/python3 tools/written/check_with_torch.py` to have torch load and check them.
 *
 * Run: npm run build && node dist/tools/written/make-written.js
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { writeCases } from "./cases.js";

const dir = fileURLToPath(new URL("../../../test/fixtures/written/", import.meta.url));
mkdirSync(dir, { recursive: true });
const manifests = await writeCases(dir);
writeFileSync(`${dir}manifest.json`, `${JSON.stringify(manifests, null, 2)}\n`);
console.log(`wrote ${Object.keys(manifests).length} files to ${dir}`);
