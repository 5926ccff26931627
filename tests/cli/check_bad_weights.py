#!/usr/bin/env python3
"""A checkpoint that does not match its config.json is refused by `lattice generate`, naming what is wrong: a NaN
and an inf in a weight (the tensor, the element, the kind), and a config with fewer layers than the checkpoint
(the unused tensors). tiny-llama is copied to a temporary folder and one byte range or one field is changed."""
import json
import shutil
import struct
import subprocess
import sys
import tempfile

lattice, data = sys.argv[1], sys.argv[2]
checks = failures = 0


def check(ok, message):
    global checks, failures
    checks += 1
    if not ok:
        print(message)
        failures += 1


def set_element(path, tensor, index, value):
    """Overwrites element `index` of f32 tensor `tensor` in the safetensors file at `path`."""
    with open(path, "r+b") as f:
        header_len = struct.unpack("<Q", f.read(8))[0]
        entry = json.loads(f.read(header_len))[tensor]
        assert entry["dtype"] == "F32"
        f.seek(8 + header_len + entry["data_offsets"][0] + 4 * index)
        f.write(struct.pack("<f", value))


def generate_error(model):
    run = subprocess.run([lattice, "generate", "--model", model, "--device", "cpu", "--prompt-ids", "1,2",
                          "--max-tokens", "2"], capture_output=True, text=True, timeout=120)
    return run.returncode, run.stderr


weight = "model.layers.3.self_attn.v_proj.weight"  # [64, 128]
for value, kind in [(float("nan"), "NaN"), (float("inf"), "inf"), (float("-inf"), "-inf")]:
    with tempfile.TemporaryDirectory() as model:
        shutil.copytree(f"{data}/tiny-llama/f32", model, dirs_exist_ok=True)
        set_element(f"{model}/model.safetensors", weight, 10 * 128 + 3, value)
        code, err = generate_error(model)
        want = f"weight '{weight}' holds {kind} at element 1283 (index [10, 3] of [64, 128])"
        check(code != 0 and want in err, f"{kind}: want exit != 0 and '{want}', got {code}: {err}")

with tempfile.TemporaryDirectory() as model:
    shutil.copytree(f"{data}/tiny-llama/f32", model, dirs_exist_ok=True)
    with open(f"{model}/config.json") as f:
        config = json.load(f)
    config["num_hidden_layers"] = 2
    with open(f"{model}/config.json", "w") as f:
        json.dump(config, f)
    code, err = generate_error(model)
    want = "checkpoint holds tensors not used by this config (num_hidden_layers 2): model.layers.2.input_layernorm.weight"
    check(code != 0 and want in err and "(18 tensors)" in err, f"fewer layers: want '{want}', got {code}: {err}")

print(f"{checks - failures} passed, {failures} failed")
sys.exit(1 if failures else 0)
