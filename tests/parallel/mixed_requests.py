"""The request set the multi-rank end-to-end tests share (32 requests of mixed lengths and sampling settings,
fixed seeds, for `lattice generate --requests FILE --json`) and the comparison of two runs' outputs."""
import json
import random
import tempfile


def requests_file(directory=None):
    """Writes the requests to a new JSONL file (in `directory`, default the system's temporary one) and returns
    its path."""
    rng = random.Random(3)
    f = tempfile.NamedTemporaryFile("w", suffix=".jsonl", dir=directory, delete=False)
    for i in range(32):
        req = {"id": f"r{i}", "prompt_ids": [rng.randrange(512) for _ in range(rng.randint(1, 90))],
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


def outputs_differ(reference, other, label):
    """None when `other` (the --json lines of a run) equals `reference`'s, else what differs first."""
    a = [json.loads(l) for l in reference.splitlines()]
    b = [json.loads(l) for l in other.splitlines()]
    if len(a) != 32 or len(b) != 32:
        return f"expected 32 outputs, got {len(a)} and {len(b)} ({label})"
    for x, y in zip(a, b):
        # Tokens and finish reasons exactly; log-probabilities to f32 rounding (TP sums partial products in
        # another order, ~1e-7 relative).
        same = (x["id"], x["tokens"], x["finish_reason"], x["prompt_tokens"]) == \
               (y["id"], y["tokens"], y["finish_reason"], y["prompt_tokens"])
        for tx, ty in zip(x["logprobs"], y["logprobs"]):
            same = same and [e["token"] for e in tx] == [e["token"] for e in ty] and \
                all(abs(ex["logprob"] - ey["logprob"]) <= 1e-4 for ex, ey in zip(tx, ty))
        if not same:
            return f"request {x['id']} differs:\n one rank: {json.dumps(x)}\n {label}: {json.dumps(y)}"
    return None
