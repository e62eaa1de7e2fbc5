import assert from "node:assert/strict";
import { test } from "node:test";
import { ModelWeightsError } from "../../src/model/errors.js";
import { GptNeoxModel } from "../../src/model/gpt-neox.js";
import { torchWeightProvider } from "../../src/model/torch-weights.js";
import { checkWeights, expectedWeights, type WeightProvider } from "../../src/model/weights.js";
import { openTorchPath } from "../../src/torch/load.js";
import { fixture } from "../helpers.js";
import { tinyConfig } from "./golden.js";

async function tinyProvider(name: string) {
  const file = await openTorchPath(fixture(`model/${name}/model.pt`));
  return { provider: torchWeightProvider(file), close: () => file.source.close() };
}

/** `provider` with some names hidden, shapes changed or extra tensors added. */
function edited(
  provider: WeightProvider,
  edit: { drop?: string; shape?: [string, number[]]; extra?: string; shortRead?: string },
): WeightProvider {
  return {
    names: () => [
      ...provider.names().filter((n) => n !== edit.drop),
      ...(edit.extra ? [edit.extra] : []),
    ],
    shape: (n) => (edit.shape && n === edit.shape[0] ? edit.shape[1] : provider.shape(n)),
    read: async (n) => {
      const d = await provider.read(n);
      return n === edit.shortRead ? d.subarray(1) : d;
    },
  };
}

test("the legacy buffers are present in tiny-parallel and ignored", async () => {
  const { provider, close } = await tinyProvider("tiny-parallel");
  try {
    const names = provider.names();
    for (const b of ["attention.bias", "attention.masked_bias", "attention.rotary_emb.inv_freq"]) {
      assert.ok(names.includes(`gpt_neox.layers.0.${b}`), b);
    }
    checkWeights(tinyConfig("tiny-parallel"), provider);
    assert.equal(names.length, expectedWeights(tinyConfig("tiny-parallel")).length + 6);
  } finally {
    await close();
  }
});

test("a missing parameter, a wrong shape, an unknown tensor and a short read name the tensor", async () => {
  const { provider, close } = await tinyProvider("tiny-parallel");
  const config = tinyConfig("tiny-parallel");
  const qkv = "gpt_neox.layers.1.attention.query_key_value.weight";
  try {
    assert.throws(
      () => checkWeights(config, edited(provider, { drop: qkv })),
      (e: unknown) =>
        e instanceof ModelWeightsError && e.tensor === qkv && /missing/.test(e.message),
    );
    assert.throws(
      () => checkWeights(config, edited(provider, { shape: [qkv, [96, 33]] })),
      (e: unknown) =>
        e instanceof ModelWeightsError &&
        e.tensor === qkv &&
        e.message.includes("shape [96, 33] does not match the config's [96, 32]"),
    );
    assert.throws(
      () =>
        checkWeights(
          config,
          edited(provider, { extra: "gpt_neox.layers.2.mlp.dense_h_to_4h.weight" }),
        ),
      /'gpt_neox\.layers\.2\.mlp\.dense_h_to_4h\.weight': not a parameter of a GPT-NeoX model with 2 layers/,
    );
    await assert.rejects(
      GptNeoxModel.load(config, edited(provider, { shortRead: "gpt_neox.final_layer_norm.bias" }), {
        threads: 1,
      }),
      /'gpt_neox\.final_layer_norm\.bias': read 31 values, the shape needs 32/,
    );
  } finally {
    await close();
  }
});

test("a config that does not fit the file is refused before anything is read", async () => {
  const { provider, close } = await tinyProvider("tiny-sequential");
  try {
    // tiny-tied has 3 layers and no attention biases; tiny-sequential's file has 2 and biases.
    assert.throws(() => checkWeights(tinyConfig("tiny-tied"), provider), ModelWeightsError);
  } finally {
    await close();
  }
});
