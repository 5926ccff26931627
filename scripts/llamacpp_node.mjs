// Loads llama.cpp on the CPU through node-llama-cpp, for scripts/bench-llamacpp.mjs and
// scripts/check-gguf-llamacpp.mjs. llama.cpp is not packaged in Debian 12; npm's node-llama-cpp@3.22.1 ships it
// prebuilt (optional dependency @node-llama-cpp/linux-x64: a Node addon over libllama + ggml's CPU backend, one
// libggml-cpu-<arch>.so per x86 level, chosen at load). That binary reports release "v0.5.0" of ggml-org/llama.cpp
// (llamaCppRelease); its libllama-common.so has LLAMA_COMMIT "0ad4a86" (LLAMA_BUILD_NUMBER 1: the package builds
// from a squashed source bundle) and libggml-base.so ggml_version() "0.25.1", ggml_commit() "0ad4a86".
// Nothing is downloaded or compiled: getLlama gets build "never" and skipDownload; install it with installCommand().
import fs from "node:fs";
import path from "node:path";
import os from "node:os";
import {pathToFileURL} from "node:url";

export const NODE_LLAMA_CPP_VERSION = "3.22.1";

// The npm install directory: LLAMACPP_NPM_DIR, else ~/.cache/lattice/npm-llama.
export function defaultNpmDir() {
  return process.env.LLAMACPP_NPM_DIR || path.join(os.homedir(), ".cache", "lattice", "npm-llama");
}

// On Linux only the CPU package of this machine's architecture (85 MB; all optional ones, CUDA and Vulkan
// builds included, are 725 MB); elsewhere npm picks the optional packages that fit.
export function installCommand(npmDir) {
  const cpuOnly = process.platform === "linux"
    ? `--omit=optional @node-llama-cpp/linux-${process.arch}@${NODE_LLAMA_CPP_VERSION} ` : "";
  return `mkdir -p ${npmDir} && cd ${npmDir} && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true ` +
         `npm install --ignore-scripts ${cpuOnly}node-llama-cpp@${NODE_LLAMA_CPP_VERSION}`;
}

// Returns {api, llama, version, timings}: the package's exports, a CPU-only Llama instance allowed `threads`
// threads, what the package reports about the llama.cpp it runs, and timings(context), which reads llama.cpp's own
// clocks. Exits 2 with the install command when the package is missing.
export async function loadLlamaCpp(npmDir, threads) {
  const pkgDir = path.join(npmDir, "node_modules", "node-llama-cpp");
  if (!fs.existsSync(path.join(pkgDir, "dist", "index.js"))) {
    console.error(`node-llama-cpp is not installed in ${npmDir}; install it (npm registry only, nothing built):\n` +
                  `  ${installCommand(npmDir)}\n(or set LLAMACPP_NPM_DIR / --npm-dir to where it is)`);
    process.exit(2);
  }
  const api = await import(pathToFileURL(path.join(pkgDir, "dist", "index.js")).href);
  const perfLines = [];
  const logger = (level, message) => {
    if (message.includes("llama_perf_context_print")) perfLines.push(message);
    else if (level === "warn" || level === "error" || level === "fatal") process.stderr.write(`llama.cpp: ${message}\n`);
  };
  const llama = await api.getLlama({gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true,
                                    maxThreads: threads, logLevel: api.LlamaLogLevel.info, logger});
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8"));
  const version = {node_llama_cpp: pkg.version, build: llama.buildType, release: llama.llamaCppRelease,
                   system_info: llama.systemInfo.trim()};
  return {api, llama, version, timings: (context) => readTimings(context, perfLines)};
}

// llama.cpp's own decode clocks since the previous call (llama_perf_context_print, then reset): prompt = batches
// of more than one token, {ms, tokens}; decode = one-token batches, {ms, runs}. Both exclude node-llama-cpp's
// JavaScript and sampling, as llama-bench's clock around llama_decode does.
async function readTimings(context, perfLines) {
  perfLines.length = 0;
  await context.printTimings();
  await new Promise(resolve => setImmediate(resolve));  // the log callback is delivered on the event loop
  const find = (re) => {
    for (const line of perfLines) {
      const m = line.match(re);
      if (m) return [Number(m[1]), Number(m[2])];
    }
    throw new Error(`llama.cpp printed no timing matching ${re}: ${JSON.stringify(perfLines)}`);
  };
  const [promptMs, tokens] = find(/prompt eval time =\s*([\d.]+) ms \/\s*(\d+) tokens/);
  const [decodeMs, runs] = find(/\beval time =\s*([\d.]+) ms \/\s*(\d+) runs/);
  return {prompt: {ms: promptMs, tokens}, decode: {ms: decodeMs, runs}};
}

// The GGUF at modelPath with every layer on the CPU, and one context whose batch (= ubatch in node-llama-cpp) is
// batchSize tokens, running `threads` threads, with llama.cpp's timing on. flashAttention "auto" | true | false
// and cacheType "F16" | "F32" (K and V) default to llama-bench's defaults, "auto" and "F16".
export async function openContext(llama, modelPath, {contextSize, batchSize, threads, flashAttention = "auto",
                                                     cacheType = "F16"}) {
  const model = await llama.loadModel({modelPath, gpuLayers: 0});
  const context = await model.createContext({
    contextSize, batchSize, threads: {ideal: threads, min: threads}, flashAttention, sequences: 1,
    performanceTracking: true, experimentalKvCacheKeyType: cacheType, experimentalKvCacheValueType: cacheType});
  return {model, context, sequence: context.getSequence()};
}
