//! Reproducible weight initialisation.
//!
//! candle's CPU random generator cannot be seeded, so a plain `VarBuilder::from_varmap`
//! gives different weights on every run. [`SeededVarMap`] is a drop-in backend that creates
//! each new variable from a `StdRng` seeded by the run seed *and the variable's name*, so the
//! weights depend neither on the process nor on the order in which modules are built
//! (adding a module to the model does not reshuffle the others' initial weights).
//!
//! ```ignore
//! let varmap = VarMap::new();
//! let backend = SeededVarMap::new(varmap.clone(), seed);
//! let vb = VarBuilder::from_backend(Box::new(backend), DType::F32, device.clone());
//! ```

use candle_core::{DType, Device, Result, Shape, Tensor, Var};
use candle_nn::init::NormalOrUniform;
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarMap};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A [`VarMap`] whose new variables are initialised from a seeded RNG.
#[derive(Clone)]
pub struct SeededVarMap {
    varmap: VarMap,
    seed: u64,
}

impl SeededVarMap {
    /// Variables are created in (and stay in) `varmap`, so the optimiser and checkpointing
    /// keep using it as usual.
    pub fn new(varmap: VarMap, seed: u64) -> Self {
        Self { varmap, seed }
    }

    /// The RNG of one variable: the run seed mixed with a stable hash of the name.
    fn rng_for(&self, name: &str) -> StdRng {
        StdRng::seed_from_u64(self.seed ^ fnv1a(name.as_bytes()))
    }
}

impl SimpleBackend for SeededVarMap {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        init: Init,
        dtype: DType,
        dev: &Device,
    ) -> Result<Tensor> {
        let mut vars = self.varmap.data().lock().expect("VarMap lock poisoned");
        if let Some(existing) = vars.get(name) {
            if existing.shape() != &shape {
                candle_core::bail!("shape mismatch on {name}: {shape:?} <> {:?}", existing.shape());
            }
            return Ok(existing.as_tensor().clone());
        }
        let values = sample(&init, &shape, &mut self.rng_for(name));
        let tensor =
            Tensor::from_vec(values, shape, &Device::Cpu)?.to_dtype(dtype)?.to_device(dev)?;
        let var = Var::from_tensor(&tensor)?;
        let tensor = var.as_tensor().clone();
        vars.insert(name.to_string(), var);
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> Result<Tensor> {
        candle_core::bail!("`{name}`: a SeededVarMap creates variables, it needs their shape")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.varmap.data().lock().expect("VarMap lock poisoned").contains_key(name)
    }
}

/// Draws `shape.elem_count()` values as `candle_nn::Init::var` would, from `rng`.
fn sample(init: &Init, shape: &Shape, rng: &mut StdRng) -> Vec<f32> {
    let count = shape.elem_count();
    match *init {
        Init::Const(value) => vec![value as f32; count],
        Init::Uniform { lo, up } => uniform(rng, lo, up, count),
        Init::Randn { mean, stdev } => normal(rng, mean, stdev, count),
        Init::Kaiming { dist, fan, non_linearity } => {
            let std = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
            match dist {
                NormalOrUniform::Uniform => {
                    let bound = 3f64.sqrt() * std;
                    uniform(rng, -bound, bound, count)
                }
                NormalOrUniform::Normal => normal(rng, 0.0, std, count),
            }
        }
    }
}

fn uniform(rng: &mut StdRng, lo: f64, up: f64, count: usize) -> Vec<f32> {
    (0..count).map(|_| (lo + (up - lo) * rng.random::<f64>()) as f32).collect()
}

/// Box–Muller: `rand` 0.9 has no normal distribution without the `rand_distr` crate.
fn normal(rng: &mut StdRng, mean: f64, stdev: f64, count: usize) -> Vec<f32> {
    (0..count)
        .map(|_| {
            // 1 - u lies in (0, 1], so the logarithm is finite.
            let u1 = 1.0 - rng.random::<f64>();
            let u2 = rng.random::<f64>();
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            (mean + stdev * z) as f32
        })
        .collect()
}

/// 64-bit FNV-1a: a stable (unlike `DefaultHasher`, which may change between Rust releases)
/// hash of a variable name.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::VarBuilder;

    fn build(seed: u64) -> VarMap {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_backend(
            Box::new(SeededVarMap::new(varmap.clone(), seed)),
            DType::F32,
            Device::Cpu,
        );
        candle_nn::linear(8, 4, vb.pp("a")).unwrap();
        vb.get_with_hints((3, 5), "n", Init::Randn { mean: 1.0, stdev: 2.0 }).unwrap();
        vb.get_with_hints(7, "c", Init::Const(0.5)).unwrap();
        varmap
    }

    fn values(varmap: &VarMap, name: &str) -> Vec<f32> {
        let vars = varmap.data().lock().unwrap();
        vars[name].as_tensor().flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn same_seed_gives_identical_weights_and_other_seeds_differ() {
        let (a, b, c) = (build(7), build(7), build(8));
        for name in ["a.weight", "a.bias", "n", "c"] {
            assert_eq!(values(&a, name), values(&b, name), "{name}");
        }
        assert_ne!(values(&a, "a.weight"), values(&c, "a.weight"));
        assert_ne!(values(&a, "n"), values(&c, "n"));
        // Different names under one seed get different streams.
        assert_ne!(values(&a, "a.weight")[..4], values(&a, "a.bias")[..4]);
    }

    #[test]
    fn samples_follow_the_requested_init() {
        let varmap = build(1);
        assert!(values(&varmap, "c").iter().all(|&v| v == 0.5));
        // Kaiming normal for an 8-input linear layer: std = sqrt(2) / sqrt(8) = 0.5.
        // Bias: uniform in ±1/sqrt(8).
        let bound = 1.0 / 8f32.sqrt();
        assert!(values(&varmap, "a.bias").iter().all(|v| v.abs() <= bound));
        let mut rng = StdRng::seed_from_u64(3);
        let draws = normal(&mut rng, 1.0, 2.0, 20_000);
        let mean = draws.iter().sum::<f32>() / draws.len() as f32;
        let var = draws.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / draws.len() as f32;
        assert!((mean - 1.0).abs() < 0.05, "mean {mean}");
        assert!((var.sqrt() - 2.0).abs() < 0.05, "std {}", var.sqrt());
    }

    #[test]
    fn existing_variables_are_reused_and_shapes_checked() {
        let varmap = build(1);
        let vb = VarBuilder::from_backend(
            Box::new(SeededVarMap::new(varmap.clone(), 99)),
            DType::F32,
            Device::Cpu,
        );
        let before = values(&varmap, "n");
        let again = vb.get_with_hints((3, 5), "n", Init::Const(0.0)).unwrap();
        assert_eq!(again.flatten_all().unwrap().to_vec1::<f32>().unwrap(), before);
        assert!(vb.get_with_hints((5, 3), "n", Init::Const(0.0)).is_err());
    }
}
