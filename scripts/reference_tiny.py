#!/usr/bin/env python3
"""Reference values for tests/encoders_tiny.rs from Hugging Face transformers (PyTorch).

The tiny fixtures are seeded, so their outputs are fixed. Write them to a folder and print
what transformers computes for them (in the venv of scripts/reference_embedding.py, plus
`pip install pillow`):

    MEMESCOPE_TINY_DIR=/tmp/tiny cargo test --test encoders_tiny reference
    /tmp/refenv/bin/python scripts/reference_tiny.py /tmp/tiny
"""
import sys

import numpy as np
import torch
import transformers
from PIL import Image
from transformers import AutoModel, CLIPImageProcessor, CLIPVisionModel, PreTrainedTokenizerFast

root = sys.argv[1]
TEXTS = ["panic!!! why is nothing ok", "", "the cat and me, anxious at night"]
COORDS = 6

print(f"torch {torch.__version__}, transformers {transformers.__version__}")
tokenizer = PreTrainedTokenizerFast(tokenizer_file=f"{root}/roberta/tokenizer.json")
tokenizer.pad_token = "<pad>"
model = AutoModel.from_pretrained(f"{root}/roberta", add_pooling_layer=False).eval()
batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
with torch.no_grad():
    top = model(**batch).last_hidden_state
mask = batch["attention_mask"].unsqueeze(-1).float()
mean = (top * mask).sum(1) / mask.sum(1)
print("roberta top-layer mean of text 2:", ", ".join(f"{v:.6f}" for v in mean[2, :COORDS]))

tokenizer = PreTrainedTokenizerFast(tokenizer_file=f"{root}/mpnet/tokenizer.json")
tokenizer.pad_token = "<pad>"
model = AutoModel.from_pretrained(f"{root}/mpnet", add_pooling_layer=False).eval()
batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
with torch.no_grad():
    states = model(**batch, output_hidden_states=True).hidden_states
mask = batch["attention_mask"].unsqueeze(-1).float()
for name, state in [("embeddings", states[0]), ("top", states[-1])]:
    mean = (state * mask).sum(1) / mask.sum(1)
    print(f"mpnet {name} mean of text 2:", ", ".join(f"{v:.6f}" for v in mean[2, :COORDS]))

# The gradient image of the test, 64x40: resized to 51x32 and centre-cropped to 32x32.
pixels = np.zeros((40, 64, 3), dtype=np.uint8)
for y in range(40):
    for x in range(64):
        pixels[y, x] = [(x * 4) % 256, (y * 6) % 256, 90]
processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
pixel_values = processor(images=Image.fromarray(pixels), return_tensors="pt")["pixel_values"]
print("clip pixels [0, :, 5, 7]:", ", ".join(f"{v:.6f}" for v in pixel_values[0, :, 5, 7]))
clip = CLIPVisionModel.from_pretrained(f"{root}/clip").eval()
with torch.no_grad():
    top = clip(pixel_values=pixel_values).last_hidden_state
print("clip top-layer [CLS]:", ", ".join(f"{v:.6f}" for v in top[0, 0, :COORDS]))
