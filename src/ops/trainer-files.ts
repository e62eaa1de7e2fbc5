/** The file names of a Hugging Face Trainer checkpoint folder and of what `export` adds to it. */

/** transformers' names (trainer.py: OPTIMIZER_NAME, SCHEDULER_NAME, TRAINER_STATE_NAME) and ours. */
export const TRAINER_FILES = Object.freeze({
  optimizer: "optimizer.pt",
  scheduler: "scheduler.pt",
  trainerState: "trainer_state.json",
  /** The TrainingArguments of the recipe and where the run stands (ours). */
  recipe: "recipe.json",
  /** Parameter names by optimizer index, beside a `torch-adamw` optimizer.pt (ours). */
  paramNames: "param_names.json",
  readme: "README.md",
});
