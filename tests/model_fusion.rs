//! The fusion classifier on synthetic cached features: gradient flow through every
//! variable, masking of missing images, reproducibility, and that it actually learns.

use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use memescope::config::{Ablation, ModelConfig};
use memescope::features::LexicalSpec;
use memescope::model::{seeded_var_builder, Batch, FeatureDims, FusionModel};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TEXT: (usize, usize) = (2, 16);
const IMAGE: (usize, usize) = (3, 12);

fn tiny_config() -> ModelConfig {
    ModelConfig {
        fusion_dim: 32,
        heads: 4,
        experts: 3,
        dropout: 0.1,
        classifier_layers: 1,
        ..ModelConfig::default()
    }
}

fn both_streams() -> FeatureDims {
    FeatureDims { text: Some(TEXT), image: Some(IMAGE) }
}

fn build(
    ablation: &Ablation,
    dims: FeatureDims,
    labels: usize,
    multi_label: bool,
    seed: u64,
) -> (VarMap, FusionModel) {
    build_with(&tiny_config(), ablation, dims, labels, multi_label, seed)
}

fn build_with(
    config: &ModelConfig,
    ablation: &Ablation,
    dims: FeatureDims,
    labels: usize,
    multi_label: bool,
    seed: u64,
) -> (VarMap, FusionModel) {
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, seed, &Device::Cpu);
    let model = FusionModel::new(vb, config, ablation, dims, labels, multi_label, seed)
        .expect("the model builds");
    (varmap, model)
}

fn gaussian(rng: &mut StdRng) -> f32 {
    let (u1, u2) = (1.0 - rng.random::<f32>(), rng.random::<f32>());
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
}

fn gaussians(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| gaussian(rng)).collect()
}

/// A learnable synthetic task: every label has a text and an image prototype (per layer);
/// a sample's features are the sum of its labels' prototypes plus noise. About one sample
/// in five has no image, and its image features are garbage.
struct Synthetic {
    text_prototypes: Vec<Vec<f32>>,
    image_prototypes: Vec<Vec<f32>>,
    labels: usize,
}

struct Samples {
    text: Vec<f32>,
    image: Vec<f32>,
    mask: Vec<f32>,
    /// Each sample's labels (exactly one for single-label).
    truth: Vec<Vec<usize>>,
}

impl Synthetic {
    fn new(labels: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let text_prototypes = (0..labels).map(|_| gaussians(&mut rng, TEXT.0 * TEXT.1)).collect();
        let image_prototypes =
            (0..labels).map(|_| gaussians(&mut rng, IMAGE.0 * IMAGE.1)).collect();
        Self { text_prototypes, image_prototypes, labels }
    }

    fn samples(&self, n: usize, multi_label: bool, seed: u64) -> Samples {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut samples = Samples { text: vec![], image: vec![], mask: vec![], truth: vec![] };
        for i in 0..n {
            let truth: Vec<usize> = if multi_label {
                let mut set: Vec<usize> =
                    (0..self.labels).filter(|_| rng.random::<f32>() < 0.25).collect();
                if set.is_empty() {
                    set.push(rng.random_range(0..self.labels));
                }
                set
            } else {
                vec![i % self.labels]
            };
            let has_image = rng.random::<f32>() > 0.2;
            let mix = |prototypes: &[Vec<f32>], rng: &mut StdRng| -> Vec<f32> {
                let mut v = gaussians(rng, prototypes[0].len()).iter().map(|x| 0.7 * x).collect();
                for &label in &truth {
                    v = prototypes[label].iter().zip(&v).map(|(p, x)| p + x).collect();
                }
                v
            };
            samples.text.extend(mix(&self.text_prototypes, &mut rng));
            if has_image {
                samples.image.extend(mix(&self.image_prototypes, &mut rng));
            } else {
                samples
                    .image
                    .extend(gaussians(&mut rng, IMAGE.0 * IMAGE.1).iter().map(|x| 50.0 * x));
            }
            samples.mask.push(if has_image { 1.0 } else { 0.0 });
            samples.truth.push(truth);
        }
        samples
    }
}

impl Samples {
    fn len(&self) -> usize {
        self.mask.len()
    }

    fn batch(&self, rows: std::ops::Range<usize>, labels: usize, multi_label: bool) -> Batch {
        let n = rows.len();
        let slice = |v: &[f32], width: usize| v[rows.start * width..rows.end * width].to_vec();
        let text =
            Tensor::from_vec(slice(&self.text, TEXT.0 * TEXT.1), (n, TEXT.0, TEXT.1), &Device::Cpu);
        let image = Tensor::from_vec(
            slice(&self.image, IMAGE.0 * IMAGE.1),
            (n, IMAGE.0, IMAGE.1),
            &Device::Cpu,
        );
        let mask = Tensor::from_vec(self.mask[rows.clone()].to_vec(), n, &Device::Cpu);
        let targets = if multi_label {
            let mut hot = vec![0f32; n * labels];
            for (row, truth) in self.truth[rows].iter().enumerate() {
                for &label in truth {
                    hot[row * labels + label] = 1.0;
                }
            }
            Tensor::from_vec(hot, (n, labels), &Device::Cpu)
        } else {
            let ids: Vec<u32> = self.truth[rows].iter().map(|t| t[0] as u32).collect();
            Tensor::from_vec(ids, n, &Device::Cpu)
        };
        Batch {
            text: Some(text.unwrap()),
            text_tokens: None,
            image: Some(image.unwrap()),
            image_mask: Some(mask.unwrap()),
            lexical: None,
            targets: Some(targets.unwrap()),
        }
    }
}

fn without_text(mut batch: Batch) -> Batch {
    batch.text = None;
    batch
}

/// One forward + loss + backward; returns the variables with no or an all-zero gradient.
/// Variables and their gradients must be f32 whatever dtype the model computes in.
fn variables_without_gradient(varmap: &VarMap, model: &FusionModel, batch: &Batch) -> Vec<String> {
    let output = model.forward(batch, true).unwrap();
    let loss = model.loss(&output, batch).unwrap();
    let grads = loss.total.backward().unwrap();
    let vars = varmap.data().lock().unwrap();
    assert!(!vars.is_empty(), "the model created no variables");
    for (name, var) in vars.iter() {
        assert_eq!(var.dtype(), DType::F32, "variable {name}");
        if let Some(grad) = grads.get(var.as_tensor()) {
            assert_eq!(grad.dtype(), DType::F32, "gradient of {name}");
        }
    }
    let mut missing: Vec<String> = vars
        .iter()
        .filter(|(_, var)| {
            let norm = grads
                .get(var.as_tensor())
                .map(|g| g.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap());
            !matches!(norm, Some(n) if n > 0.0 && n.is_finite())
        })
        .map(|(name, _)| name.clone())
        .collect();
    missing.sort();
    missing
}

/// The training step (`FusionModel::loss_and_gradients`: members on their own threads, the
/// fine-tuned text layers cut into shards of the batch) gives the loss and every variable's
/// gradient of one forward and backward over the whole model and batch.
fn assert_training_step_matches_one_backward(
    varmap: &VarMap,
    model: &FusionModel,
    batch: &Batch,
    tolerance: f32,
) {
    model.reseed_dropout(7);
    let whole = model.loss(&model.forward(batch, true).unwrap(), batch).unwrap();
    let whole_grads = whole.total.backward().unwrap();
    model.reseed_dropout(7);
    let (step, step_grads) = model.loss_and_gradients(batch).unwrap();

    let close = |a: f32, b: f32| (a - b).abs() <= tolerance * a.abs().max(1e-3);
    let total = whole.total.to_scalar::<f32>().unwrap();
    assert!(close(total, step.total), "loss {total} vs {}", step.total);
    assert_eq!(whole.components.len(), step.components.len());
    for ((name, value), (step_name, step_value)) in whole.components.iter().zip(&step.components) {
        let value = value.to_scalar::<f32>().unwrap();
        assert_eq!(name, step_name);
        assert!(close(value, *step_value), "{name}: {value} vs {step_value}");
    }
    for (name, var) in varmap.data().lock().unwrap().iter() {
        let values = |grads: &candle_core::backprop::GradStore| -> Vec<f32> {
            let grad = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("no gradient: {name}"));
            grad.flatten_all().unwrap().to_vec1().unwrap()
        };
        let (expected, got) = (values(&whole_grads), values(&step_grads));
        // A floor for variables whose true gradient is zero (a key bias shifts every score
        // of a query alike, which softmax ignores): theirs is rounding noise.
        let scale = expected.iter().fold(0f32, |m, g| m.max(g.abs())).max(1e-3);
        let worst = expected.iter().zip(&got).fold(0f32, |m, (e, g)| m.max((e - g).abs()));
        assert!(worst <= tolerance * scale, "{name}: off by {worst} (largest gradient {scale})");
    }
}

fn assert_every_variable_learns(
    name: &str,
    ablation: Ablation,
    dims: FeatureDims,
    multi_label: bool,
) {
    assert_every_variable_learns_with(&tiny_config(), name, ablation, dims, multi_label)
}

fn assert_every_variable_learns_with(
    config: &ModelConfig,
    name: &str,
    ablation: Ablation,
    dims: FeatureDims,
    multi_label: bool,
) {
    let labels = if multi_label { 7 } else { 6 };
    let (varmap, model) = build_with(config, &ablation, dims, labels, multi_label, 5);
    let data = Synthetic::new(labels, 1).samples(24, multi_label, 2);
    let mut batch = data.batch(0..24, labels, multi_label);
    if dims.text.is_none() {
        batch = without_text(batch);
    }
    let missing = variables_without_gradient(&varmap, &model, &batch);
    assert!(
        missing.is_empty(),
        "{name}: {} of {} variables got no gradient: {missing:?}",
        missing.len(),
        varmap.all_vars().len()
    );
}

#[test]
fn every_variable_gets_a_gradient_in_the_full_model() {
    assert_every_variable_learns("full, single-label", Ablation::default(), both_streams(), false);
    assert_every_variable_learns("full, multi-label", Ablation::default(), both_streams(), true);
}

/// A model whose text stream comes from the top layers of a tiny random BERT, fine-tuned
/// from token states: every variable, each of those layers' included, must get a gradient
/// (a fused, backward-less op in the encoder layers would leave them all without one).
#[test]
fn every_variable_gets_a_gradient_with_fine_tuned_text_layers() {
    // 8 weight/bias pairs per layer; MPNet's layers also share a relative-position bias.
    check_fine_tuned_text_layers_get_gradients(memescope::testing::write_tiny_bert, 0, DType::F32);
    check_fine_tuned_text_layers_get_gradients(memescope::testing::write_tiny_mpnet, 1, DType::F32);
}

/// The same under mixed precision: the fine-tuned layers compute in bfloat16 from f32
/// weights (MPNet's relative-position bias included) and still all learn.
#[test]
fn fine_tuned_text_layers_learn_in_mixed_precision() {
    check_fine_tuned_text_layers_get_gradients(memescope::testing::write_tiny_bert, 0, DType::BF16);
    check_fine_tuned_text_layers_get_gradients(
        memescope::testing::write_tiny_mpnet,
        1,
        DType::BF16,
    );
}

fn check_fine_tuned_text_layers_get_gradients(
    write: fn(&std::path::Path) -> anyhow::Result<()>,
    shared_vars: usize,
    compute: DType,
) {
    use memescope::config::Pooling;
    use memescope::model::{TextTop, TokenBatch};
    use memescope::testing::{TINY_HIDDEN, TINY_LAYERS};

    let dir = tempfile::tempdir().unwrap();
    write(dir.path()).unwrap();
    let files = memescope::encoders::resolve_model(dir.path().to_str().unwrap(), true).unwrap();
    // (fine-tuned layers, exposed states, pooling): all layers with the input exposed, or
    // the top one; attention pooling adds a learned scoring vector per exposed state.
    for (finetune, exposed, pooling) in [
        (TINY_LAYERS, TINY_LAYERS + 1, Pooling::Mean),
        (1, 2, Pooling::Mean),
        (1, 2, Pooling::Attention),
    ] {
        let dims = FeatureDims { text: Some((exposed, TINY_HIDDEN)), image: Some(IMAGE) };
        // Two members: the training step runs each on its own thread.
        let config = ModelConfig { ensemble: 2, ..tiny_config() };
        let (varmap, model) = build_with(&config, &Ablation::default(), dims, 6, false, 5);
        let top =
            TextTop::pretrained(&files, finetune, exposed, pooling, &varmap, &Device::Cpu).unwrap();
        let model = model.with_text_top(top).unwrap().with_compute_dtype(compute);
        let count = |prefix: &str| {
            varmap.data().lock().unwrap().keys().filter(|n| n.starts_with(prefix)).count()
        };
        assert_eq!(count("text_top."), 16 * finetune + shared_vars, "fine-tuning {finetune}");
        let pool_vars = if pooling == Pooling::Attention { exposed } else { 0 };
        assert_eq!(count("text_pool."), pool_vars, "{pooling:?}");

        let data = Synthetic::new(6, 1).samples(12, false, 2);
        let mut batch = without_text(data.batch(0..12, 6, false));
        let mut rng = StdRng::seed_from_u64(3);
        let seq = 7;
        let lengths: Vec<usize> = (0..12).map(|i| 3 + i % 5).collect();
        let mask: Vec<u32> =
            lengths.iter().flat_map(|&len| (0..seq).map(move |t| u32::from(t < len))).collect();
        batch.text_tokens = Some(TokenBatch {
            states: Tensor::from_vec(
                gaussians(&mut rng, 12 * seq * TINY_HIDDEN),
                (12, seq, TINY_HIDDEN),
                &Device::Cpu,
            )
            .unwrap(),
            mask: Tensor::from_vec(mask, (12, seq), &Device::Cpu).unwrap(),
        });
        let missing = variables_without_gradient(&varmap, &model, &batch);
        assert!(
            missing.is_empty(),
            "fine-tuning {finetune} ({pooling:?}): no gradient for {missing:?}"
        );
        // bfloat16 rounds the two halves' activations differently from the whole batch's.
        let tolerance = if compute == DType::F32 { 1e-5 } else { 3e-2 };
        assert_training_step_matches_one_backward(&varmap, &model, &batch, tolerance);
        // A batch of one text is one shard.
        let mut single = without_text(data.batch(0..1, 6, false));
        single.text_tokens = Some(batch.text_tokens.as_ref().unwrap().rows(0..1).unwrap());
        assert_training_step_matches_one_backward(&varmap, &model, &single, tolerance);

        // Without token states the model cannot make its text stream.
        let err = model.forward(&without_text(data.batch(0..12, 6, false)), false);
        assert!(err.is_err_and(|e| e.to_string().contains("token states")));
    }
}

/// Mixed precision (`train.precision = "bf16"`, which the trainer turns on for CUDA runs):
/// the layers compute in bfloat16 while the variables stay f32. Every variable still gets a
/// finite, non-zero f32 gradient (checked by `variables_without_gradient`), the outputs are
/// f32, and they agree with the f32 model's to bfloat16's precision — but are not equal to
/// them, which they would be if the switch did nothing.
#[test]
fn mixed_precision_keeps_f32_weights_and_gradients_and_tracks_f32() {
    for multi_label in [false, true] {
        let labels = if multi_label { 7 } else { 6 };
        let (varmap, mixed) = build(&Ablation::default(), both_streams(), labels, multi_label, 5);
        let mixed = mixed.with_compute_dtype(DType::BF16);
        let (_, exact) = build(&Ablation::default(), both_streams(), labels, multi_label, 5);
        let data = Synthetic::new(labels, 1).samples(24, multi_label, 2);
        let batch = data.batch(0..24, labels, multi_label);
        let missing = variables_without_gradient(&varmap, &mixed, &batch);
        assert!(missing.is_empty(), "bf16: no gradient for {missing:?}");

        let (a, b) = (mixed.forward(&batch, false).unwrap(), exact.forward(&batch, false).unwrap());
        for output in [&a.logits, &a.fused_embedding, a.gates.as_ref().unwrap()] {
            assert_eq!(output.dtype(), DType::F32);
        }
        let max_abs = |t: &Tensor| t.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        let diff = max_abs(&(&a.logits - &b.logits).unwrap());
        let scale = max_abs(&b.logits).max(1.0);
        // bfloat16 keeps 8 significant bits (relative rounding 2^-9 per operation); through
        // a dozen layers the logits drift by a few parts in a hundred at most.
        assert!(diff <= 0.05 * scale, "bf16 logits off by {diff} (scale {scale})");
        assert!(diff > 0.0, "bf16 logits equal the f32 ones: the layers did not compute in bf16");
        let loss = |model: &FusionModel, out| {
            model.loss(&out, &batch).unwrap().total.to_scalar::<f32>().unwrap()
        };
        let (mixed_loss, exact_loss) = (loss(&mixed, a), loss(&exact, b));
        assert!(
            (mixed_loss - exact_loss).abs() <= 0.02 * exact_loss,
            "loss {mixed_loss} in bf16, {exact_loss} in f32"
        );
    }
}

#[test]
fn every_variable_gets_a_gradient_under_ablations() {
    let off = |switch: &str| {
        let mut ablation = Ablation::default();
        ablation.set(switch, false).unwrap();
        ablation
    };
    assert_every_variable_learns("text-only", off("image"), both_streams(), false);
    assert_every_variable_learns("no MoE", off("moe"), both_streams(), true);
    assert_every_variable_learns(
        "no cross-attention",
        off("cross_attention"),
        both_streams(),
        false,
    );
    assert_every_variable_learns("no contrastive", off("contrastive"), both_streams(), true);
    let image_only = FeatureDims { text: None, image: Some(IMAGE) };
    assert_every_variable_learns("image-only", Ablation::default(), image_only, false);
    let head_only = ModelConfig { classifier_layers: 0, ..tiny_config() };
    assert_every_variable_learns_with(
        &head_only,
        "no classifier blocks",
        Ablation::default(),
        both_streams(),
        false,
    );
    let two_blocks = ModelConfig { classifier_layers: 2, ..tiny_config() };
    assert_every_variable_learns_with(
        &two_blocks,
        "two classifier blocks",
        Ablation::default(),
        both_streams(),
        true,
    );
}

#[test]
fn missing_images_cannot_change_their_samples_predictions() {
    let (_, model) = build(&Ablation::default(), both_streams(), 6, false, 3);
    let data = Synthetic::new(6, 1).samples(16, false, 4);
    let batch = data.batch(0..16, 6, false);
    let masked: Vec<usize> = (0..16).filter(|&i| data.mask[i] == 0.0).collect();
    let present: Vec<usize> = (0..16).filter(|&i| data.mask[i] == 1.0).collect();
    assert!(!masked.is_empty() && !present.is_empty(), "the fixture needs both kinds");

    // Replace every image with other values, including NaN for the masked samples.
    let mut rng = StdRng::seed_from_u64(9);
    let mut other = gaussians(&mut rng, 16 * IMAGE.0 * IMAGE.1);
    for &i in &masked {
        other[i * IMAGE.0 * IMAGE.1] = f32::NAN;
    }
    let altered = Batch {
        image: Some(Tensor::from_vec(other, (16, IMAGE.0, IMAGE.1), &Device::Cpu).unwrap()),
        text: batch.text.clone(),
        text_tokens: None,
        image_mask: batch.image_mask.clone(),
        lexical: None,
        targets: batch.targets.clone(),
    };
    let before: Vec<Vec<f32>> = model.forward(&batch, false).unwrap().logits.to_vec2().unwrap();
    let after: Vec<Vec<f32>> = model.forward(&altered, false).unwrap().logits.to_vec2().unwrap();
    for &i in &masked {
        assert_eq!(before[i], after[i], "sample {i} has no image, yet its logits changed");
    }
    // And the image is really used where it exists (otherwise the check above is empty).
    for &i in &present {
        assert_ne!(before[i], after[i], "sample {i}'s image does not affect its logits");
    }
}

#[test]
fn outputs_have_the_documented_shapes() {
    let (_, model) = build(&Ablation::default(), both_streams(), 6, false, 3);
    let data = Synthetic::new(6, 1).samples(10, false, 4);
    let batch = data.batch(0..10, 6, false);
    let output = model.forward(&batch, false).unwrap();
    assert_eq!(output.logits.dims(), [10, 6]);
    assert_eq!(output.fused_embedding.dims(), [10, 32]);
    assert_eq!(output.text_embedding.as_ref().unwrap().dims(), [10, 32]);
    assert_eq!(output.image_embedding.as_ref().unwrap().dims(), [10, 32]);
    let gates = output.gates.as_ref().unwrap();
    assert_eq!(gates.dims(), [10, 3]);
    for row in gates.sum(1).unwrap().to_vec1::<f32>().unwrap() {
        assert!((row - 1.0).abs() < 1e-5, "gate weights sum to {row}");
    }
    let probabilities = model.probabilities(&output.logits).unwrap();
    assert_eq!(probabilities.dims(), [10, 6]);

    let names: Vec<String> =
        model.loss(&output, &batch).unwrap().components.into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "classification",
            "contrastive_text_image",
            "contrastive_text_fused",
            "contrastive_image_fused",
            "load_balance"
        ]
    );

    // Text-only: no image embedding, no image contrastive terms; MoE off: no gates.
    let mut ablation = Ablation { image: false, ..Ablation::default() };
    ablation.moe = false;
    let (_, text_only) = build(&ablation, both_streams(), 6, false, 3);
    let output = text_only.forward(&batch, false).unwrap();
    assert!(output.image_embedding.is_none() && output.gates.is_none());
    let names: Vec<String> =
        text_only.loss(&output, &batch).unwrap().components.into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["classification", "contrastive_text_fused"]);
}

#[test]
fn the_total_loss_weights_classification_against_contrastive() {
    let (_, model) = build(&Ablation::default(), both_streams(), 6, false, 3);
    let batch = Synthetic::new(6, 1).samples(12, false, 4).batch(0..12, 6, false);
    let parts = model.loss(&model.forward(&batch, false).unwrap(), &batch).unwrap();
    let value = |name: &str| {
        let (_, t) = parts.components.iter().find(|(n, _)| n == name).unwrap();
        t.to_scalar::<f32>().unwrap()
    };
    let contrastive = (value("contrastive_text_image")
        + value("contrastive_text_fused")
        + value("contrastive_image_fused"))
        / 3.0;
    let expected = 0.7 * value("classification") + 0.3 * contrastive + 0.01 * value("load_balance");
    let total = parts.total.to_scalar::<f32>().unwrap();
    assert!((total - expected).abs() < 1e-4, "total {total}, expected {expected}");

    let (_, plain) = build(
        &Ablation { contrastive: false, moe: false, ..Ablation::default() },
        both_streams(),
        6,
        false,
        3,
    );
    let parts = plain.loss(&plain.forward(&batch, false).unwrap(), &batch).unwrap();
    assert_eq!(parts.components.len(), 1);
    assert_eq!(
        parts.total.to_scalar::<f32>().unwrap(),
        parts.components[0].1.to_scalar::<f32>().unwrap()
    );
}

#[test]
fn seeds_make_weights_and_dropout_reproducible() {
    let data = Synthetic::new(6, 1).samples(8, false, 4);
    let batch = data.batch(0..8, 6, false);
    let run = |seed: u64| {
        let (_, model) = build(&Ablation::default(), both_streams(), 6, false, seed);
        let eval: Vec<Vec<f32>> = model.forward(&batch, false).unwrap().logits.to_vec2().unwrap();
        let train: Vec<Vec<f32>> = model.forward(&batch, true).unwrap().logits.to_vec2().unwrap();
        let eval_again: Vec<Vec<f32>> =
            model.forward(&batch, false).unwrap().logits.to_vec2().unwrap();
        assert_eq!(eval, eval_again, "evaluation must be deterministic");
        assert_ne!(eval, train, "training mode must apply dropout");
        (eval, train)
    };
    assert_eq!(run(11), run(11));
    assert_ne!(run(11).0, run(12).0);
}

#[test]
fn missing_inputs_are_reported() {
    let nothing = FeatureDims { text: None, image: Some(IMAGE) };
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, 0, &Device::Cpu);
    let ablation = Ablation { image: false, ..Ablation::default() };
    let err = FusionModel::new(vb, &tiny_config(), &ablation, nothing, 6, false, 0)
        .err()
        .expect("a model without inputs must be refused");
    assert!(err.to_string().contains("no input"), "{err}");

    let (_, model) = build(&Ablation::default(), both_streams(), 6, false, 3);
    let batch = without_text(Synthetic::new(6, 1).samples(4, false, 4).batch(0..4, 6, false));
    let err = model.forward(&batch, false).err().expect("text features are required");
    assert!(err.to_string().contains("no text features"), "{err}");
}

/// Macro-F1 by the crate's metrics (checked against scikit-learn in tests/metrics.rs).
fn macro_f1(predicted: &[usize], truth: &[usize], classes: usize) -> f64 {
    let labels: Vec<String> = (0..classes).map(|c| format!("class {c}")).collect();
    memescope::metrics::single_label_metrics(&labels, truth, predicted).macro_f1
}

/// 120 AdamW steps over `train` in order; returns the first step's loss.
fn train_steps(
    varmap: &VarMap,
    model: &FusionModel,
    train: &Samples,
    batch_size: usize,
    multi_label: bool,
) -> f32 {
    let params = ParamsAdamW { lr: 3e-3, ..ParamsAdamW::default() };
    let mut optimiser = AdamW::new(varmap.all_vars(), params).unwrap();
    let mut first_loss = None;
    for step in 0..120 {
        let start = (step * batch_size) % train.len();
        let batch = train.batch(start..start + batch_size, model.num_labels(), multi_label);
        let loss = model.loss(&model.forward(&batch, true).unwrap(), &batch).unwrap();
        first_loss.get_or_insert(loss.total.to_scalar::<f32>().unwrap());
        optimiser.backward_step(&loss.total).unwrap();
    }
    first_loss.expect("at least one step")
}

/// Macro-F1 of the model's most probable class on single-label samples.
fn held_out_macro_f1(model: &FusionModel, held_out: &Samples) -> f64 {
    let classes = model.num_labels();
    let batch = held_out.batch(0..held_out.len(), classes, false);
    let logits = model.forward(&batch, false).unwrap().logits;
    let probabilities: Vec<Vec<f32>> = model.probabilities(&logits).unwrap().to_vec2().unwrap();
    let predicted: Vec<usize> = probabilities
        .iter()
        .map(|row| (0..classes).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap())
        .collect();
    let truth: Vec<usize> = held_out.truth.iter().map(|t| t[0]).collect();
    macro_f1(&predicted, &truth, classes)
}

#[test]
fn learns_a_synthetic_task_to_high_macro_f1() {
    learns_a_synthetic_task_computing_in(DType::F32);
}

/// Mixed precision learns as well: bfloat16 activations, f32 weights and optimiser.
#[test]
fn learns_a_synthetic_task_to_high_macro_f1_in_mixed_precision() {
    learns_a_synthetic_task_computing_in(DType::BF16);
}

fn learns_a_synthetic_task_computing_in(compute: DType) {
    let (classes, batch_size) = (6, 40);
    let task = Synthetic::new(classes, 21);
    let train = task.samples(240, false, 22);
    let held_out = task.samples(120, false, 23);
    let (varmap, model) = build(&Ablation::default(), both_streams(), classes, false, 7);
    let model = model.with_compute_dtype(compute);
    let first_loss = train_steps(&varmap, &model, &train, batch_size, false);
    let f1 = held_out_macro_f1(&model, &held_out);
    assert!(f1 >= 0.9, "{compute:?}: held-out macro-F1 {f1:.3} (first loss {first_loss})");
}

#[test]
fn learns_a_multi_label_synthetic_task() {
    let (labels, batch_size) = (7, 40);
    let task = Synthetic::new(labels, 31);
    let train = task.samples(240, true, 32);
    let held_out = task.samples(120, true, 33);
    let (varmap, model) = build(&Ablation::default(), both_streams(), labels, true, 8);
    train_steps(&varmap, &model, &train, batch_size, true);
    let batch = held_out.batch(0..held_out.len(), labels, true);
    let logits: Vec<Vec<f32>> = model.forward(&batch, false).unwrap().logits.to_vec2().unwrap();
    // Micro-F1 of the label-wise decisions at probability 0.5 (logit 0): unlike accuracy,
    // it stays low for a model that predicts no label at all.
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    for (row, truth) in logits.iter().zip(&held_out.truth) {
        for (label, logit) in row.iter().enumerate() {
            match (*logit > 0.0, truth.contains(&label)) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fn_ += 1,
                (false, false) => {}
            }
        }
    }
    let f1 = 2.0 * tp as f64 / (2 * tp + fp + fn_) as f64;
    assert!(f1 >= 0.9, "held-out micro-F1 {f1:.3}");
}

/// The lexical expert's weights start at zero but must still learn (a zero weight gets the
/// gradient `xᵀ · dlogits`), and a model with the expert refuses batches without its features.
#[test]
fn the_lexical_expert_learns_and_needs_its_features() {
    let config =
        ModelConfig { lexical_buckets: 16, lexical_char_ngrams: vec![2, 4], ..tiny_config() };
    let ablation = Ablation { lexical: true, ..Ablation::default() };
    for multi_label in [false, true] {
        let labels = if multi_label { 7 } else { 6 };
        let (varmap, model) =
            build_with(&config, &ablation, both_streams(), labels, multi_label, 5);
        let mut batch =
            Synthetic::new(labels, 1).samples(24, multi_label, 2).batch(0..24, labels, multi_label);
        let texts: Vec<String> =
            (0..24).map(|i| format!("worry {} doom {}", i % 5, i % 3)).collect();
        let lexical =
            memescope::features::LexicalFeatures::of_texts(&texts, LexicalSpec::of(&config));
        let rows: Vec<usize> = (0..24).collect();
        batch.lexical = Some(lexical.dense(&rows, &Device::Cpu).unwrap());
        let missing = variables_without_gradient(&varmap, &model, &batch);
        assert!(missing.is_empty(), "no gradient: {missing:?}");
        assert!(varmap.data().lock().unwrap().contains_key("lexical.weight"));
        batch.lexical = None;
        let err = model.forward(&batch, false).err().expect("lexical features are required");
        assert!(err.to_string().contains("lexical"), "{err}");
    }
}

/// `model.ensemble = 3`: three members from different initial weights, each getting a
/// gradient from its own loss; the prediction is their mean probability.
#[test]
fn an_ensemble_trains_every_member_and_averages_their_probabilities() {
    let config = ModelConfig { ensemble: 3, ..tiny_config() };
    for multi_label in [false, true] {
        let name = format!("ensemble, multi-label {multi_label}");
        assert_every_variable_learns_with(
            &config,
            &name,
            Ablation::default(),
            both_streams(),
            multi_label,
        );
        let labels = if multi_label { 7 } else { 6 };
        let (varmap, model) =
            build_with(&config, &Ablation::default(), both_streams(), labels, multi_label, 5);
        {
            let vars = varmap.data().lock().unwrap();
            let first: Vec<&String> = vars.keys().filter(|n| !n.starts_with("member")).collect();
            for member in ["member1", "member2"] {
                for name in &first {
                    let other = vars.get(&format!("{member}.{name}"));
                    let other = other.unwrap_or_else(|| panic!("{member} has no {name}"));
                    let mine =
                        vars[*name].as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
                    // Constant-initialised tensors (norm gains, zero biases) are alike in every
                    // member; randomly initialised ones must differ.
                    let random = mine.iter().any(|v| *v != mine[0]);
                    let theirs = other.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
                    assert!(!random || mine != theirs, "{member}.{name} equals {name}");
                }
            }
            assert!(!vars.keys().any(|n| n.starts_with("member3.")));
        }

        let batch =
            Synthetic::new(labels, 1).samples(12, multi_label, 2).batch(0..12, labels, multi_label);
        let output = model.forward(&batch, false).unwrap();
        assert_eq!(output.members.len(), 3);
        // Gate usage is the first member's: experts of different members are unrelated.
        let gates = output.gates.as_ref().unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(gates, output.members[0].gates.as_ref().unwrap().to_vec2::<f32>().unwrap());
        let member_probabilities: Vec<Tensor> =
            output.members.iter().map(|m| model.probabilities(&m.logits).unwrap()).collect();
        let mean = (member_probabilities
            .iter()
            .skip(1)
            .fold(member_probabilities[0].clone(), |a, b| (a + b).unwrap())
            / 3.0)
            .unwrap();
        let ensemble = model.probabilities(&output.logits).unwrap();
        let diff = (ensemble - &mean)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-5, "ensemble probabilities differ from the members' mean by {diff}");
        let spread = (&member_probabilities[0] - &member_probabilities[1])
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert!(spread.to_scalar::<f32>().unwrap() > 1e-3, "members predict differently");

        let loss = model.loss(&output, &batch).unwrap().total.to_scalar::<f32>().unwrap();
        let member_losses: f32 = output
            .members
            .iter()
            .map(|m| model.loss(m, &batch).unwrap().total.to_scalar::<f32>().unwrap())
            .sum();
        assert!((loss - member_losses / 3.0).abs() < 1e-5, "the loss is the members' mean");
        assert_training_step_matches_one_backward(&varmap, &model, &batch, 1e-5);
    }
}

#[test]
fn an_ensemble_learns_a_synthetic_task_to_high_macro_f1() {
    let classes = 6;
    let task = Synthetic::new(classes, 21);
    let config = ModelConfig { ensemble: 3, ..tiny_config() };
    let (varmap, model) =
        build_with(&config, &Ablation::default(), both_streams(), classes, false, 7);
    train_steps(&varmap, &model, &task.samples(240, false, 22), 40, false);
    let f1 = held_out_macro_f1(&model, &task.samples(120, false, 23));
    assert!(f1 >= 0.9, "held-out macro-F1 {f1:.3}");
}
