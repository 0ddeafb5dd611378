#!/usr/bin/env python3
"""PyTorch reference for one memescope fine-tuning epoch (issue #18).

`memescope bench --finetune-export DIR` writes the work of epoch 1 of a config that
fine-tunes the top text-encoder layers (see src/bench/finetune.rs): the model's initial
weights by memescope's variable names, the trainer's batches in its order (cached token
states of the layer below the fine-tuned ones, padded, with their masks; the lexical
features; the targets), and the settings; then it runs that epoch with the real trainer and
writes its time and losses to DIR/memescope.json.

This script builds the same model in PyTorch from DIR/initial.safetensors (every variable
must be used, or it stops): fine-tuned layers of BERT (model_type "bert": BERT, MiniLM) or
of MPNet (all-mpnet-base-v2: the same block under other names, plus the relative position
bias, a trained variable the layers share), mean pooling. It runs the same batches in the
same order with the same objective and optimiser (AdamW per learning-rate group,
warmup-linear schedule, clipping by global norm) and dropout 0, and prints its epoch time
(steps only: batch assembly, forward, backward, clipping, optimiser, as memescope counts
them) and losses. With memescope.json present it prints both side by side: the speed ratio
and the loss differences against a stated tolerance.

Tolerance: the two sides compute the same f32 function with different kernels, so sums run
in different orders and round differently (about 1e-7 relative per operation), and AdamW
carries the rounding on from step to step. Measured on AxiOM (docs/benchmarks.md): step 1's
loss agrees to 2e-8 relative, the mean epoch loss to 1e-6, the worst step to 5e-6. The
checks are 10x that: the mean epoch loss within --tolerance (1e-5 relative) and every step
within --step-tolerance (5e-5). The subtlest real difference tried, weight decay left out
(0.01), moves them by 7.5e-5 and 3.9e-4, so it fails both; a wrong group learning rate,
no clipping or a 0.1% different temperature move them by 4e-4 to 3e-2.
`--float64` runs the reference in float64, to tell which side's f32 is the closer one.

Install (only PyPI is reachable here; PyPI's Linux torch wheel pulls the CUDA wheels,
about 5.4 GB installed, which worked in ~3 minutes on this machine; CPU use needs no GPU):

    python3 -m venv /work/venv-torch
    /work/venv-torch/bin/pip install torch numpy safetensors

Run (from the repository root):

    cargo build --release --locked
    $CARGO_TARGET_DIR/release/memescope bench --config configs/axiom-text.toml \\
        --finetune-export /tmp/ft-epoch
    /work/venv-torch/bin/python scripts/bench_finetune_pytorch.py /tmp/ft-epoch

MPNet (the model files in models/all-mpnet-base-v2; --limit N takes the first N records):

    $CARGO_TARGET_DIR/release/memescope bench --config configs/axiom-mpnet.toml \\
        --set text_encoder.finetune_layers=2 --set train.encoder_lr=5e-5 \\
        --finetune-export /tmp/ft-mpnet
    /work/venv-torch/bin/python scripts/bench_finetune_pytorch.py /tmp/ft-mpnet
"""

import argparse
import json
import math
import os
import sys
import time

# OpenMP's default is to spin while waiting at the end of each parallel region. On a shared
# 2-core machine the second thread is often descheduled, and the spinning made two-thread
# PyTorch 40x slower here (63 s for the first 6 steps, 1.5 s passive); memescope pins its
# own elementwise threads to 1 for the same reason. Set before torch loads libgomp;
# an explicit OMP_WAIT_POLICY wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F
from safetensors.numpy import load_file  # noqa: E402

# What memescope adds to the attention score of a padding key (encoders::ops::attention_bias).
MASKED_SCORE = -1e9
# The fusion model's layer norms (model::layers::LayerNorm).
HEAD_LAYER_NORM_EPS = 1e-5


class Weights:
    """The model's variables by memescope's name, remembering which ones were used."""

    def __init__(self, tensors, dtype, device):
        self.params = {
            name: torch.nn.Parameter(torch.from_numpy(value.copy()).to(device, dtype))
            for name, value in tensors.items()
        }
        self.used = set()

    def __call__(self, name):
        if name not in self.params:
            sys.exit(f"initial.safetensors has no variable `{name}`")
        self.used.add(name)
        return self.params[name]

    def unused(self):
        return sorted(set(self.params) - self.used)


def layer_norm(x, w, prefix, eps):
    return F.layer_norm(x, (x.shape[-1],), w(prefix + "weight"), w(prefix + "bias"), eps)


def dense(x, w, prefix, bias=True):
    return F.linear(x, w(prefix + "weight"), w(prefix + "bias") if bias else None)


# --- the fine-tuned text-encoder layers (model::text_top, encoders::transformer_layer) ---


# Where each implemented model_type keeps a layer's tensors (encoders::transformer_layer::
# LayerNames of bert.rs and mpnet.rs): query, key, value, attention output, attention norm,
# intermediate, output, output norm.
LAYER_NAMES = {
    "bert": (
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
        "attention.output.dense",
        "attention.output.LayerNorm",
        "intermediate.dense",
        "output.dense",
        "output.LayerNorm",
    ),
    "mpnet": (
        "attention.attn.q",
        "attention.attn.k",
        "attention.attn.v",
        "attention.attn.o",
        "attention.LayerNorm",
        "intermediate.dense",
        "output.dense",
        "output.LayerNorm",
    ),
}
# MPNet's relative distances beyond this share the last bucket (encoders::mpnet::MAX_DISTANCE).
MPNET_MAX_DISTANCE = 128


def transformer_layer(x, bias, w, prefix, encoder, names):
    """BERT's post-norm block, which MPNet shares; `bias` is added to the attention scores."""
    query, key, value, attention_output, attention_norm, intermediate, output, output_norm = (
        prefix + name + "." for name in names
    )
    batch, seq, hidden = x.shape
    heads = encoder["num_attention_heads"]
    eps = encoder.get("layer_norm_eps", 1e-12)
    head_dim = hidden // heads

    def split(t):
        return t.view(batch, seq, heads, head_dim).transpose(1, 2)

    q = split(dense(x, w, query))
    k = split(dense(x, w, key))
    v = split(dense(x, w, value))
    scores = q @ k.transpose(-1, -2) * (1.0 / math.sqrt(head_dim)) + bias
    context = (torch.softmax(scores, -1) @ v).transpose(1, 2).reshape(batch, seq, hidden)
    projected = dense(context, w, attention_output)
    attended = layer_norm(projected + x, w, attention_norm, eps)
    act = encoder.get("hidden_act", "gelu")
    inner = dense(attended, w, intermediate)
    inner = {"gelu": F.gelu, "relu": F.relu}.get(act, lambda t: F.gelu(t, approximate="tanh"))(
        inner
    )
    out = dense(inner, w, output)
    return layer_norm(out + attended, w, output_norm, eps)


def mpnet_position_bias(seq, w, encoder, device):
    """`(1, heads, seq, seq)`: MPNet's relative position bias (encoders::mpnet), a trained
    variable the fine-tuned layers share; the buckets as Hugging Face's
    `MPNetEncoder.relative_position_bucket` computes them."""
    buckets = encoder.get("relative_attention_num_buckets", 32)
    positions = torch.arange(seq, device=device)
    n = -(positions.view(1, -1) - positions.view(-1, 1))  # key - query, negated
    half = buckets // 2
    max_exact = half // 2
    direction = (n < 0).to(torch.long) * half
    distance = n.abs()
    # In f32, as PyTorch's Hugging Face code and memescope compute it.
    scaled = (
        torch.log(distance.float() / max_exact)
        / math.log(MPNET_MAX_DISTANCE / max_exact)
        * (half - max_exact)
    ).to(torch.long)
    far = torch.clamp(max_exact + scaled, max=half - 1)
    index = direction + torch.where(distance < max_exact, distance, far)
    table = w("text_top.relative_attention_bias.weight")  # (buckets, heads)
    return F.embedding(index, table).permute(2, 0, 1).unsqueeze(0)


def text_stream(states, mask, w, hp):
    """`(batch, exposed, hidden)`: the fine-tuned layers' input and outputs, mean-pooled."""
    settings = hp["config"]["text_encoder"]
    encoder = hp["encoder_config"]
    if settings["pooling"] != "mean":
        sys.exit(f"this reference implements mean pooling, the config has {settings['pooling']}")
    model_type = encoder.get("model_type", "bert")
    if model_type not in LAYER_NAMES:
        sys.exit(f"this reference implements BERT and MPNet layers, not model_type {model_type}")
    bias = ((mask.to(states.dtype) - 1.0) * -MASKED_SCORE).view(mask.shape[0], 1, 1, -1)
    if model_type == "mpnet":
        # Computed once per forward pass and added in every layer, as memescope and Hugging
        # Face do.
        bias = mpnet_position_bias(states.shape[1], w, encoder, states.device) + bias
    hidden = [states]
    for i in range(settings["finetune_layers"]):
        hidden.append(
            transformer_layer(
                hidden[-1], bias, w, f"text_top.{i}.", encoder, LAYER_NAMES[model_type]
            )
        )
    weights = mask.to(states.dtype).unsqueeze(-1)
    pooled = [(h * weights).sum(1) / weights.sum(1) for h in hidden[-settings["layers"] :]]
    return torch.stack(pooled, 1)


# --- one ensemble member (model::member and the modules it uses) ---


def feed_forward(x, w, prefix):
    return dense(F.gelu(dense(x, w, prefix + "expand.")), w, prefix + "contract.")


def attention_block(x, w, prefix, heads):
    batch, length, width = x.shape
    head_dim = width // heads

    def split(t):
        return t.view(batch, length, heads, head_dim).transpose(1, 2)

    q = split(dense(x, w, prefix + "attention.query."))
    k = split(dense(x, w, prefix + "attention.key.", bias=False))
    v = split(dense(x, w, prefix + "attention.value."))
    # Every key is present (text-only): memescope adds a zero mask bias.
    weights = torch.softmax(q @ k.transpose(-1, -2) * (1.0 / math.sqrt(head_dim)), -1)
    merged = (weights @ v).transpose(1, 2).reshape(batch, length, width)
    attended = dense(merged, w, prefix + "attention.output.")
    x = layer_norm(x + attended, w, prefix + "attention_norm.", HEAD_LAYER_NORM_EPS)
    transformed = feed_forward(x, w, prefix + "feed_forward.")
    return layer_norm(x + transformed, w, prefix + "output_norm.", HEAD_LAYER_NORM_EPS)


def member_forward(text, lexical, w, prefix, hp):
    model = hp["config"]["model"]
    ablation = hp["config"]["ablation"]
    layers = text.shape[1]
    projected = torch.cat(
        [dense(text[:, l : l + 1], w, f"{prefix}text_projection.layer{l}.") for l in range(layers)],
        1,
    )
    text_tokens = layer_norm(projected, w, f"{prefix}text_projection.norm.", HEAD_LAYER_NORM_EPS)
    text_embedding = text_tokens.mean(1)
    fused = text_embedding  # one modality: its pooled layers are the fused vector
    gates = None
    if ablation["moe"]:
        experts = model["experts"]
        if experts > 1:
            gates = torch.softmax(dense(fused, w, f"{prefix}moe.gate."), -1)
        else:
            gates = torch.ones(fused.shape[0], 1, dtype=fused.dtype, device=fused.device)
        opinions = torch.stack(
            [feed_forward(fused, w, f"{prefix}moe.expert{e}.") for e in range(experts)], 1
        )
        fused = (opinions * gates.unsqueeze(2)).sum(1)
    else:
        fused = feed_forward(fused, w, f"{prefix}mlp.")
    if model["classifier_layers"] > 0:
        x = torch.cat([fused.unsqueeze(1), text_tokens], 1)
        x = x + w(f"{prefix}classifier.slot_embedding")[: x.shape[1]]
        for b in range(model["classifier_layers"]):
            x = attention_block(x, w, f"{prefix}classifier.block{b}.", model["heads"])
        summary = x[:, 0]
    else:
        summary = fused
    hidden = F.gelu(dense(summary, w, f"{prefix}classifier.head_hidden."))
    logits = dense(hidden, w, f"{prefix}classifier.head_output.")
    if ablation["lexical"]:
        logits = logits + lexical @ w(f"{prefix}lexical.weight").t()
    return logits, text_embedding, fused, gates


# --- the objective (model::loss, contrastive, moe::load_balance_loss, FusionModel::loss) ---


def info_nce(a, b, temperature):
    def unit(x):
        return x / torch.sqrt((x * x).sum(-1, keepdim=True) + 1e-12)

    similarity = unit(a) @ unit(b).t() / temperature
    diagonal = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(similarity, diagonal) + F.cross_entropy(similarity.t(), diagonal))


def load_balance(gates):
    importance = gates.sum(0)
    mean = importance.mean()
    return ((importance - mean) ** 2).mean() / (mean * mean + 1e-10)


def member_loss(outputs, targets, hp):
    logits, text_embedding, fused, gates = outputs
    model = hp["config"]["model"]
    ablation = hp["config"]["ablation"]
    if hp["multi_label"]:
        classification = F.binary_cross_entropy_with_logits(logits, targets)
    else:
        classification = F.cross_entropy(logits, targets)
    components = {"classification": classification}
    total = classification
    # Text-only: the one contrastive pair is text ↔ fused.
    if ablation["contrastive"] and ablation["contrastive_text_fused"]:
        w = model["contrastive_weight"]
        total = total * (1.0 - w)
        if logits.shape[0] >= 2:
            term = info_nce(text_embedding, fused, np.float32(model["temperature"]).item())
            components["contrastive_text_fused"] = term
            total = total + term * w
    if ablation["moe"] and model["experts"] > 1 and model["load_balance_weight"] > 0:
        balance = load_balance(gates)
        components["load_balance"] = balance
        total = total + balance * model["load_balance_weight"]
    return total, components


def model_loss(states, mask, lexical, targets, w, hp):
    text = text_stream(states, mask, w, hp)
    members = max(hp["config"]["model"]["ensemble"], 1)
    parts = [
        member_loss(
            member_forward(text, lexical, w, "" if m == 0 else f"member{m}.", hp), targets, hp
        )
        for m in range(members)
    ]
    total = torch.stack([p[0] for p in parts]).mean()
    components = {
        name: torch.stack([p[1][name] for p in parts]).mean().item() for name in parts[0][1]
    }
    return total, components


# --- the optimiser (train::optimizers, train::schedule) ---


def base_rate(name, train):
    if name.split(".")[0] == "text_top":
        return train["encoder_lr"]
    if "lexical" in name.split("."):
        return train["lexical_lr"]
    return train["lr"]


def learning_rate(step, hp):
    train = hp["config"]["train"]
    warmup, total = hp["warmup_steps"], max(hp["total_steps"], 1)
    if step < warmup:
        return train["lr"] * (step + 1) / warmup
    if train["schedule"] == "reduce_on_plateau":
        return train["lr"]
    return train["lr"] * max(1.0 - (step - warmup) / max(total - warmup, 1), 0.0)


def clip_gradients(params, max_norm):
    if max_norm <= 0:
        return
    total = sum(float((p.grad.float() ** 2).sum()) for p in params if p.grad is not None)
    norm = math.sqrt(total)
    if norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for p in params:
            if p.grad is not None:
                p.grad.mul_(scale)


# --- the epoch ---


def run_epoch(directory, hp, dtype, device, steps_limit):
    weights = Weights(load_file(os.path.join(directory, "initial.safetensors")), dtype, device)
    batches = load_file(os.path.join(directory, "batches.safetensors"))
    train = hp["config"]["train"]
    groups = {}
    for name, param in sorted(weights.params.items()):
        groups.setdefault(base_rate(name, train), []).append(param)
    optimizer = torch.optim.AdamW(
        [{"params": params, "ratio": rate / train["lr"]} for rate, params in groups.items()],
        lr=train["lr"],
        betas=(hp["adam_beta1"], hp["adam_beta2"]),
        eps=hp["adam_eps"],
        weight_decay=train["weight_decay"],
    )
    params = list(weights.params.values())
    buckets = hp["config"]["model"]["lexical_buckets"]
    steps = hp["steps"] if steps_limit is None else min(steps_limit, hp["steps"])
    losses, sizes, first_components, seconds, cpu = [], [], None, 0.0, 0.0
    for step in range(steps):
        started, cpu_started = time.perf_counter(), time.process_time()
        key = f"{step:04d}"
        # Batches are assembled on the CPU and copied over, as memescope's trainer does.
        states = torch.from_numpy(batches[f"{key}.states"]).to(device, dtype)
        mask = torch.from_numpy(batches[f"{key}.mask"].astype(np.int64)).to(device)
        size = states.shape[0]
        lexical = torch.zeros(size, buckets, dtype=dtype)
        if f"{key}.lexical_index" in batches:
            index = torch.from_numpy(batches[f"{key}.lexical_index"].astype(np.int64))
            lexical[index[:, 0], index[:, 1]] = torch.from_numpy(
                batches[f"{key}.lexical_value"]
            ).to(dtype)
        lexical = lexical.to(device)
        raw_targets = batches[f"{key}.targets"]
        if hp["multi_label"]:
            targets = torch.from_numpy(raw_targets).to(device, dtype)
        else:
            targets = torch.from_numpy(raw_targets.astype(np.int64)).to(device)
        rate = learning_rate(step, hp)
        for group in optimizer.param_groups:
            group["lr"] = rate * group["ratio"]
        loss, components = model_loss(states, mask, lexical, targets, weights, hp)
        value = loss.item()
        loss.backward()
        clip_gradients(params, train["grad_clip"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()  # the step's kernels are queued, not done
        seconds += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
        if step == 0:
            unused = weights.unused()
            if unused:
                sys.exit(f"the reference does not use these variables: {unused}")
            first_components = components
        losses.append(value)
        sizes.append(size)
    mean = sum(l * s for l, s in zip(losses, sizes)) / max(sum(sizes), 1)
    return {
        "epoch_step_seconds": seconds,
        "epoch_cpu_seconds": cpu,
        "steps": steps,
        "mean_loss": mean,
        "last_step_loss": losses[-1],
        "step_losses": losses,
        "first_step_components": first_components,
    }


def relative(a, b):
    return abs(a - b) / max(abs(b), 1e-30)


def compare(memescope, pytorch, tolerance, step_tolerance):
    """Prints memescope's epoch beside this reference's; returns whether the losses agree."""
    speedup = pytorch["epoch_step_seconds"] / memescope["epoch_step_seconds"]
    print(f"\n{'':24} {'memescope':>14} {'PyTorch':>14}")
    print(
        f"{'epoch, steps only (s)':24} {memescope['epoch_step_seconds']:14.2f} "
        f"{pytorch['epoch_step_seconds']:14.2f}"
    )
    print(
        f"{'epoch, CPU seconds':24} {memescope['epoch_cpu_seconds']:14.2f} "
        f"{pytorch['epoch_cpu_seconds']:14.2f}"
    )
    print(f"{'load average (1 min)':24} {str(memescope['load_average']):>14} {str(pytorch['load_average']):>14}")
    print(f"memescope speed-up: {speedup:.2f}x (PyTorch's time / memescope's; the goal is >= 1.5x)")
    rows = [
        ("first step loss", memescope["step_losses"][0], pytorch["step_losses"][0]),
        ("mean epoch loss", memescope["mean_loss"], pytorch["mean_loss"]),
        ("last step loss", memescope["last_step_loss"], pytorch["last_step_loss"]),
    ]
    for name, value in memescope["first_step_components"].items():
        rows.append(
            (f"step 1 {name}", value, pytorch["first_step_components"].get(name, float("nan")))
        )
    print(f"\n{'':24} {'memescope':>14} {'PyTorch':>14} {'relative diff':>14}")
    for name, a, b in rows:
        print(f"{name:24} {a:14.8f} {b:14.8f} {relative(a, b):14.2e}")
    n = min(len(memescope["step_losses"]), len(pytorch["step_losses"]))
    diffs = [relative(memescope["step_losses"][i], pytorch["step_losses"][i]) for i in range(n)]
    worst = max(range(n), key=lambda i: diffs[i])
    print(f"largest step-loss difference: {diffs[worst]:.2e} relative, at step {worst + 1} of {n}")
    mean_agrees = relative(memescope["mean_loss"], pytorch["mean_loss"]) <= tolerance
    steps_agree = diffs[worst] <= step_tolerance
    verdict = {True: "within", False: "OUTSIDE"}
    print(f"mean epoch loss: {verdict[mean_agrees]} the tolerance of {tolerance:.0e} relative")
    print(f"every step's loss: {verdict[steps_agree]} the tolerance of {step_tolerance:.0e} relative")
    return mean_agrees and steps_agree


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", help="the directory `memescope bench --finetune-export` wrote")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=1e-5,
        help="accepted relative difference of the mean epoch loss (default 1e-5: 10x the f32 "
        "rounding measured between the two sides over an epoch)",
    )
    parser.add_argument(
        "--step-tolerance",
        type=float,
        default=5e-5,
        help="accepted relative difference of any one step's loss (default 5e-5)",
    )
    parser.add_argument("--float64", action="store_true", help="run the reference in float64")
    parser.add_argument(
        "--device",
        default="cpu",
        help="cpu or cuda (compare with an export made with train.device = \"cuda\")",
    )
    parser.add_argument("--steps", type=int, help="run only the first N steps (diagnosis)")
    parser.add_argument("--json", action="store_true", help="print this side's numbers as JSON")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with open(os.path.join(args.dir, "hyperparams.json")) as f:
        hp = json.load(f)
    if hp["config"]["model"]["dropout"] != 0:
        sys.exit("the export must have dropout 0 (memescope's masks cannot be reproduced)")
    dtype = torch.float64 if args.float64 else torch.float32
    device = torch.device(args.device)
    # Exact f32 products on both sides: candle's cuBLAS calls use no TF32 either.
    torch.backends.cuda.matmul.allow_tf32 = False
    before = os.getloadavg()[0]
    result = run_epoch(args.dir, hp, dtype, device, args.steps)
    result["load_average"] = [before, os.getloadavg()[0]]
    result["threads"] = torch.get_num_threads()
    result["torch"] = torch.__version__
    result["omp_wait_policy"] = os.environ["OMP_WAIT_POLICY"]
    result["dtype"] = str(dtype)
    result["device"] = str(device)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"PyTorch {torch.__version__}, {device}, {result['threads']} threads, {dtype}, "
            f"OMP_WAIT_POLICY={result['omp_wait_policy']}"
        )
        print(
            f"epoch (steps only) {result['epoch_step_seconds']:.2f} s, "
            f"{result['epoch_cpu_seconds']:.2f} CPU s, {result['steps']} steps"
        )
        print(f"mean epoch loss    {result['mean_loss']:.8f}")
        print(f"last step loss     {result['last_step_loss']:.8f}")
        print(f"load average       {result['load_average'][0]:.2f} before, {result['load_average'][1]:.2f} after")
    ours_path = os.path.join(args.dir, "memescope.json")
    if os.path.exists(ours_path) and args.steps is None:
        with open(ours_path) as f:
            memescope = json.load(f)
        if not compare(memescope, result, args.tolerance, args.step_tolerance):
            sys.exit(1)


if __name__ == "__main__":
    main()
