#!/usr/bin/env node
// Checks that a GGUF written by scripts/convert_to_gguf.py computes the same model in llama.cpp, or prints
// llama.cpp's greedy continuation for comparison with `lattice generate --temperature 0 --prompt-ids ...`.
// Runs with an F32 K/V cache and flash attention off, so every op is f32 as in Lattice's CPU backend (llama.cpp's
// CPU flash attention rounds Q to f16).
//   --expected FILE: the cases of tests/data/tiny-llama/expected.json (float64 reference of HF Llama for the f32/
//     weights). For each case the prompt is evaluated with logits at every position, then the 24-token greedy
//     continuation one token at a time; every logit given (full vectors or top-5) must be within --tolerance
//     (default 1e-3) of the reference, and the greedy tokens must be the reference's. 1e-3 is 100x the f32 error
//     measured here (1e-5) and 15x below the smallest greedy margin in the file (0.0147), so the greedy check is
//     exact; q/k rows in the wrong RoPE order give errors of whole logits. Exits 1 on a mismatch.
//   --prompt-ids 1,2,3 [--max-tokens 16]: prints {"prompt_ids", "greedy"} as JSON.
// usage: node scripts/check-gguf-llamacpp.mjs --model M.gguf (--expected FILE [--tolerance T] |
//                                             --prompt-ids IDS [--max-tokens N]) [--npm-dir DIR]
import fs from "node:fs";
import {parseArgs} from "node:util";
import {defaultNpmDir, loadLlamaCpp, openContext} from "./llamacpp_node.mjs";

const usage = "usage: node scripts/check-gguf-llamacpp.mjs --model M.gguf (--expected FILE [--tolerance T] | " +
              "--prompt-ids IDS [--max-tokens N]) [--npm-dir DIR]";
let values;
try {
  ({values} = parseArgs({options: {
    "model": {type: "string"}, "expected": {type: "string"}, "tolerance": {type: "string", default: "1e-3"},
    "prompt-ids": {type: "string"}, "max-tokens": {type: "string", default: "16"},
    "npm-dir": {type: "string", default: defaultNpmDir()}}}));
} catch (e) {
  console.error(`check-gguf-llamacpp: ${e.message}\n${usage}`);
  process.exit(2);
}
if (!values.model || !values.expected === !values["prompt-ids"]) {
  console.error(usage);
  process.exit(2);
}

const NEXT_LOGITS = {generateNext: {logits: true}};  // every logit of the next-token distribution, no sampling

// Logits of the next token after each of `tokens` (as arrays indexed by token id), fed as one batch.
async function evaluate(sequence, tokens) {
  const out = await sequence.controlledEvaluate(tokens.map(t => [t, NEXT_LOGITS]));
  return out.map(o => {
    const logits = [];
    for (const [id, x] of o.next.logits) logits[id] = x;
    return logits;
  });
}

const argmax = (xs) => xs.reduce((best, x, i) => (x > xs[best] ? i : best), 0);

// Greedy continuation of `count` tokens after logits `last`; returns the tokens and each step's logits.
async function greedy(sequence, last, count) {
  const tokens = [], steps = [];
  for (let i = 0; i < count; i++) {
    tokens.push(argmax(last));
    if (i + 1 < count) {
      last = (await evaluate(sequence, [tokens.at(-1)]))[0];
      steps.push(last);
    }
  }
  return {tokens, steps};
}

// Largest |ours - reference| over the logits the reference entry gives (all of them, or its top 5).
function maxError(ours, ref) {
  const pairs = ref.logits ? ref.logits.map((x, id) => [id, x]) : ref.top5;
  return Math.max(...pairs.map(([id, x]) => Math.abs(ours[id] - x)));
}

const {llama, version} = await loadLlamaCpp(values["npm-dir"], 2);
const {sequence} = await openContext(llama, values.model, {contextSize: 512, batchSize: 512, threads: 2,
                                                           flashAttention: false, cacheType: "F32"});
if (values["prompt-ids"]) {
  const prompt = values["prompt-ids"].split(",").map(Number);
  const logits = await evaluate(sequence, prompt);
  const {tokens} = await greedy(sequence, logits.at(-1), Number(values["max-tokens"]));
  console.log(JSON.stringify({prompt_ids: prompt, greedy: tokens}));
  process.exit(0);
}

const tolerance = Number(values.tolerance);
const expected = JSON.parse(fs.readFileSync(values.expected, "utf8"));
let failures = 0;
for (const [i, c] of expected.cases.entries()) {
  await sequence.clearHistory();
  const promptLogits = await evaluate(sequence, c.prompt);
  const {tokens, steps} = await greedy(sequence, promptLogits.at(-1), c.greedy.length);
  const errors = [...c.prompt_positions.map((ref, p) => maxError(promptLogits[p], ref)),
                  ...c.steps.map((ref, s) => maxError(steps[s], ref))];
  const worst = Math.max(...errors);
  const greedyOk = tokens.every((t, k) => t === c.greedy[k]);
  const ok = worst <= tolerance && greedyOk;
  failures += ok ? 0 : 1;
  console.log(`case ${i}: ${c.prompt.length} prompt tokens, ${c.greedy.length} greedy tokens ` +
              `${greedyOk ? "match" : `differ: ${tokens} vs ${c.greedy}`}, max |logit error| ${worst.toExponential(2)} ` +
              `over ${errors.length} positions${c.prompt_positions[0].logits ? " (full vectors)" : " (top 5)"}: ` +
              `${ok ? "ok" : "FAIL"}`);
}
console.log(`${failures ? "FAIL" : "ok"}: ${expected.cases.length - failures}/${expected.cases.length} cases within ` +
            `${tolerance} of the reference (llama.cpp ${version.release.release}, node-llama-cpp ${version.node_llama_cpp})`);
process.exit(failures ? 1 : 0);
