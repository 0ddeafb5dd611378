//! The frozen text encoder: tokenise, run the model (any family of [`super::text_model`]),
//! pool the top layers.

use anyhow::{anyhow, bail, Context, Result};
use candle_core::{DType, Device, Tensor, D};
use rayon::prelude::*;
use tokenizers::{Encoding, Tokenizer, TruncationParams};

use super::text_model::TextModel;
use super::{ModelFiles, ProgressFn};
use crate::config::Pooling;

#[derive(Debug, Clone, PartialEq)]
pub struct TextEncoderOptions {
    /// Longest input in tokens, special tokens included; longer texts are truncated.
    pub max_length: usize,
    /// How many top hidden states to expose. Hidden state 0 is the embedding output, as in
    /// Hugging Face's `output_hidden_states`, so up to `num_hidden_layers + 1`.
    pub layers: usize,
    pub pooling: Pooling,
    pub batch_size: usize,
}

impl TextEncoderOptions {
    /// The options a run configuration asks for.
    pub fn from_config(config: &crate::config::TextEncoderConfig) -> Self {
        Self {
            max_length: config.max_length,
            layers: config.layers,
            pooling: config.pooling,
            batch_size: config.batch_size,
        }
    }
}

pub struct TextEncoder {
    model: TextModel,
    tokenizer: Tokenizer,
    options: TextEncoderOptions,
    device: Device,
}

impl TextEncoder {
    pub fn load(files: &ModelFiles, device: &Device, options: TextEncoderOptions) -> Result<Self> {
        let tokenizer_files = files
            .tokenizer
            .as_ref()
            .with_context(|| format!("the text encoder `{}` has no tokenizer", files.spec))?;
        let model = TextModel::from_files(&files.config, &files.weights, device)?;
        let max_input = model.config().max_input_length();
        if options.max_length < 2 || options.max_length > max_input {
            bail!(
                "text_encoder.max_length = {} is outside 2..={max_input}, the range `{}` supports",
                options.max_length,
                files.spec
            );
        }
        let states = model.num_layers() + 1;
        if options.layers == 0 || options.layers > states {
            bail!(
                "text_encoder.layers = {} is outside 1..={states} (`{}` has {} layers plus the \
                 embedding output)",
                options.layers,
                files.spec,
                model.num_layers()
            );
        }
        if options.batch_size == 0 {
            bail!("text_encoder.batch_size must be at least 1");
        }
        let mut tokenizer = tokenizer_files.load(&files.spec)?;
        // Batches are padded here, each to its own longest text; a fixed-length padding
        // setting inside tokenizer.json would waste most of the compute on short memes.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: options.max_length,
                ..Default::default()
            }))
            .map_err(|e| anyhow!("setting truncation on the tokenizer of `{}`: {e}", files.spec))?;
        Ok(Self { model, tokenizer, options, device: device.clone() })
    }

    pub fn hidden_size(&self) -> usize {
        self.model.hidden_size()
    }

    pub fn options(&self) -> &TextEncoderOptions {
        &self.options
    }

    /// The underlying encoder, e.g. to fine-tune its top layers.
    pub fn model(&self) -> &TextModel {
        &self.model
    }

    /// The tokenizer, configured with the encoder's truncation and no padding.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Encodes `texts` into a `(texts, layers, hidden)` f32 tensor on the CPU, in input order
    /// (batches are formed from length-sorted texts so that padding is not wasted).
    ///
    /// Whole batches run in parallel on rayon's pool, one per thread, rather than one batch
    /// at a time with every matmul split across threads: on few cores that keeps both busy
    /// through the elementwise ops too, with no per-op synchronisation. The matmuls still
    /// split when a thread runs out of batches (rayon nests), so the tail stays parallel.
    pub fn encode(&self, texts: &[String], progress: ProgressFn) -> Result<Tensor> {
        let (layers, hidden) = (self.options.layers, self.hidden_size());
        let encodings = self.tokenize(texts)?;
        let order = longest_first(&encodings);
        let batches: Vec<&[usize]> = order.chunks(self.options.batch_size).collect();

        let row = layers * hidden;
        let mut features = vec![0f32; texts.len() * row];
        progress(0, texts.len());
        let mut done = 0;
        std::thread::scope(|scope| -> Result<()> {
            let (sender, receiver) = std::sync::mpsc::channel();
            let encodings = &encodings;
            scope.spawn(move || {
                // Stops early once a batch fails or the receiver is gone (it returned an error).
                let _ = batches.par_iter().try_for_each_with(sender, |sender, &chunk| {
                    let batch: Vec<&Encoding> = chunk.iter().map(|&i| &encodings[i]).collect();
                    let pooled = self.encode_batch(&batch);
                    let failed = pooled.is_err();
                    match sender.send((chunk, pooled)) {
                        Ok(()) if !failed => Ok(()),
                        _ => Err(()),
                    }
                });
            });
            for (chunk, pooled) in receiver {
                let first = chunk.iter().min().copied().unwrap_or(0);
                let pooled = pooled.with_context(|| {
                    format!("encoding a batch of {} texts (text {first} among them)", chunk.len())
                })?;
                for (position, &index) in chunk.iter().enumerate() {
                    features[index * row..(index + 1) * row]
                        .copy_from_slice(&pooled[position * row..(position + 1) * row]);
                }
                done += chunk.len();
                progress(done, texts.len());
            }
            Ok(())
        })?;
        Ok(Tensor::from_vec(features, (texts.len(), layers, hidden), &Device::Cpu)?)
    }

    /// The hidden state `from_layer` (0: the embeddings, `i`: layer `i - 1`'s output) of every
    /// token of every text, computed with the frozen (fused) layers below it: the input of a
    /// fine-tuned layer `from_layer`. Returns the texts' states concatenated in input order,
    /// `(total tokens, hidden)` f32 on the CPU, and each text's token count.
    pub fn encode_tokens(
        &self,
        texts: &[String],
        from_layer: usize,
        progress: ProgressFn,
    ) -> Result<(Tensor, Vec<usize>)> {
        if from_layer > self.model.num_layers() {
            bail!(
                "hidden state {from_layer} does not exist: the encoder has {} layers",
                self.model.num_layers()
            );
        }
        let encodings = self.tokenize(texts)?;
        let order = longest_first(&encodings);
        let mut states: Vec<Option<Tensor>> = vec![None; texts.len()];
        progress(0, texts.len());
        let mut done = 0;
        for chunk in order.chunks(self.options.batch_size) {
            let batch: Vec<&Encoding> = chunk.iter().map(|&i| &encodings[i]).collect();
            let (ids, types, mask) = self.padded_inputs(&batch)?;
            let embedded = self.model.embed(&ids, Some(&types))?;
            let state = match from_layer {
                0 => embedded,
                _ => self
                    .model
                    .forward_layers(&embedded, &mask, 0..from_layer)?
                    .remove(from_layer - 1),
            };
            let state = state.to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
            for (position, &index) in chunk.iter().enumerate() {
                let len = encodings[index].get_ids().len();
                states[index] = Some(state.get(position)?.narrow(0, 0, len)?);
            }
            done += chunk.len();
            progress(done, texts.len());
        }
        let lengths = encodings.iter().map(|e| e.get_ids().len()).collect();
        let states: Vec<Tensor> =
            states.into_iter().map(|s| s.expect("every text encoded")).collect();
        let flat = match states.is_empty() {
            true => Tensor::zeros((0, self.hidden_size()), DType::F32, &Device::Cpu)?,
            false => Tensor::cat(&states, 0)?,
        };
        Ok((flat, lengths))
    }

    fn tokenize(&self, texts: &[String]) -> Result<Vec<Encoding>> {
        let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
        self.tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| anyhow!("tokenising {} texts: {e}", texts.len()))
    }

    /// Token ids, type ids and the 0/1 mask of one batch, padded to its longest text.
    fn padded_inputs(&self, batch: &[&Encoding]) -> Result<(Tensor, Tensor, Tensor)> {
        let seq = batch.iter().map(|e| e.get_ids().len()).max().unwrap_or(0);
        let pad = self.model.config().pad_token_id();
        let (mut ids, mut types, mut mask) = (Vec::new(), Vec::new(), Vec::new());
        for encoding in batch {
            let len = encoding.get_ids().len();
            ids.extend_from_slice(encoding.get_ids());
            ids.extend(std::iter::repeat_n(pad, seq - len));
            types.extend_from_slice(encoding.get_type_ids());
            types.extend(std::iter::repeat_n(0, seq - len));
            mask.extend(std::iter::repeat_n(1u32, len));
            mask.extend(std::iter::repeat_n(0u32, seq - len));
        }
        let shape = (batch.len(), seq);
        let ids = Tensor::from_vec(ids, shape, &self.device)?;
        let types = Tensor::from_vec(types, shape, &self.device)?;
        let mask = Tensor::from_vec(mask, shape, &self.device)?;
        Ok((ids, types, mask))
    }

    /// Pads one batch to its longest text, runs the model and pools the top layers; returns
    /// `(batch, layers, hidden)` row-major.
    fn encode_batch(&self, batch: &[&Encoding]) -> Result<Vec<f32>> {
        let (ids, types, mask) = self.padded_inputs(batch)?;
        let states = self.model.hidden_states(&ids, Some(&types), &mask)?;
        let top = &states[states.len() - self.options.layers..];
        let pooled = top
            .iter()
            .map(|state| pool(state, &mask, self.options.pooling))
            .collect::<Result<Vec<_>>>()?;
        let stacked = Tensor::stack(&pooled, 1)?.to_dtype(DType::F32)?;
        Ok(stacked.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?)
    }
}

/// Text indices, longest first, so that each batch pads to a similar length.
fn longest_first(encodings: &[Encoding]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..encodings.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(encodings[i].get_ids().len()));
    order
}

/// One vector per text from a `(batch, seq, hidden)` hidden state, by a pooling that has no
/// weights of its own (attention pooling is the fine-tuned text top's).
pub fn pool(state: &Tensor, mask: &Tensor, pooling: Pooling) -> Result<Tensor> {
    Ok(match pooling {
        Pooling::Attention => {
            bail!("attention pooling is learned: it needs text_encoder.finetune_layers >= 1")
        }
        Pooling::Cls => state.narrow(1, 0, 1)?.squeeze(1)?,
        Pooling::Mean => {
            let weights = mask.to_dtype(state.dtype())?.unsqueeze(D::Minus1)?;
            let summed = state.broadcast_mul(&weights)?.sum(1)?;
            // Every text has at least its special tokens, so the count is never zero.
            summed.broadcast_div(&weights.sum(1)?)?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_pooling_ignores_padding_and_cls_takes_the_first_token() -> Result<()> {
        let device = Device::Cpu;
        let state = Tensor::new(&[[[1f32, 2.], [3., 4.], [100., 100.]]], &device)?;
        let mask = Tensor::new(&[[1u32, 1, 0]], &device)?;
        let mean = pool(&state, &mask, Pooling::Mean)?.to_vec2::<f32>()?;
        assert_eq!(mean, vec![vec![2.0, 3.0]]);
        let cls = pool(&state, &mask, Pooling::Cls)?.to_vec2::<f32>()?;
        assert_eq!(cls, vec![vec![1.0, 2.0]]);
        Ok(())
    }
}
