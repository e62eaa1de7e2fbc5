/**
 * The parameter groups transformers' `Trainer` builds by default (`create_optimizer`): group 0
 * the parameters `get_decay_parameter_names` returns, with the run's weight decay; group 1 the
 * rest, with none — each in `model.named_parameters()` order, both always present. A saved
 * `optimizer.pt` is matched to a model by these positions, so they must be exactly the Trainer's.
 */

/**
 * Name patterns that keep a parameter out of weight decay (transformers' `Trainer`
 * `get_decay_parameter_names`, matched against the lower-cased name; older releases checked
 * `bias` only). The Trainer also excludes every parameter of an `nn.LayerNorm`; GPT-NeoX's
 * LayerNorms (`input_layernorm`, `post_attention_layernorm`, `final_layer_norm`) are all named so
 * that these patterns catch them, so the rule by name is the whole rule for this model.
 */
const NO_DECAY_PATTERNS: readonly RegExp[] = [
  /bias/,
  /layernorm/,
  /rmsnorm/,
  /(?:^|\.)norm(?:$|\.)/,
  /_norm(?:$|\.)/,
];

/** True when the Trainer applies weight decay to the parameter `name`. */
export function trainerDecays(name: string): boolean {
  const n = name.toLowerCase();
  return !NO_DECAY_PATTERNS.some((p) => p.test(n));
}

/** One of the Trainer's two parameter groups. */
export interface TrainerGroup {
  readonly weightDecay: number;
  /** Parameter names in `named_parameters()` order. */
  readonly names: readonly string[];
}

/**
 * The Trainer's groups of `names` (given in `named_parameters()` order): decayed parameters
 * with `weightDecay`, then the others with 0. Optimizer state indices run over group 0, then
 * group 1 (`torch.optim.Optimizer.state_dict`).
 */
export function trainerParamGroups(
  names: readonly string[],
  weightDecay: number,
): [TrainerGroup, TrainerGroup] {
  return [
    { weightDecay, names: names.filter(trainerDecays) },
    { weightDecay: 0, names: names.filter((n) => !trainerDecays(n)) },
  ];
}

/** Parameter names in optimizer index order (`state` keys 0, 1, …). */
export function indexOrder(groups: readonly TrainerGroup[]): string[] {
  return groups.flatMap((g) => g.names);
}
