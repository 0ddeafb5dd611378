//! Scoring a model on a set of samples: probabilities, decisions, metrics, gate usage and
//! the misclassified samples the dashboard's error browser shows.

use std::path::PathBuf;

use anyhow::Result;
use candle_core::{Device, Tensor};
use rayon::prelude::*;

use super::batches::{batch, inputs, length_sorted_batches, Targets};
use crate::data::{LabelSpace, Sample};
use crate::events::{GateUsage, Misclassified};
use crate::features::Features;
use crate::metrics::{best_thresholds, multi_label_metrics, single_label_metrics, Metrics};
use crate::model::FusionModel;
use crate::runs::Prediction;

/// The model's outputs on every labelled sample, in order, as validation needs them.
#[derive(Debug, Clone)]
pub struct ValidationOutputs {
    pub probabilities: Vec<Vec<f32>>,
    /// Per-sample gate weights when the mixture of experts is on.
    pub gates: Option<Vec<Vec<f32>>>,
    /// Mean classification-plus-auxiliary loss over the samples.
    pub loss: f32,
}

/// Probabilities, gate weights and the loss of `model` on labelled `features`.
pub fn validation_outputs(
    model: &FusionModel,
    features: &Features,
    targets: &Targets,
    batch_size: usize,
    device: &Device,
) -> Result<ValidationOutputs> {
    let chunks = evaluation_batches(features, batch_size);
    let outputs = each_batch(&chunks, device, |chunk| {
        let batch = batch(features, targets, chunk, device)?;
        let output = model.forward(&batch, false)?;
        let loss = model.loss(&output, &batch)?.total.to_scalar::<f32>()?;
        Ok((loss, model.probabilities(&output.logits)?, output.gates))
    })?;
    let mut probabilities = vec![Vec::new(); features.len()];
    let mut gates: Option<Vec<Vec<f32>>> = None;
    let mut loss_sum = 0.0;
    for (chunk, (loss, batch_probabilities, batch_gates)) in chunks.iter().zip(outputs) {
        loss_sum += loss * chunk.len() as f32;
        scatter(&mut probabilities, chunk, &batch_probabilities)?;
        if let Some(g) = &batch_gates {
            let all = gates.get_or_insert_with(|| vec![Vec::new(); features.len()]);
            scatter(all, chunk, g)?;
        }
    }
    Ok(ValidationOutputs { probabilities, gates, loss: loss_sum / features.len().max(1) as f32 })
}

/// The model's per-label probabilities for every sample, in order, without needing labels.
pub fn probabilities(
    model: &FusionModel,
    features: &Features,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<Vec<f32>>> {
    let chunks = evaluation_batches(features, batch_size);
    let outputs = each_batch(&chunks, device, |chunk| {
        let output = model.forward(&inputs(features, chunk, device)?, false)?;
        Ok(model.probabilities(&output.logits)?)
    })?;
    let mut probabilities = vec![Vec::new(); features.len()];
    for (chunk, batch_probabilities) in chunks.iter().zip(outputs) {
        scatter(&mut probabilities, chunk, &batch_probabilities)?;
    }
    Ok(probabilities)
}

/// `f` of every batch, in order. On the CPU the batches run on rayon's threads (candle runs
/// all but its matrix products on the calling thread, so one batch at a time leaves cores
/// idle); each batch's result is the same either way.
fn each_batch<T: Send>(
    chunks: &[Vec<usize>],
    device: &Device,
    f: impl Fn(&[usize]) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    if device.is_cpu() {
        chunks.par_iter().map(|chunk| f(chunk)).collect()
    } else {
        chunks.iter().map(|chunk| f(chunk)).collect()
    }
}

/// Every sample once; by length when fine-tuned layers pad each batch to its longest text.
fn evaluation_batches(features: &Features, batch_size: usize) -> Vec<Vec<usize>> {
    let lengths = features.tokens.as_ref().map(|t| t.lengths());
    length_sorted_batches(features.len(), batch_size, lengths.as_deref())
}

/// Puts the `(indices.len(), n)` rows computed for the samples at `indices` back in
/// sample order.
fn scatter(out: &mut [Vec<f32>], indices: &[usize], rows: &Tensor) -> Result<()> {
    let rows = rows.to_device(&Device::Cpu)?.to_vec2::<f32>()?;
    for (&i, row) in indices.iter().zip(rows) {
        out[i] = row;
    }
    Ok(())
}

/// Label decisions: argmax for single-label, per-class thresholds (0.5 default) for multi-label.
pub fn decide(
    probabilities: &[Vec<f32>],
    multi_label: bool,
    thresholds: Option<&[f32]>,
) -> Vec<Vec<usize>> {
    probabilities
        .iter()
        .map(|p| {
            if multi_label {
                (0..p.len()).filter(|&c| p[c] >= thresholds.map_or(0.5, |t| t[c])).collect()
            } else {
                vec![argmax(p)]
            }
        })
        .collect()
}

fn argmax(values: &[f32]) -> usize {
    values.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap_or(0)
}

pub fn score(space: &LabelSpace, truth: &[Vec<usize>], predicted: &[Vec<usize>]) -> Metrics {
    if space.multi_label {
        let (truth, predicted) = (multi_hot(truth, space.len()), multi_hot(predicted, space.len()));
        multi_label_metrics(&space.labels, &truth, &predicted)
    } else {
        let first = |sets: &[Vec<usize>]| -> Vec<usize> { sets.iter().map(|s| s[0]).collect() };
        single_label_metrics(&space.labels, &first(truth), &first(predicted))
    }
}

/// Multi-label: the per-class decision thresholds a run chooses on its validation samples
/// (each label's best F1 there), from their probabilities and true label sets.
pub fn validation_thresholds(
    probabilities: &[Vec<f32>],
    truth: &[Vec<usize>],
    num_labels: usize,
) -> Vec<f32> {
    best_thresholds(probabilities, &multi_hot(truth, num_labels))
}

/// Label index sets as one bool per label.
fn multi_hot(sets: &[Vec<usize>], num_labels: usize) -> Vec<Vec<bool>> {
    sets.iter().map(|set| (0..num_labels).map(|c| set.contains(&c)).collect()).collect()
}

/// One prediction per sample, in order, for `predictions.jsonl`.
pub fn predictions(
    labels: &[String],
    samples: &[Sample],
    probabilities: &[Vec<f32>],
    predicted: &[Vec<usize>],
) -> Vec<Prediction> {
    samples
        .iter()
        .zip(probabilities.iter().zip(predicted))
        .map(|(sample, (p, decided))| {
            Prediction::new(labels, &sample.sample_id, &sample.labels, decided, p)
        })
        .collect()
}

/// Mean gate weight per expert, and per true class.
pub fn gate_usage(gates: &[Vec<f32>], truth: &[Vec<usize>], num_classes: usize) -> GateUsage {
    let experts = gates.first().map_or(0, Vec::len);
    let mean = |rows: Vec<&Vec<f32>>| -> Vec<f32> {
        let n = rows.len().max(1) as f32;
        (0..experts).map(|e| rows.iter().map(|r| r[e]).sum::<f32>() / n).collect()
    };
    GateUsage {
        per_expert: mean(gates.iter().collect()),
        per_class: (0..num_classes)
            .map(|c| {
                mean(
                    gates
                        .iter()
                        .zip(truth)
                        .filter(|(_, t)| t.contains(&c))
                        .map(|(g, _)| g)
                        .collect(),
                )
            })
            .collect(),
    }
}

/// The samples whose decided label set differs from the truth, most confident first.
pub fn misclassified(
    samples: &[Sample],
    images: &[Option<PathBuf>],
    probabilities: &[Vec<f32>],
    predicted: &[Vec<usize>],
    limit: usize,
) -> Vec<Misclassified> {
    let mut wrong: Vec<(f32, Misclassified)> = samples
        .iter()
        .enumerate()
        .filter(|(i, sample)| {
            let mut truth = sample.labels.clone();
            truth.sort_unstable();
            truth != predicted[*i]
        })
        .map(|(i, sample)| {
            let confidence =
                predicted[i].iter().map(|&c| probabilities[i][c]).fold(0.0f32, f32::max);
            let reasoning = Some(sample.reasoning.joined()).filter(|r| !r.is_empty());
            (
                confidence,
                Misclassified {
                    sample_id: sample.sample_id.clone(),
                    text: sample.ocr_text.clone(),
                    reasoning,
                    image: images.get(i).cloned().flatten(),
                    truth: sample.labels.clone(),
                    predicted: predicted[i].clone(),
                    probabilities: probabilities[i].clone(),
                },
            )
        })
        .collect();
    wrong.sort_by(|a, b| b.0.total_cmp(&a.0));
    wrong.into_iter().take(limit).map(|(_, m)| m).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_follow_argmax_and_thresholds() {
        let probs = vec![vec![0.1, 0.7, 0.2], vec![0.6, 0.3, 0.55]];
        assert_eq!(decide(&probs, false, None), vec![vec![1], vec![0]]);
        assert_eq!(decide(&probs, true, None), vec![vec![1], vec![0, 2]]);
        assert_eq!(decide(&probs, true, Some(&[0.7, 0.2, 0.9])), vec![vec![1], vec![1]]);
    }

    #[test]
    fn gate_usage_per_class() {
        let gates = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.5, 0.5]];
        let truth = vec![vec![0], vec![1], vec![0]];
        let usage = gate_usage(&gates, &truth, 3);
        assert_eq!(usage.per_expert, vec![0.5, 0.5]);
        assert_eq!(usage.per_class[0], vec![0.75, 0.25]);
        assert_eq!(usage.per_class[1], vec![0.0, 1.0]);
        assert_eq!(usage.per_class[2], vec![0.0, 0.0], "a class with no samples");
    }
}
