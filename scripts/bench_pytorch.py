#!/usr/bin/env python3
"""PyTorch + transformers reference for `memescope bench` (not run in CI).

Encodes the same texts as the bench (the `ocr_text` of each record, in file order) with
Hugging Face transformers, 2 threads, batches of 32 each padded to its longest text, and
prints texts/s; then the same with texts sorted by length (what memescope does), for
honesty. With --compare FILE.npy (from `memescope bench --dump-embeddings FILE.npy`) it
also prints the max absolute difference between the two sets of pooled embeddings.

    pip install torch transformers numpy
    memescope bench --config configs/axiom-text.toml --dump-embeddings /tmp/ours.npy
    python3 scripts/bench_pytorch.py --compare /tmp/ours.npy

The embeddings compared are the top --layers hidden states (the embedding output counts as
hidden state 0, as in `output_hidden_states`), pooled like memescope (mean over real
tokens, or the first token), shaped (texts, layers, hidden).
"""

import argparse
import json
import time

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="models/all-MiniLM-L6-v2")
    p.add_argument("--data", default="../shared/data/axiom/train.json")
    p.add_argument("--limit", type=int, default=None, help="only the first N records")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--pooling", choices=["mean", "cls"], default="mean")
    p.add_argument("--compare", metavar="FILE.npy", help="embeddings dumped by memescope bench")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p.parse_args()


def load_texts(path, limit):
    with open(path) as f:
        records = json.load(f)
    if limit is not None:
        records = records[:limit]
    return [r.get("ocr_text") or "" for r in records]


def pool(states, mask, layers, pooling):
    top = states[-layers:]
    if pooling == "cls":
        pooled = [s[:, 0] for s in top]
    else:
        weights = mask.unsqueeze(-1).to(top[0].dtype)
        pooled = [(s * weights).sum(1) / weights.sum(1) for s in top]
    return torch.stack(pooled, 1)


def encode(model, tokenizer, texts, order, args):
    """Encodes texts in `order`, batch by batch; returns (seconds, CPU seconds of all threads,
    embeddings in input order)."""
    out = [None] * len(texts)
    started, cpu_started = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        for start in range(0, len(order), args.batch_size):
            chunk = order[start : start + args.batch_size]
            batch = tokenizer(
                [texts[i] for i in chunk],
                padding="longest",
                truncation=True,
                max_length=args.max_length,
                return_tensors="pt",
            ).to(args.device)
            result = model(**batch, output_hidden_states=True)
            pooled = pool(result.hidden_states, batch["attention_mask"], args.layers, args.pooling)
            for row, i in enumerate(chunk):
                out[i] = pooled[row]
        if args.device != "cpu":
            torch.cuda.synchronize()  # the kernels are queued, not done
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return seconds, cpu_seconds, torch.stack(out).cpu().numpy()


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    texts = load_texts(args.data, args.limit)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    # float32 whatever the file holds (a model rounded to f16 for transport is computed in
    # f32, as memescope does); exact f32 products, as candle's cuBLAS calls.
    torch.backends.cuda.matmul.allow_tf32 = False
    model = AutoModel.from_pretrained(args.model, dtype=torch.float32).eval().to(args.device)

    # One untimed warm-up batch, so that PyTorch's one-off allocations are not counted.
    encode(model, tokenizer, texts[: args.batch_size], list(range(min(len(texts), args.batch_size))), args)

    file_order = list(range(len(texts)))
    seconds, cpu_seconds, embeddings = encode(model, tokenizer, texts, file_order, args)
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=args.max_length)["input_ids"]]
    by_length = sorted(file_order, key=lambda i: -lengths[i])
    sorted_seconds, sorted_cpu_seconds, _ = encode(model, tokenizer, texts, by_length, args)

    report = {
        "texts": len(texts),
        "tokens": sum(lengths),
        "threads": torch.get_num_threads(),
        "device": args.device,
        "torch": torch.__version__,
        "file_order_texts_per_s": len(texts) / seconds,
        "file_order_cpu_seconds": cpu_seconds,
        "sorted_texts_per_s": len(texts) / sorted_seconds,
        "sorted_cpu_seconds": sorted_cpu_seconds,
    }
    if args.compare:
        ours = np.load(args.compare)
        if ours.shape != embeddings.shape:
            raise SystemExit(f"{args.compare} has shape {ours.shape}, expected {embeddings.shape}")
        report["max_abs_diff"] = float(np.abs(ours - embeddings).max())

    if args.json:
        print(json.dumps(report))
    else:
        print(f"PyTorch {report['torch']}, {args.device}, {report['threads']} threads, {len(texts)} texts "
              f"({report['tokens']} tokens), batches of {args.batch_size}")
        print(f"  file order (padded to each batch's longest): {report['file_order_texts_per_s']:.1f} texts/s"
              f" ({report['file_order_cpu_seconds']:.1f} s of CPU)")
        print(f"  sorted by length:                            {report['sorted_texts_per_s']:.1f} texts/s"
              f" ({report['sorted_cpu_seconds']:.1f} s of CPU)")
        if "max_abs_diff" in report:
            print(f"  max |memescope - pytorch|: {report['max_abs_diff']:.2e}")


if __name__ == "__main__":
    main()
