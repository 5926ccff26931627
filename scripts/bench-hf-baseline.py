#!/usr/bin/env python3
"""The Hugging Face transformers column for `lattice bench`: the same model shape with random weights (a config-only
folder such as scripts/models/llama-3-8b), bf16 on one GPU, `generate` greedy with every request producing exactly
--output-len tokens (min_new_tokens = max_new_tokens, as ignore_eos), prompts of --input-len random ids, at each
batch size. Prints one JSON object {"runs": [...]} whose runs carry the keys scripts/plot_bench.py reads (batch,
output_tokens_per_s, decode_tokens_per_s, device, dtype, input_len, output_len).
Runs on the GPU machine, which has PyTorch and transformers; exits 2 naming what is missing elsewhere.
usage: bench-hf-baseline.py [--model DIR] [--batch-sizes 1,64] [--input-len 128] [--output-len 128]
                            [--attn-implementation eager|sdpa] [--seed 0]"""
import argparse
import json
import os
import sys
import time


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(usage=__doc__)
    p.add_argument("--model", default=os.path.join(here, "models", "llama-3-8b"))
    p.add_argument("--batch-sizes", default="1,64")
    p.add_argument("--input-len", type=int, default=128)
    p.add_argument("--output-len", type=int, default=128)
    p.add_argument("--attn-implementation", default=None, help="transformers' default when not given")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    try:
        import torch
        import transformers
    except ImportError as e:
        print(f"bench-hf-baseline: {e} (needs PyTorch and transformers)", file=sys.stderr)
        sys.exit(2)
    if not torch.cuda.is_available():
        print("bench-hf-baseline: no CUDA device visible to PyTorch", file=sys.stderr)
        sys.exit(2)
    batches = [int(b) for b in a.batch_sizes.split(",")]
    config = transformers.AutoConfig.from_pretrained(a.model)
    if a.attn_implementation:
        config._attn_implementation = a.attn_implementation
    torch.manual_seed(a.seed)
    # Random weights made on the GPU in bf16 directly: nothing of the checkpoint's size is read or written.
    torch.set_default_dtype(torch.bfloat16)
    t0 = time.perf_counter()
    with torch.device("cuda"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    model.eval()
    torch.cuda.synchronize()
    init_s = time.perf_counter() - t0
    gen = torch.Generator(device="cuda").manual_seed(a.seed)

    def generate(ids, new_tokens):
        torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                                 min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
        torch.cuda.synchronize()
        assert out.shape[1] == ids.shape[1] + new_tokens, out.shape
        return time.perf_counter() - start

    runs = []
    for b in batches:
        ids = torch.randint(0, config.vocab_size, (b, a.input_len), device="cuda", generator=gen)
        generate(ids, 2)  # warm-up: kernels chosen and loaded
        first_s = generate(ids, 1)  # prefill and the first token
        total_s = generate(ids, a.output_len)
        decode_s = max(total_s - first_s, 1e-9)
        runs.append({
            "implementation": f"transformers {transformers.__version__}, torch {torch.__version__}, "
                              f"attention {model.config._attn_implementation}",
            "model": a.model, "device": torch.cuda.get_device_name(), "dtype": "bf16", "batch": b,
            "input_len": a.input_len, "output_len": a.output_len, "seconds": total_s,
            "prefill_seconds": first_s, "output_tokens_per_s": b * a.output_len / total_s,
            "decode_tokens_per_s": b * (a.output_len - 1) / decode_s,
            "decode_ms_per_step": 1e3 * decode_s / (a.output_len - 1) if a.output_len > 1 else None,
        })
        print(f"bench-hf-baseline: batch {b}: {runs[-1]['output_tokens_per_s']:.1f} output tok/s", file=sys.stderr)
    print(json.dumps({"init_seconds": init_s, "runs": runs}))


if __name__ == "__main__":
    main()
