#!/usr/bin/env node
// llama.cpp's prefill and decode speed on the CPU for a GGUF (scripts/convert_to_gguf.py writes one from a
// `lattice make-model` folder), timed the way llama-bench times its pp and tg tests
// (tools/llama-bench/llama-bench.cpp: test_prompt, test_gen), through node-llama-cpp's prebuilt llama.cpp
// (see scripts/llamacpp_node.mjs for the version and how to install it):
//   - one context per input length I, its batch (and ubatch) max(I, 512) tokens, so a prompt is one llama_decode;
//     F16 K/V cache and flash attention "auto", llama-bench's defaults (--cache-type and --flash-attn change them,
//     as llama-bench's -ctk/-ctv and -fa do);
//   - warm-up: one prompt of I tokens and one decode step (llama-bench's warm-up), then R repetitions of:
//     clear the sequence; pp = I random token ids in one batch, logits of the last one, greedy pick;
//     tg = O single-token steps, each feeding the previous pick and computing its logits (llama-bench's
//     `-n O -d I`: decode after the prompt, like `lattice bench`, which decodes after its prefill);
//   - pp tok/s = I / llama.cpp's own prompt-eval time, tg tok/s = O / its own eval time (llama_perf_context:
//     from the start of llama_decode to the synchronize before the logits are read, which is llama-bench's clock
//     around llama_decode + llama_synchronize, plus the hop back through node-llama-cpp's JavaScript before the
//     logits are read: if anything, slower than llama-bench); the *_wall rates time the awaited calls instead, so
//     all of node-llama-cpp's overhead counts against llama.cpp. The JSON reports the medians over R repetitions
//     and each repetition's own rates (llama-bench prints the mean and standard deviation).
// Greedy sampling of the last logits replaces llama-bench's random next token: the same logits are computed, and
// the tokens fed back are the ones `lattice bench` would feed (it samples greedily too).
// usage: node scripts/bench-llamacpp.mjs --model M.gguf [--threads 2] [--input-lens 128,512] [--output-len 128]
//                                        [--reps 5] [--seed 0] [--cache-type f16|f32] [--flash-attn auto|on|off]
//                                        [--npm-dir DIR]
//        node scripts/bench-llamacpp.mjs --check [--npm-dir DIR]   (prints the llama.cpp version JSON, or exits 2
//                                                                 with the install command when it is missing)
// prints {"llama_cpp": {...version}, "model", "threads", "runs": [{"input_len", "output_len", "reps",
//         "prefill_tokens_per_s", "decode_tokens_per_s", "prefill_tokens_per_s_wall", "decode_tokens_per_s_wall",
//         "prefill_tokens_per_s_each", "decode_tokens_per_s_each"}]}
import {parseArgs} from "node:util";
import {defaultNpmDir, loadLlamaCpp, openContext} from "./llamacpp_node.mjs";

const usage = "usage: node scripts/bench-llamacpp.mjs --model M.gguf [--threads 2] [--input-lens 128,512] " +
              "[--output-len 128] [--reps 5] [--seed 0] [--cache-type f16|f32] " +
              "[--flash-attn auto|on|off] [--npm-dir DIR]\n       node scripts/bench-llamacpp.mjs --check [--npm-dir DIR]";

function parse() {
  let values;
  try {
    ({values} = parseArgs({options: {
      "model": {type: "string"}, "threads": {type: "string", default: "2"},
      "input-lens": {type: "string", default: "128,512"}, "output-len": {type: "string", default: "128"},
      "reps": {type: "string", default: "5"}, "seed": {type: "string", default: "0"},
      "cache-type": {type: "string", default: "f16"}, "flash-attn": {type: "string", default: "auto"},
      "npm-dir": {type: "string", default: defaultNpmDir()}, "check": {type: "boolean"},
      "help": {type: "boolean", short: "h"}}}));
  } catch (e) {
    console.error(`bench-llamacpp: ${e.message}\n${usage}`);
    process.exit(2);
  }
  if (values.help || (!values.model && !values.check)) {
    console.error(usage);
    process.exit(values.help ? 0 : 2);
  }
  const positive = (name, s, least = 1) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < least) {
      console.error(`bench-llamacpp: --${name} must be an integer >= ${least}, got "${s}"`);
      process.exit(2);
    }
    return n;
  };
  const choice = (name, allowed) => {
    if (!(values[name] in allowed)) {
      console.error(`bench-llamacpp: --${name} must be one of ${Object.keys(allowed).join("|")}, got "${values[name]}"`);
      process.exit(2);
    }
    return allowed[values[name]];
  };
  return {model: values.model, check: values.check, npmDir: values["npm-dir"], threads: positive("threads", values.threads),
          inputLens: values["input-lens"].split(",").map(s => positive("input-lens", s, 2)),  // one token would be timed as decode
          outputLen: positive("output-len", values["output-len"]), reps: positive("reps", values.reps),
          seed: Number(values.seed) >>> 0, cacheType: choice("cache-type", {f16: "F16", f32: "F32"}),
          flashAttention: choice("flash-attn", {auto: "auto", on: true, off: false})};
}

// mulberry32: a seeded generator, so an invocation's prompts are the same every time it runs.
function randomTokens(state, n, vocab) {
  const out = [];
  for (let i = 0; i < n; i++) {
    state.s = (state.s + 0x6d2b79f5) >>> 0;
    let t = state.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out.push(((t ^ (t >>> 14)) >>> 0) % vocab);
  }
  return out;
}

const GREEDY = {generateNext: {token: true}};  // logits of this token, argmax picked (temperature 0)
const seconds = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;

async function prefill(sequence, prompt) {
  const out = await sequence.controlledEvaluate([...prompt.slice(0, -1), [prompt.at(-1), GREEDY]]);
  return out.at(-1).next.token;
}

async function decode(sequence, token, steps) {
  for (let i = 0; i < steps; i++) token = (await sequence.controlledEvaluate([[token, GREEDY]]))[0].next.token;
  return token;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function benchOne(llama, timings, opts, inputLen, rng) {
  const {model, context, sequence} = await openContext(llama, opts.model, {
    contextSize: inputLen + opts.outputLen + 1, batchSize: Math.max(inputLen, 512), threads: opts.threads,
    cacheType: opts.cacheType, flashAttention: opts.flashAttention});
  const vocab = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
  await decode(sequence, await prefill(sequence, randomTokens(rng, inputLen, vocab)), 1);
  const wall = {pp: [], tg: []}, own = {pp: [], tg: []};
  for (let r = 0; r < opts.reps; r++) {
    await sequence.clearHistory();
    const prompt = randomTokens(rng, inputLen, vocab);
    await timings(context);  // resets llama.cpp's clocks
    let t0 = process.hrtime.bigint();
    const first = await prefill(sequence, prompt);
    wall.pp.push(inputLen / seconds(t0));
    const p = (await timings(context)).prompt;
    t0 = process.hrtime.bigint();
    await decode(sequence, first, opts.outputLen);
    wall.tg.push(opts.outputLen / seconds(t0));
    const d = (await timings(context)).decode;
    if (p.tokens !== inputLen || d.runs !== opts.outputLen) {
      throw new Error(`llama.cpp timed ${p.tokens} prompt tokens and ${d.runs} decode runs, ` +
                      `expected ${inputLen} and ${opts.outputLen}`);
    }
    own.pp.push(inputLen / (p.ms / 1e3));
    own.tg.push(opts.outputLen / (d.ms / 1e3));
  }
  await context.dispose();
  await model.dispose();
  return {input_len: inputLen, output_len: opts.outputLen, reps: opts.reps, cache_type: opts.cacheType,
          flash_attn: opts.flashAttention,
          prefill_tokens_per_s: median(own.pp), decode_tokens_per_s: median(own.tg),
          prefill_tokens_per_s_wall: median(wall.pp), decode_tokens_per_s_wall: median(wall.tg),
          prefill_tokens_per_s_each: own.pp, decode_tokens_per_s_each: own.tg};
}

const opts = parse();
const {llama, version, timings} = await loadLlamaCpp(opts.npmDir, opts.threads);
if (opts.check) {
  console.log(JSON.stringify(version));
  process.exit(0);
}
const rng = {s: opts.seed};
const runs = [];
for (const inputLen of opts.inputLens) runs.push(await benchOne(llama, timings, opts, inputLen, rng));
console.log(JSON.stringify({llama_cpp: version, model: opts.model, threads: opts.threads, runs}, null, 1));
