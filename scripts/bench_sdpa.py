#!/usr/bin/env python3
"""PyTorch baseline for `lattice bench-kernels`: times torch.nn.functional.scaled_dot_product_attention on the
same shapes (Llama-3-8B attention by default: 32 query / 8 KV heads, head_dim 128, bf16) with the same formulas:
prefill TFLOP/s = 4 x visible (query, key) pairs x heads x head_dim / time (causal pairs only), decode GB/s =
K and V bytes of every context position / time. K/V are contiguous here (SDPA has no paged cache); the chunked
case masks bottom-right (query row j of a 512 chunk after 3584 cached sees 3584 + j + 1 keys).

Usage: scripts/bench_sdpa.py [--dtype bf16|f16] [--iters N] [--json]. Needs PyTorch with a CUDA device; exits 0
with a message where there is none, so scripts can call it unconditionally.
"""
import argparse
import json
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=["bf16", "f16"], default="bf16")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        print("bench_sdpa: PyTorch is not installed; skipped")
        return 0
    if not torch.cuda.is_available():
        print("bench_sdpa: no CUDA device visible to PyTorch; skipped")
        return 0
    from torch.nn.attention.bias import causal_lower_right

    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float16
    dev = torch.device("cuda")
    H, K, D = args.heads, args.kv_heads, args.head_dim
    elem = torch.tensor([], dtype=dtype).element_size()

    def timed(fn):
        fn()
        fn()
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(args.iters):
            fn()
        stop.record()
        torch.cuda.synchronize()
        return start.elapsed_time(stop) / 1e3 / args.iters

    def sdpa(q, k, v, causal):
        # causal: None (no mask), "top_left" (q and k of equal length) or "bottom_right" (a chunk after cached keys)
        if causal == "bottom_right":
            mask = causal_lower_right(q.shape[2], k.shape[2])
            return lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
        return lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal == "top_left", enable_gqa=True)

    # HBM read ceiling: sum of a 2 GiB bf16 tensor (best of several passes), as docs/benchmarks.md measures it.
    big = torch.ones((1 << 30,), dtype=torch.bfloat16, device=dev)
    ceiling = max(big.numel() * 2 / timed(lambda: big.sum()) / 1e9 for _ in range(3))
    del big

    results = []
    prefill = [("4096 causal", 1, 4096, 4096), ("8 x 1024 causal", 8, 1024, 1024),
               ("512 after 3584 cached", 1, 512, 4096)]
    for name, batch, q_len, kv_len in prefill:
        q = torch.randn(batch, H, q_len, D, dtype=dtype, device=dev)
        k = torch.randn(batch, K, kv_len, D, dtype=dtype, device=dev)
        v = torch.randn_like(k)
        seconds = timed(sdpa(q, k, v, "top_left" if q_len == kv_len else "bottom_right"))
        pairs = batch * (q_len * (kv_len - q_len) + q_len * (q_len + 1) / 2)
        results.append({"kernel": "prefill", "case": name, "ms": seconds * 1e3,
                        "tflops": 4 * pairs * H * D / seconds / 1e12})
    for batch in (1, 64, 256):
        for ctx in (512, 2048, 8192):
            q = torch.randn(batch, H, 1, D, dtype=dtype, device=dev)
            k = torch.randn(batch, K, ctx, D, dtype=dtype, device=dev)
            v = torch.randn_like(k)
            seconds = timed(sdpa(q, k, v, None))
            gbs = 2 * batch * ctx * K * D * elem / seconds / 1e9
            results.append({"kernel": "decode", "case": f"batch {batch} x {ctx}", "ms": seconds * 1e3,
                            "kv_gbs": gbs, "fraction_of_ceiling": gbs / ceiling})
            del q, k, v
    if args.json:
        print(json.dumps({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "dtype": args.dtype,
                          "heads": H, "kv_heads": K, "head_dim": D, "read_ceiling_gbs": ceiling,
                          "results": results}, indent=2))
        return 0
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, {args.dtype}, heads {H}/{K}, head_dim {D}; "
          f"read ceiling {ceiling:.0f} GB/s")
    for r in results:
        if r["kernel"] == "prefill":
            print(f"  prefill  {r['case']:<24} {r['ms']:9.3f} ms  {r['tflops']:7.1f} TFLOP/s")
        else:
            print(f"  decode   {r['case']:<24} {r['ms']:9.3f} ms  {r['kv_gbs']:7.0f} GB/s of K+V "
                  f"({100 * r['fraction_of_ceiling']:.0f}% of the read ceiling)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
