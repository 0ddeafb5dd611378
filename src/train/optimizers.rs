//! The optimisation step's parts that know about parameter groups: one AdamW per learning
//! rate, and gradient clipping by one global norm.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use candle_nn::{Optimizer, ParamsAdamW, VarMap};

use super::adamw::FusedAdamW;
use crate::config::TrainConfig;
use crate::model::{LEXICAL, TEXT_TOP};
use crate::runs::OptimizerState;

/// One AdamW per parameter group, each at its own rate: the fusion head at `train.lr`, the
/// fine-tuned text-encoder layers at `train.encoder_lr` (pretrained weights need far smaller
/// steps than fresh ones), and the lexical expert at `train.lexical_lr` (a linear model over
/// sparse n-grams, which at the head's rate stays far from the solution a logistic
/// regression reaches, within the few epochs the dense head needs). All follow the same
/// schedule; gradients are clipped by one global norm before any step.
pub struct Optimizers {
    /// Each group's optimizer and its rate relative to `train.lr`.
    groups: Vec<(FusedAdamW, f64)>,
    /// Each group's variable names, in the order its optimizer holds them.
    names: Vec<Vec<String>>,
}

impl Optimizers {
    pub fn new(varmap: &VarMap, train: &TrainConfig) -> Result<Self> {
        let mut by_rate: Vec<(f64, Vec<String>, Vec<Var>)> = Vec::new();
        let data = varmap.data().lock().expect("VarMap lock poisoned");
        // By name, so that the groups' order (and a checkpoint's) never depends on hashing.
        let mut named: Vec<(&String, &Var)> =
            data.iter().filter(|(_, var)| var.dtype().is_float()).collect();
        named.sort_by(|a, b| a.0.cmp(b.0));
        for (name, var) in named {
            let lr = learning_rate_of(name, train);
            match by_rate.iter_mut().find(|(rate, _, _)| *rate == lr) {
                Some((_, names, vars)) => {
                    names.push(name.clone());
                    vars.push(var.clone());
                }
                None => by_rate.push((lr, vec![name.clone()], vec![var.clone()])),
            }
        }
        let (mut groups, mut names) = (Vec::new(), Vec::new());
        for (lr, group_names, vars) in by_rate {
            let params = ParamsAdamW { lr, weight_decay: train.weight_decay, ..Default::default() };
            let ratio = if train.lr > 0.0 { lr / train.lr } else { 0.0 };
            groups.push((FusedAdamW::new(vars, params)?, ratio));
            names.push(group_names);
        }
        Ok(Self { groups, names })
    }

    /// The step count and every variable's moments, by variable name.
    pub fn state(&self) -> Result<OptimizerState> {
        let mut state = OptimizerState { step: 0, moments: BTreeMap::new() };
        for ((optimizer, _), names) in self.groups.iter().zip(&self.names) {
            let (step, moments) = optimizer.moments()?;
            state.step = step;
            state.moments.extend(names.iter().cloned().zip(moments));
        }
        Ok(state)
    }

    /// Continues from a saved [`Optimizers::state`] of the same model.
    pub fn restore(&mut self, state: &OptimizerState) -> Result<()> {
        for ((optimizer, _), names) in self.groups.iter_mut().zip(&self.names) {
            let moments = names
                .iter()
                .map(|name| {
                    state.moments.get(name).cloned().with_context(|| {
                        format!("the checkpoint has no optimizer moments for {name}")
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            optimizer.restore(state.step, moments)?;
        }
        Ok(())
    }

    /// `lr` is the head's current rate.
    pub fn set_learning_rate(&mut self, lr: f64) {
        for (optimizer, ratio) in &mut self.groups {
            optimizer.set_learning_rate(lr * *ratio);
        }
    }

    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        for (optimizer, _) in &mut self.groups {
            optimizer.step(grads)?;
        }
        Ok(())
    }
}

/// The base learning rate of the variable called `name`: the fine-tuned encoder layers'
/// (`text_top.…`), every ensemble member's lexical expert (`lexical.…`, `member2.lexical.…`),
/// or the head's.
fn learning_rate_of(name: &str, train: &TrainConfig) -> f64 {
    if name.split('.').next() == Some(TEXT_TOP) {
        train.encoder_lr
    } else if name.split('.').any(|part| part == LEXICAL) {
        train.lexical_lr
    } else {
        train.lr
    }
}

/// Scales all gradients so that their global L2 norm is at most `max_norm`.
pub fn clip_gradients(grads: &mut GradStore, vars: &[Var], max_norm: f64) -> Result<()> {
    if max_norm <= 0.0 {
        return Ok(());
    }
    // Each gradient's sum of squares in f32, added up in f64 in variable order, where the
    // gradients are: one read back to the host per step (on a GPU, one wait for the
    // step's kernels), not one per variable.
    let mut total: Option<Tensor> = None;
    for var in vars {
        if let Some(grad) = grads.get(var) {
            let squares = grad.sqr()?.sum_all()?.to_dtype(DType::F32)?.to_dtype(DType::F64)?;
            total = Some(match total {
                Some(total) => (total + squares)?,
                None => squares,
            });
        }
    }
    let Some(total) = total else { return Ok(()) };
    let norm = total.to_scalar::<f64>()?.sqrt();
    if norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for var in vars {
            if let Some(grad) = grads.remove(var) {
                grads.insert(var, (grad * scale)?);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The global norm is every gradient's sum of squares (f32) added in f64; above
    /// `max_norm` every gradient is scaled by `max_norm / (norm + 1e-6)`, below it none is.
    #[test]
    fn gradients_are_scaled_to_the_global_norm() -> Result<()> {
        let device = candle_core::Device::Cpu;
        let vars = [
            Var::from_tensor(&Tensor::new(&[3f32, 4.0], &device)?)?,
            Var::from_tensor(&Tensor::new(&[[1f32, 2.0], [2.0, 4.0]], &device)?)?,
            Var::from_tensor(&Tensor::new(&[7f32], &device)?)?,
        ];
        // Gradients 2·x of the first two; the third takes no part in the loss.
        let loss =
            (vars[0].as_tensor().sqr()?.sum_all()? + vars[1].as_tensor().sqr()?.sum_all()?)?;
        let values = |grads: &GradStore, var: &Var| -> Result<Vec<f32>> {
            Ok(grads.get(var).expect("a gradient").flatten_all()?.to_vec1()?)
        };
        let norm = (4.0f64 * (9.0 + 16.0 + 1.0 + 4.0 + 4.0 + 16.0)).sqrt(); // √200
        let mut grads = loss.backward()?;
        clip_gradients(&mut grads, &vars, 20.0)?;
        assert_eq!(values(&grads, &vars[0])?, [6.0, 8.0], "under the limit: unchanged");
        let mut grads = loss.backward()?;
        clip_gradients(&mut grads, &vars, 1.0)?;
        let scale = 1.0 / (norm + 1e-6);
        let expected: Vec<f32> = [6f64, 8.0].iter().map(|g| (g * scale) as f32).collect();
        assert_eq!(values(&grads, &vars[0])?, expected);
        let clipped: f64 = [&vars[0], &vars[1]]
            .iter()
            .flat_map(|v| values(&grads, v).unwrap())
            .map(|g| f64::from(g) * f64::from(g))
            .sum();
        assert!((clipped.sqrt() - 1.0).abs() < 1e-5, "{}", clipped.sqrt());
        assert!(grads.get(&vars[2]).is_none());
        Ok(())
    }

    #[test]
    fn each_variable_trains_at_its_groups_rate() {
        let train =
            TrainConfig { lr: 1e-3, encoder_lr: 5e-5, lexical_lr: 3e-2, ..Default::default() };
        for (name, lr) in [
            ("text_top.0.attention.query.weight", 5e-5),
            ("lexical.weight", 3e-2),
            ("member2.lexical.weight", 3e-2),
            ("classifier.head.weight", 1e-3),
            ("member1.classifier.head.weight", 1e-3),
            ("text_projection.0.weight", 1e-3),
        ] {
            assert_eq!(learning_rate_of(name, &train), lr, "{name}");
        }
    }
}
