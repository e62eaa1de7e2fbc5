/**
 * NeoX's Adam parameter groups (spec §5.1): group 0 holds every non-bias parameter of a module
 * that is not a norm (weight decay applies), group 1 the parameters of norm modules and every
 * bias. Era A files record no groups, so consolidation rebuilds them with this rule.
 */

export interface NamedShape {
  /** Engine name: `0.word_embeddings.weight`, `2.attention.dense.bias`, `sequential.5.norm.weight`. */
  readonly name: string;
  readonly shape: readonly number[];
}

/** True for parameters of LayerNorm / RMSNorm / ScaleNorm modules (`*norm.weight`, `norm.scale`). */
export function isNormParameter(name: string): boolean {
  const parts = name.split(".");
  const module = parts[parts.length - 2] ?? "";
  return /norm$/i.test(module);
}

/** Splits parameters (in `named_parameters()` order) into NeoX's two weight-decay groups. */
export function neoxParamGroups(params: readonly NamedShape[], weightDecay = 0.1): NamedShape[][] {
  if (weightDecay === 0) return [params.slice()];
  const decay: NamedShape[] = [];
  const noDecay: NamedShape[] = [];
  for (const p of params) {
    const leaf = p.name.slice(p.name.lastIndexOf(".") + 1);
    if (isNormParameter(p.name) || leaf === "bias") noDecay.push(p);
    else decay.push(p);
  }
  return [decay, noDecay].filter((g) => g.length > 0);
}

export function numelOfShape(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
