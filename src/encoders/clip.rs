//! The CLIP ViT vision tower, exposing every hidden layer.
