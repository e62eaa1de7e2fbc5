/**
 * The optional float16 cast addon (`native/half-cast.c`, built by `npm run build`): float16 →
 * bfloat16 and float16 → float32 with the CPU's AVX2 + F16C instructions, the same bits as
 * torch (and as the lookup tables of plan/cast.ts, which take over where it is missing: no
 * compiler at install, another CPU, a browser, or {@link HALF_CAST_ENV}=0).
 */
import { addonUrl, processAddon, requireAddon } from "../source/native/addons.js";

/** The addon's casts: `src` holds float16 codes (any alignment), `out` the results' bytes. */
export interface HalfCast {
  /** `out` holds 4 bytes per code of `src`. */
  f16ToF32(src: Uint8Array, out: Uint8Array): void;
  /** `out` holds 2 bytes per code of `src`. */
  f16ToBf16(src: Uint8Array, out: Uint8Array): void;
}

/** Set to `0` to cast through the lookup tables even where the addon is built. */
export const HALF_CAST_ENV = "NEOX_CKPT_NATIVE_CAST";

/**
 * Loads the addon at `path` (default: the built one): undefined with the reason when it is
 * missing or this CPU lacks AVX2 or F16C.
 */
export function loadHalfCast(path: URL | string = addonUrl("half-cast")): {
  cast: HalfCast | undefined;
  why: string;
} {
  const { mod, why } = requireAddon(path);
  if (!mod) return { cast: undefined, why };
  const m = mod as Partial<HalfCast> & { available?: boolean };
  if (!m.available) return { cast: undefined, why: "CPU without AVX2 + F16C" };
  if (typeof m.f16ToF32 !== "function" || typeof m.f16ToBf16 !== "function")
    return { cast: undefined, why: "bad addon" };
  return { cast: m as HalfCast, why };
}

const processCast = processAddon(HALF_CAST_ENV, () => {
  const { cast, why } = loadHalfCast();
  return { value: cast, why };
});

/** The process's native cast, or undefined (not in Node, not built, not this CPU, disabled). */
export function halfCast(): HalfCast | undefined {
  return processCast.get();
}

/** Why {@link halfCast} is what it is (for reports). */
export function halfCastStatus(): string {
  return processCast.status();
}
