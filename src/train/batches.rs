//! Targets and mini-batches over cached features.

use anyhow::Result;
use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::data::Dataset;
use crate::features::Features;
use crate::model::Batch;

/// The label indices of every sample, and how to turn them into a target tensor.
#[derive(Debug, Clone)]
pub struct Targets {
    pub multi_label: bool,
    pub num_labels: usize,
    pub labels: Vec<Vec<usize>>,
}

impl Targets {
    pub fn of(dataset: &Dataset) -> Self {
        Self {
            multi_label: dataset.space.multi_label,
            num_labels: dataset.space.len(),
            labels: dataset.samples.iter().map(|s| s.labels.clone()).collect(),
        }
    }

    /// Single-label: `(batch,)` u32 ids. Multi-label: `(batch, labels)` f32 multi-hot.
    pub fn tensor(&self, indices: &[usize], device: &Device) -> Result<Tensor> {
        Ok(if self.multi_label {
            let mut hot = vec![0f32; indices.len() * self.num_labels];
            for (row, &i) in indices.iter().enumerate() {
                for &label in &self.labels[i] {
                    hot[row * self.num_labels + label] = 1.0;
                }
            }
            Tensor::from_vec(hot, (indices.len(), self.num_labels), device)?
        } else {
            let ids: Vec<u32> = indices.iter().map(|&i| self.labels[i][0] as u32).collect();
            Tensor::from_vec(ids, indices.len(), device)?
        })
    }
}

/// The model's view of the samples at `indices`, with their targets.
pub fn batch(
    features: &Features,
    targets: &Targets,
    indices: &[usize],
    device: &Device,
) -> Result<Batch> {
    let mut batch = inputs(features, indices, device)?;
    batch.targets = Some(targets.tensor(indices, device)?);
    Ok(batch)
}

/// The model's view of the samples at `indices`, without targets (unlabelled samples).
pub fn inputs(features: &Features, indices: &[usize], device: &Device) -> Result<Batch> {
    let rows = features.select(indices)?;
    let image_mask = match &rows.image {
        Some(_) => {
            let mask: Vec<f32> =
                (0..indices.len()).map(|i| f32::from(u8::from(rows.image_present(i)))).collect();
            Some(Tensor::from_vec(mask, indices.len(), device)?)
        }
        None => None,
    };
    Ok(Batch {
        text: rows.text.map(|t| t.to_device(device)).transpose()?,
        text_tokens: features.tokens.as_ref().map(|t| t.padded(indices, device)).transpose()?,
        image: rows.image.map(|t| t.to_device(device)).transpose()?,
        lexical: features.lexical.as_ref().map(|l| l.dense(indices, device)).transpose()?,
        image_mask,
        targets: None,
    })
}

/// A seeded shuffle of `0..n` cut into batches; each epoch gets its own order.
///
/// With `lengths` (token counts, when text layers are fine-tuned), the shuffled samples are
/// taken [`BUCKET_BATCHES`] batches' worth at a time, sorted by length inside that pool, cut
/// into batches, and the batches shuffled: each batch pads to its longest text, and meme
/// texts run from a few tokens to hundreds, so random batches would spend about two thirds
/// of every step on padding. Batches stay random in content and order, only more uniform
/// in length.
pub fn epoch_order(
    n: usize,
    batch_size: usize,
    seed: u64,
    epoch: usize,
    lengths: Option<&[usize]>,
) -> Vec<Vec<usize>> {
    let batch_size = batch_size.max(1);
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng =
        rand::rngs::StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
    order.shuffle(&mut rng);
    let Some(lengths) = lengths else {
        return order.chunks(batch_size).map(<[usize]>::to_vec).collect();
    };
    let mut batches: Vec<Vec<usize>> = Vec::with_capacity(n.div_ceil(batch_size));
    for pool in order.chunks_mut(batch_size * BUCKET_BATCHES) {
        pool.sort_by_key(|&i| lengths[i]);
        batches.extend(pool.chunks(batch_size).map(<[usize]>::to_vec));
    }
    batches.shuffle(&mut rng);
    batches
}

/// How many batches' worth of shuffled samples are sorted by length together.
pub const BUCKET_BATCHES: usize = 16;

/// `0..n` ordered by `lengths` (when given), cut into batches: the cheapest way to run
/// every sample once when the cost of a batch is its longest member.
pub fn length_sorted_batches(
    n: usize,
    batch_size: usize,
    lengths: Option<&[usize]>,
) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    if let Some(lengths) = lengths {
        order.sort_by_key(|&i| lengths[i]);
    }
    order.chunks(batch_size.max(1)).map(<[usize]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_orders_are_seeded_permutations() {
        let a = epoch_order(10, 3, 7, 1, None);
        assert_eq!(a, epoch_order(10, 3, 7, 1, None));
        assert_ne!(a, epoch_order(10, 3, 7, 2, None));
        let mut all: Vec<usize> = a.concat();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(a.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 3, 3, 1]);
    }

    /// Padded cost of a batch order: each batch costs its size times its longest text.
    fn padded_tokens(batches: &[Vec<usize>], lengths: &[usize]) -> usize {
        batches.iter().map(|b| b.len() * b.iter().map(|&i| lengths[i]).max().unwrap()).sum()
    }

    #[test]
    fn length_buckets_cut_padding_and_keep_a_seeded_permutation() {
        // Lengths like meme texts: mostly short, a long tail.
        let lengths: Vec<usize> = (0..1000).map(|i| 3 + (i * 7919) % 40 + (i % 23) * 4).collect();
        let bucketed = epoch_order(1000, 32, 5, 1, Some(&lengths));
        assert_eq!(bucketed, epoch_order(1000, 32, 5, 1, Some(&lengths)));
        assert_ne!(bucketed, epoch_order(1000, 32, 5, 2, Some(&lengths)));
        let mut all: Vec<usize> = bucketed.concat();
        all.sort();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert!(bucketed.iter().all(|b| !b.is_empty() && b.len() <= 32));

        let random = padded_tokens(&epoch_order(1000, 32, 5, 1, None), &lengths);
        let real: usize = lengths.iter().sum();
        let bucketed = padded_tokens(&bucketed, &lengths);
        assert!(bucketed * 10 < random * 8, "bucketed {bucketed} vs random {random}");
        assert!(bucketed * 10 < real * 13, "bucketed {bucketed} vs real {real}");
        // The batches' order is shuffled, not sorted by length from short to long.
        let firsts: Vec<usize> =
            epoch_order(1000, 32, 5, 1, Some(&lengths)).iter().map(|b| lengths[b[0]]).collect();
        assert!(firsts.windows(2).any(|w| w[0] > w[1]));
    }

    #[test]
    fn length_sorted_batches_cover_every_sample_once() {
        let lengths = [5, 1, 4, 2, 3];
        let batches = length_sorted_batches(5, 2, Some(&lengths));
        assert_eq!(batches, vec![vec![1, 3], vec![4, 2], vec![0]]);
        assert_eq!(length_sorted_batches(3, 2, None), vec![vec![0, 1], vec![2]]);
    }

    #[test]
    fn multi_hot_targets() {
        let targets =
            Targets { multi_label: true, num_labels: 3, labels: vec![vec![0, 2], vec![]] };
        let t = targets.tensor(&[1, 0], &Device::Cpu).unwrap();
        assert_eq!(t.to_vec2::<f32>().unwrap(), vec![vec![0., 0., 0.], vec![1., 0., 1.]]);
    }
}
