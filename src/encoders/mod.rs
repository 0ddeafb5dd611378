//! Frozen pretrained encoders, loaded from Hugging Face-format files with candle.
//!
//! `text`: the text encoder over the families of `text_model` — BERT/RoBERTa (`bert`:
//! all-MiniLM-L6-v2, Mental-RoBERTa) and MPNet (`mpnet`: all-mpnet-base-v2).
//! `vision`: CLIP ViT image towers. Both expose one pooled vector per top layer, which is
//! what the fusion model consumes and what the feature cache stores.

pub mod bert;
pub mod clip;
pub mod fast_gelu;
mod fused_rows;
pub mod mpnet;
pub mod ops;
pub mod preprocess;
pub mod resolve;
pub mod row_ops;
pub mod text;
pub mod text_model;
pub mod tokenizer;
mod tokenizer_settings;
pub mod transformer_layer;
pub mod vision;
mod weights;

pub use resolve::{
    resolve_model, resolve_model_reporting, resolve_model_with, Download, HubSettings, ModelFiles,
};
pub use text::{TextEncoder, TextEncoderOptions};
pub use tokenizer::TokenizerFiles;
pub use vision::VisionEncoder;

/// Called as work advances: (items done, items in all).
pub type ProgressFn<'a> = &'a mut dyn FnMut(usize, usize);
