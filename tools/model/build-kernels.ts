/** Regenerates `src/model/kernels-wasm.ts` from `src/model/kernels.wat`. */
import { writeFileSync } from "node:fs";
import { assembleKernelsFile, KERNELS_TS, kernelsModuleSource } from "./assemble-kernels.js";

const { wasm, hash } = await assembleKernelsFile();
writeFileSync(KERNELS_TS, kernelsModuleSource(wasm, hash));
console.log(`wrote ${KERNELS_TS}: ${wasm.length} bytes of WebAssembly`);
