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
pub fn epoch_order(n: usize, batch_size: usize, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng =
        rand::rngs::StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
    order.shuffle(&mut rng);
    order.chunks(batch_size).map(<[usize]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_orders_are_seeded_permutations() {
        let a = epoch_order(10, 3, 7, 1);
        assert_eq!(a, epoch_order(10, 3, 7, 1));
        assert_ne!(a, epoch_order(10, 3, 7, 2));
        let mut all: Vec<usize> = a.concat();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(a.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 3, 3, 1]);
    }

    #[test]
    fn multi_hot_targets() {
        let targets =
            Targets { multi_label: true, num_labels: 3, labels: vec![vec![0, 2], vec![]] };
        let t = targets.tensor(&[1, 0], &Device::Cpu).unwrap();
        assert_eq!(t.to_vec2::<f32>().unwrap(), vec![vec![0., 0., 0.], vec![1., 0., 1.]]);
    }
}
