"""Shared by the `lattice generate` equivalence checks (check_coordinator.py on CPU ranks, tests/gpu/check_grid.py
on one GPU): the 32-request file and the comparison of two runs' --json outputs. Standard library only."""
import json
import random
import tempfile


def requests_file(shared_prefixes=False):
    """32 requests of 1-90 random prompt tokens and 4-20 new ones, greedy and seeded sampling with every setting
    (top_k stays <= 64, which the GPU sampler implements); returns the .jsonl path. With `shared_prefixes`, each
    prompt is instead a random-length prefix of one of four "system prompts" of 20-150 tokens (every eighth
    none) plus 1-30 tokens of its own (prefix caching)."""
    rng = random.Random(3)
    systems = [[rng.randrange(512) for _ in range(rng.randint(20, 150))] for _ in range(4 if shared_prefixes else 0)]
    f = tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False)
    for i in range(32):
        if shared_prefixes:
            system = systems[i % 4]
            prompt = system[:0 if i % 8 == 7 else rng.randint(1, len(system))] + \
                [rng.randrange(512) for _ in range(rng.randint(1, 30))]
        else:
            prompt = [rng.randrange(512) for _ in range(rng.randint(1, 90))]
        req = {"id": f"r{i}", "prompt_ids": prompt,
               "max_tokens": rng.randint(4, 20), "temperature": rng.choice([0, 0.7, 1.0]), "seed": 1000 + i,
               "logprobs": 2}
        if i % 3 == 1: req["top_k"] = 20
        if i % 4 == 2: req["top_p"] = 0.9
        if i % 5 == 3: req["repetition_penalty"] = 1.2
        if i % 6 == 4: req["min_p"] = 0.05
        if i % 7 == 5: req.update(presence_penalty=0.5, frequency_penalty=0.3)
        f.write(json.dumps(req) + "\n")
    f.close()
    return f.name


def differences(a, b, names=("one rank", "split")):
    """Where two runs' outputs (lists of --json objects) differ: ids, tokens, finish reasons, prompt lengths and the
    top-K tokens exactly, log-probabilities to 1e-4 (a split sums partial products in another f32 order, ~1e-7
    relative). An empty list when they agree."""
    if len(a) != 32 or len(b) != 32:
        return [f"expected 32 outputs, got {len(a)} and {len(b)}"]
    out = []
    for x, y in zip(a, b):
        same = (x["id"], x["tokens"], x["finish_reason"], x["prompt_tokens"]) == \
               (y["id"], y["tokens"], y["finish_reason"], y["prompt_tokens"])
        for tx, ty in zip(x["logprobs"], y["logprobs"]):
            same = same and [e["token"] for e in tx] == [e["token"] for e in ty] and \
                all(abs(ex["logprob"] - ey["logprob"]) <= 1e-4 for ex, ey in zip(tx, ty))
        if not same:
            out.append(f"request {x['id']} differs:\n {names[0]}: {json.dumps(x)}\n {names[1]}: {json.dumps(y)}")
    return out
