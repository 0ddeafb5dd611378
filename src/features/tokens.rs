//! Token-level hidden states of texts, stored ragged: the input of the fine-tuned top layers
//! of the text encoder (`text_encoder.finetune_layers`).

use std::ops::Range;

use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor};

/// A padded batch of token states: what the fine-tuned text layers take.
#[derive(Debug, Clone)]
pub struct TokenBatch {
    /// `(batch, seq, hidden)`, zero past each text's end.
    pub states: Tensor,
    /// `(batch, seq)` u32: 1 for a real token, 0 for padding.
    pub mask: Tensor,
}

impl TokenBatch {
    /// How many texts the batch holds.
    pub fn len(&self) -> usize {
        self.mask.dim(0).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The texts at `rows`, padded only to the longest of them (a slice of a length-sorted
    /// batch pads less than the whole batch did).
    pub fn rows(&self, rows: Range<usize>) -> candle_core::Result<TokenBatch> {
        let count = rows.len();
        let mask = self.mask.narrow(0, rows.start, count)?;
        let longest = mask.sum(1)?.max(0)?.to_scalar::<u32>()? as usize;
        Ok(TokenBatch {
            states: self.states.narrow(0, rows.start, count)?.narrow(1, 0, longest)?,
            mask: mask.narrow(1, 0, longest)?,
        })
    }
}

/// Every text's token states, concatenated: no memory is spent on padding, which on meme
/// texts (a few words to a paragraph) would be most of it.
#[derive(Debug, Clone)]
pub struct TokenStates {
    /// `(tokens of all stored texts, hidden)` f32 on the CPU; shared by selections.
    states: Tensor,
    /// Per sample: the first row of its tokens in `states`, and how many there are.
    spans: Vec<(usize, usize)>,
}

impl TokenStates {
    /// `states` holds the texts' tokens one text after the other, `lengths[i]` rows each.
    pub fn new(states: Tensor, lengths: &[usize]) -> Result<Self> {
        let (rows, _) = states.dims2()?;
        let total: usize = lengths.iter().sum();
        if total != rows {
            bail!("the token states have {rows} rows but the texts' lengths add up to {total}");
        }
        if let Some(i) = lengths.iter().position(|&len| len == 0) {
            bail!("text {i} has no tokens (not even the special ones)");
        }
        let mut start = 0;
        let spans = lengths
            .iter()
            .map(|&len| {
                start += len;
                (start - len, len)
            })
            .collect();
        Ok(Self { states, spans })
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The width of each token state.
    pub fn hidden(&self) -> usize {
        self.states.dim(1).unwrap_or(0)
    }

    /// Each sample's token count.
    pub fn lengths(&self) -> Vec<usize> {
        self.spans.iter().map(|&(_, len)| len).collect()
    }

    /// The samples at `indices`, in that order (the stored states are shared, not copied).
    pub fn select(&self, indices: &[usize]) -> TokenStates {
        TokenStates {
            states: self.states.clone(),
            spans: indices.iter().map(|&i| self.spans[i]).collect(),
        }
    }

    /// The samples at `indices` padded with zeros to the longest of them: `(batch, seq,
    /// hidden)` states and the `(batch, seq)` u32 mask of real tokens, on `device`.
    pub fn padded(&self, indices: &[usize], device: &Device) -> Result<TokenBatch> {
        let hidden = self.hidden();
        let seq = indices.iter().map(|&i| self.spans[i].1).max().unwrap_or(0);
        let mut rows = Vec::with_capacity(indices.len());
        let mut mask = Vec::with_capacity(indices.len() * seq);
        for &i in indices {
            let (start, len) = self.spans[i];
            let tokens = self.states.narrow(0, start, len)?;
            rows.push(match seq - len {
                0 => tokens,
                pad => {
                    let zeros = Tensor::zeros((pad, hidden), DType::F32, &Device::Cpu)?;
                    Tensor::cat(&[tokens, zeros], 0)?
                }
            });
            mask.extend(std::iter::repeat_n(1u32, len));
            mask.extend(std::iter::repeat_n(0u32, seq - len));
        }
        let states = match rows.is_empty() {
            true => Tensor::zeros((0, seq, hidden), DType::F32, device)?,
            false => Tensor::stack(&rows, 0)?.to_device(device)?,
        };
        let mask = Tensor::from_vec(mask, (indices.len(), seq), device)?;
        Ok(TokenBatch { states, mask })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three_texts() -> TokenStates {
        // Text 0: tokens 0..2, text 1: 2..5, text 2: 5..6; each token's state is its row id.
        let states = Tensor::arange(0f32, 6.0, &Device::Cpu)
            .unwrap()
            .reshape((6, 1))
            .unwrap()
            .broadcast_as((6, 2))
            .unwrap()
            .contiguous()
            .unwrap();
        TokenStates::new(states, &[2, 3, 1]).unwrap()
    }

    #[test]
    fn padding_keeps_each_texts_tokens_and_masks_the_rest() -> Result<()> {
        let tokens = three_texts();
        let batch = tokens.padded(&[2, 1], &Device::Cpu)?;
        assert_eq!(batch.states.dims(), &[2, 3, 2]);
        let first: Vec<Vec<f32>> = batch.states.get(0)?.to_vec2()?;
        assert_eq!(first, vec![vec![5.0, 5.0], vec![0.0, 0.0], vec![0.0, 0.0]]);
        let second: Vec<Vec<f32>> = batch.states.get(1)?.to_vec2()?;
        assert_eq!(second, vec![vec![2.0, 2.0], vec![3.0, 3.0], vec![4.0, 4.0]]);
        assert_eq!(batch.mask.to_vec2::<u32>()?, vec![vec![1, 0, 0], vec![1, 1, 1]]);
        Ok(())
    }

    #[test]
    fn rows_of_a_batch_pad_only_to_their_longest_text() -> Result<()> {
        let batch = three_texts().padded(&[0, 2, 1], &Device::Cpu)?;
        let short = batch.rows(0..2)?;
        assert_eq!(short.len(), 2);
        assert_eq!(short.states.dims(), &[2, 2, 2]);
        assert_eq!(short.mask.to_vec2::<u32>()?, vec![vec![1, 1], vec![1, 0]]);
        assert_eq!(short.states.get(1)?.to_vec2::<f32>()?, vec![vec![5.0, 5.0], vec![0.0, 0.0]]);
        let long = batch.rows(2..3)?;
        assert_eq!(long.mask.to_vec2::<u32>()?, vec![vec![1, 1, 1]]);
        assert_eq!(long.states.get(0)?.to_vec2::<f32>()?[2], vec![4.0, 4.0]);
        Ok(())
    }

    #[test]
    fn selection_reorders_samples_without_copying_states() -> Result<()> {
        let picked = three_texts().select(&[1, 0]);
        assert_eq!(picked.len(), 2);
        assert_eq!(picked.lengths(), vec![3, 2]);
        let batch = picked.padded(&[1], &Device::Cpu)?;
        assert_eq!(batch.states.get(0)?.to_vec2::<f32>()?, vec![vec![0.0, 0.0], vec![1.0, 1.0]]);
        Ok(())
    }

    #[test]
    fn lengths_must_cover_the_states() {
        let states = Tensor::zeros((4, 2), DType::F32, &Device::Cpu).unwrap();
        let err = TokenStates::new(states.clone(), &[2, 1]).unwrap_err().to_string();
        assert!(err.contains("4 rows") && err.contains("3"), "{err}");
        assert!(TokenStates::new(states, &[4, 0]).is_err());
    }
}
