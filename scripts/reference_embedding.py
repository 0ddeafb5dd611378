#!/usr/bin/env python3
"""Reference values for tests/encoders_minilm.rs, from an implementation independent of ours.

Prints the first coordinates of the mean-pooled last hidden layer of all-MiniLM-L6-v2 for
the test sentence, computed with Hugging Face transformers (PyTorch), and checks that
sentence-transformers' own pipeline (mean pooling + L2 normalisation) agrees.

    python3 -m venv /tmp/refenv
    /tmp/refenv/bin/pip install torch transformers sentence-transformers
    /tmp/refenv/bin/python scripts/reference_embedding.py models/all-MiniLM-L6-v2
"""
import sys

import torch
import transformers
import sentence_transformers
from transformers import AutoModel, AutoTokenizer
from sentence_transformers import SentenceTransformer

SENTENCE = "I can't stop worrying about everything, even when nothing is wrong."
COORDS = 8

folder = sys.argv[1]
torch.set_num_threads(2)
tokenizer = AutoTokenizer.from_pretrained(folder)
model = AutoModel.from_pretrained(folder).eval()
batch = tokenizer([SENTENCE], return_tensors="pt", truncation=True, max_length=128)
with torch.no_grad():
    hidden = model(**batch).last_hidden_state
mask = batch["attention_mask"].unsqueeze(-1).float()
mean = (hidden * mask).sum(1) / mask.sum(1)

st = SentenceTransformer(folder, device="cpu")
normalised = torch.tensor(st.encode([SENTENCE]))
assert torch.allclose(normalised, torch.nn.functional.normalize(mean, dim=-1), atol=1e-5)

print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
      f"sentence-transformers {sentence_transformers.__version__}")
print("tokens:", batch["input_ids"][0].tolist())
print("first coordinates:", ", ".join(f"{v:.6f}" for v in mean[0, :COORDS].tolist()))
print("cls first coordinates:", ", ".join(f"{v:.6f}" for v in hidden[0, 0, :COORDS].tolist()))
