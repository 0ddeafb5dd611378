#!/usr/bin/env python3
"""Reference values for tests/encoders_mpnet.rs, from Hugging Face transformers (PyTorch).

Encodes the test's sentences with all-mpnet-base-v2 as one padded batch (max length 128)
and prints, per sentence, its token count and the first coordinates of the mean-pooled last
hidden layer (sentence-transformers' pooling for this model, before its L2 normalisation),
of the mean-pooled hidden state 6 and of the top layer's first token.

    python3 -m venv /tmp/refenv
    /tmp/refenv/bin/pip install torch transformers
    ./scripts/fetch-model.sh mpnet
    /tmp/refenv/bin/python scripts/reference_mpnet.py models/all-mpnet-base-v2
"""
import sys

import torch
import transformers
from transformers import AutoModel, AutoTokenizer

SENTENCES = [
    "I can't stop worrying about everything, even when nothing is wrong.",
    "ok",
    # 82 tokens: distances far past the exact buckets, into the log-spaced ones.
    "When you finally fall asleep and your brain remembers something embarrassing you said "
    "in 2009, and now you have to replay it forty times while your heart races and every "
    "possible worst case scenario about tomorrow's meeting, your health, your friends and the "
    "rent lines up to be considered one by one until the sun comes up and the alarm rings "
    "and you have to pretend at breakfast that you slept like a baby.",
]
COORDS = 6

folder = sys.argv[1]
torch.set_num_threads(2)
tokenizer = AutoTokenizer.from_pretrained(folder)
model = AutoModel.from_pretrained(folder).eval()
batch = tokenizer(SENTENCES, padding=True, truncation=True, max_length=128, return_tensors="pt")
with torch.no_grad():
    out = model(**batch, output_hidden_states=True)
mask = batch["attention_mask"].unsqueeze(-1).float()


def mean(state):
    return (state * mask).sum(1) / mask.sum(1)


def show(values):
    return ", ".join(f"{v:.6f}" for v in values[:COORDS].tolist())


print(f"torch {torch.__version__}, transformers {transformers.__version__}")
top, middle = mean(out.last_hidden_state), mean(out.hidden_states[6])
for i, sentence in enumerate(SENTENCES):
    print(f"sentence {i}: {int(batch['attention_mask'][i].sum())} tokens")
    print("  top mean:", show(top[i]))
    print("  state 6 mean:", show(middle[i]))
    print("  top first token:", show(out.last_hidden_state[i, 0]))
