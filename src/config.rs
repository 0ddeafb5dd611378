//! The run configuration: one TOML file, overridable with `--set section.key=value`.
//!
//! Every knob a researcher turns between runs lives here, so that a run directory's
//! resolved `config.toml` is enough to reproduce (or evaluate) the run.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::data::DatasetFormat;
use crate::ocr::OcrPolicy;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub data: DataConfig,
    pub text_encoder: TextEncoderConfig,
    #[serde(default)]
    pub vision_encoder: VisionEncoderConfig,
    #[serde(default)]
    pub model: ModelConfig,
    #[serde(default)]
    pub ablation: Ablation,
    #[serde(default)]
    pub train: TrainConfig,
    #[serde(default)]
    pub paths: PathsConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// `axiom` (single-label) or `restore` (multi-label).
    pub format: DatasetFormat,
    /// Training records (JSON array).
    pub train: PathBuf,
    /// Validation records; when absent a stratified split of `train` is used.
    #[serde(default)]
    pub validation: Option<PathBuf>,
    /// Folder of `<sample_id>.<jpg|jpeg|png|webp>` images; absent means text-only.
    #[serde(default)]
    pub images: Option<PathBuf>,
    /// Which records get their text by OCR of their image (`never`, `missing`: those
    /// without an `ocr_text` field, `always`). Needs `images`; results are cached.
    #[serde(default)]
    pub ocr: OcrPolicy,
    /// Fraction of `train` held out for validation when no validation file is given
    /// (the reference uses 1/8).
    #[serde(default = "defaults::val_fraction")]
    pub val_fraction: f64,
    /// Seed of the validation split.
    #[serde(default = "defaults::seed")]
    pub split_seed: u64,
}

/// How the text side is pooled into one vector per exposed layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The first token ([CLS] / `<s>`), as the reference does.
    #[default]
    Cls,
    /// Mean over non-padding tokens (what sentence-transformers models are trained for).
    Mean,
    /// A learned softmax-weighted average of the tokens, starting as the mean. Its weights
    /// train, so it needs `text_encoder.finetune_layers` >= 1 (frozen features are pooled
    /// once, before training).
    Attention,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextEncoderConfig {
    /// A local folder (`config.json`, `tokenizer.json` or `vocab.json` + `merges.txt` or
    /// `vocab.txt`, weights) or a Hugging Face hub id.
    pub model: String,
    #[serde(default = "defaults::max_length")]
    pub max_length: usize,
    /// How many of the top hidden layers to expose (the reference uses the last 3).
    #[serde(default = "defaults::layers")]
    pub layers: usize,
    #[serde(default)]
    pub pooling: Pooling,
    /// Sentences per encoder batch.
    #[serde(default = "defaults::encode_batch")]
    pub batch_size: usize,
    /// How many of the encoder's top layers to fine-tune (0: the encoder stays frozen).
    /// They start from the pretrained weights and run on cached activations of the layer
    /// below them, so only they are recomputed at each step.
    #[serde(default)]
    pub finetune_layers: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisionEncoderConfig {
    /// A local folder or hub id of a CLIP checkpoint; absent means text-only.
    #[serde(default)]
    pub model: Option<String>,
    /// How many of the top hidden layers to expose ([CLS] of each).
    #[serde(default = "defaults::layers")]
    pub layers: usize,
    #[serde(default = "defaults::encode_batch")]
    pub batch_size: usize,
}

impl Default for VisionEncoderConfig {
    fn default() -> Self {
        Self { model: None, layers: defaults::layers(), batch_size: defaults::encode_batch() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Shared width that text, image and fused features are projected to.
    #[serde(default = "defaults::fusion_dim")]
    pub fusion_dim: usize,
    #[serde(default = "defaults::heads")]
    pub heads: usize,
    #[serde(default = "defaults::experts")]
    pub experts: usize,
    /// Models trained side by side from different initial weights and dropout masks on the
    /// same features (and fine-tuned text layers); their mean probabilities are the
    /// prediction. 1 is a single model.
    #[serde(default = "defaults::ensemble")]
    pub ensemble: usize,
    #[serde(default = "defaults::dropout")]
    pub dropout: f32,
    /// InfoNCE temperature.
    #[serde(default = "defaults::temperature")]
    pub temperature: f32,
    /// loss = (1 - w) * classification + w * contrastive.
    #[serde(default = "defaults::contrastive_weight")]
    pub contrastive_weight: f32,
    /// Weight of the MoE load-balancing term (0 disables it).
    #[serde(default = "defaults::load_balance_weight")]
    pub load_balance_weight: f32,
    /// Hash buckets of the lexical expert's n-gram features (`ablation.lexical`).
    #[serde(default = "defaults::lexical_buckets")]
    pub lexical_buckets: usize,
    /// `[shortest, longest]` character n-grams within words the lexical expert counts beside
    /// word 1–2-grams; empty for words alone.
    #[serde(default)]
    pub lexical_char_ngrams: Vec<usize>,
    /// Transformer blocks in the classifier before the MLP head.
    #[serde(default = "defaults::classifier_layers")]
    pub classifier_layers: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        toml::from_str("").expect("every model field has a default")
    }
}

/// Declares the ablation switches once; the `Ablation` struct (with its serde defaults),
/// the name list, `get`/`set`, the opt-in flags and the sweep's modules are all derived
/// from it, so a new switch is one line here plus its use in the model.
///
/// Each entry is `name = default` (an off-by-default switch adds a module: it is opt-in,
/// labelled `+name`), followed by `, leave_one_out` when the leave-one-out sweep removes
/// it in turn (`crate::plan`). Entries are in display order.
macro_rules! ablation_switches {
    (@swept leave_one_out) => { true };
    (@swept) => { false };
    ($( $(#[doc = $doc:literal])* $name:ident = $default:literal $(, $swept:ident)? ; )+) => {
        /// The module switches of the ablation study. Each one removes a part of the model.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct Ablation {
            $( $(#[doc = $doc])* pub $name: bool, )+
        }

        impl Default for Ablation {
            fn default() -> Self {
                Self { $( $name: $default, )+ }
            }
        }

        /// Every switch, in display order.
        pub const SWITCHES: [Switch; [$(stringify!($name)),+].len()] = [$(
            Switch {
                name: stringify!($name),
                default: $default,
                leave_one_out: ablation_switches!(@swept $($swept)?),
                doc: concat!("" $(, $doc)*),
            },
        )+];

        /// The names of the ablation switches, in display order.
        pub const ABLATION_SWITCHES: [&str; SWITCHES.len()] = [$(stringify!($name)),+];

        impl Ablation {
            pub fn get(&self, name: &str) -> Option<bool> {
                match name {
                    $( stringify!($name) => Some(self.$name), )+
                    _ => None,
                }
            }

            pub fn set(&mut self, name: &str, value: bool) -> Result<()> {
                let slot = match name {
                    $( stringify!($name) => &mut self.$name, )+
                    _ => bail!(
                        "unknown ablation switch `{name}` (known: {})",
                        ABLATION_SWITCHES.join(", ")
                    ),
                };
                *slot = value;
                Ok(())
            }
        }
    };
}

ablation_switches! {
    image = true, leave_one_out;
    ocr = true, leave_one_out;
    /// Append the figurative reasoning to the OCR text when the records have it.
    figurative = false;
    cross_attention = true, leave_one_out;
    moe = true, leave_one_out;
    contrastive = true, leave_one_out;
    contrastive_text_image = true;
    contrastive_text_fused = true;
    contrastive_image_fused = true;
    /// The lexical expert: a linear model over hashed word 1–2-grams whose logits are added
    /// to the fusion classifier's (opt-in, like `figurative`).
    lexical = false, leave_one_out;
}

/// One ablation switch, as declared in `ablation_switches!`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch {
    pub name: &'static str,
    /// Its value when the config does not set it.
    pub default: bool,
    /// Whether the leave-one-out sweep removes it in turn.
    pub leave_one_out: bool,
    /// Its doc comment (empty when it has none).
    pub doc: &'static str,
}

impl Switch {
    /// Off by default: turning it on adds a module, so labels show it as `+name`.
    pub fn opt_in(&self) -> bool {
        !self.default
    }
}

impl Ablation {
    /// The switches that are off, e.g. `-moe -contrastive`, after the opt-in switches that
    /// are on (`+lexical`); `all on` when the label would be empty.
    pub fn short_label(&self) -> String {
        let state = |switch: &&Switch| self.get(switch.name) == Some(true);
        let added = SWITCHES.iter().filter(|s| s.opt_in() && state(s));
        let removed = SWITCHES.iter().filter(|s| !s.opt_in() && !state(s));
        let label: Vec<String> = added
            .map(|s| format!("+{}", s.name))
            .chain(removed.map(|s| format!("-{}", s.name)))
            .collect();
        if label.is_empty() {
            "all on".to_string()
        } else {
            label.join(" ")
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Linear warmup then linear decay to zero.
    #[default]
    WarmupLinear,
    /// Constant learning rate, halved when validation stops improving (the reference).
    ReduceOnPlateau,
}

/// The number format of the model's activations while it trains and predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in f32.
    #[default]
    F32,
    /// Mixed precision on CUDA: matrix products and activations in bfloat16, with the
    /// weights, the optimiser, layer-norm statistics, softmaxes and the loss in f32.
    /// bfloat16 keeps f32's exponent range, so gradients need no loss scaling. A CPU has no
    /// fast bfloat16 arithmetic: CPU runs stay f32.
    Bf16,
}

impl Precision {
    /// As written in a config file.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }

    /// The dtype activations take on `device`: bfloat16 only for `bf16` on CUDA.
    pub fn compute_dtype(self, device: &candle_core::Device) -> candle_core::DType {
        match self {
            Precision::Bf16 if device.is_cuda() => candle_core::DType::BF16,
            _ => candle_core::DType::F32,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    #[serde(default = "defaults::epochs")]
    pub epochs: usize,
    #[serde(default = "defaults::batch_size")]
    pub batch_size: usize,
    #[serde(default = "defaults::lr")]
    pub lr: f64,
    /// Learning rate of the fine-tuned text-encoder layers (`text_encoder.finetune_layers`),
    /// following the same warmup/decay schedule as `lr`.
    #[serde(default = "defaults::encoder_lr")]
    pub encoder_lr: f64,
    /// Learning rate of the lexical expert (`ablation.lexical`), same schedule as `lr`.
    #[serde(default = "defaults::lexical_lr")]
    pub lexical_lr: f64,
    #[serde(default = "defaults::weight_decay")]
    pub weight_decay: f64,
    /// Fraction of all steps spent warming up the learning rate.
    #[serde(default = "defaults::warmup")]
    pub warmup: f64,
    #[serde(default)]
    pub schedule: Schedule,
    #[serde(default = "defaults::grad_clip")]
    pub grad_clip: f64,
    /// Epochs without improvement before stopping early (0 disables early stopping).
    #[serde(default = "defaults::patience")]
    pub patience: usize,
    #[serde(default = "defaults::seed")]
    pub seed: u64,
    /// `cpu`, `cuda:N` or `auto`.
    #[serde(default = "defaults::device")]
    pub device: String,
    /// `f32`, or `bf16` for mixed precision on CUDA (f32 master weights; see [`Precision`]).
    #[serde(default)]
    pub precision: Precision,
    /// Misclassified validation samples reported per epoch.
    #[serde(default = "defaults::max_misclassified")]
    pub max_misclassified: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        toml::from_str("").expect("every train field has a default")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathsConfig {
    /// Where run directories are created.
    #[serde(default = "defaults::runs_dir")]
    pub runs: PathBuf,
    /// Where frozen encoder outputs are cached.
    #[serde(default = "defaults::cache_dir")]
    pub cache: PathBuf,
}

impl Default for PathsConfig {
    fn default() -> Self {
        Self { runs: defaults::runs_dir(), cache: defaults::cache_dir() }
    }
}

mod defaults {
    use std::path::PathBuf;

    pub fn val_fraction() -> f64 {
        0.125
    }
    pub fn seed() -> u64 {
        42
    }
    pub fn max_length() -> usize {
        128
    }
    pub fn layers() -> usize {
        3
    }
    pub fn encode_batch() -> usize {
        32
    }
    pub fn fusion_dim() -> usize {
        256
    }
    pub fn heads() -> usize {
        4
    }
    pub fn ensemble() -> usize {
        1
    }
    pub fn experts() -> usize {
        4
    }
    pub fn dropout() -> f32 {
        0.1
    }
    pub fn temperature() -> f32 {
        0.07
    }
    pub fn contrastive_weight() -> f32 {
        0.3
    }
    pub fn load_balance_weight() -> f32 {
        0.01
    }
    pub fn lexical_buckets() -> usize {
        1 << 14
    }
    pub fn classifier_layers() -> usize {
        1
    }
    pub fn epochs() -> usize {
        20
    }
    pub fn batch_size() -> usize {
        32
    }
    pub fn lr() -> f64 {
        1e-3
    }
    pub fn encoder_lr() -> f64 {
        5e-5
    }
    pub fn lexical_lr() -> f64 {
        1e-3
    }
    pub fn weight_decay() -> f64 {
        0.01
    }
    pub fn warmup() -> f64 {
        0.1
    }
    pub fn grad_clip() -> f64 {
        1.0
    }
    pub fn patience() -> usize {
        5
    }
    pub fn device() -> String {
        "cpu".to_string()
    }
    pub fn max_misclassified() -> usize {
        200
    }
    pub fn runs_dir() -> PathBuf {
        PathBuf::from("runs")
    }
    pub fn cache_dir() -> PathBuf {
        PathBuf::from(".memescope/cache")
    }
}

impl Config {
    /// Reads a config file and applies `section.key=value` overrides in order.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let mut value: toml::Table =
            toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))?;
        resolve_against_config_dir(&mut value, path)?;
        for assignment in overrides {
            apply_override(&mut value, assignment)?;
        }
        let config: Config = toml::Value::Table(value)
            .try_into()
            .with_context(|| format!("invalid config {}", path.display()))?;
        config.validate()?;
        Ok(config)
    }

    /// This config with `section.key=value` assignments applied, read and validated
    /// exactly as `--set` is (the dashboard's value editor refuses what this refuses).
    pub fn with_overrides(&self, overrides: &[String]) -> Result<Self> {
        let mut value = toml::Table::try_from(self).context("serialising the config")?;
        for assignment in overrides {
            apply_override(&mut value, assignment)?;
        }
        let config: Config = toml::Value::Table(value).try_into().context("invalid value")?;
        config.validate()?;
        Ok(config)
    }

    pub fn from_toml_str(text: &str) -> Result<Self> {
        let config: Config = toml::from_str(text).context("invalid config")?;
        config.validate()?;
        Ok(config)
    }

    pub fn to_toml_string(&self) -> String {
        toml::to_string_pretty(self).expect("a config always serialises")
    }

    /// This config with `assignments` applied in order, checked like `--set`: an unknown
    /// key, a value of the wrong type or an invalid combination is an error naming them.
    pub fn with_assignments(&self, assignments: &[Assignment]) -> Result<Self> {
        let mut table: toml::Table =
            toml::from_str(&self.to_toml_string()).expect("a config reads back");
        for assignment in assignments {
            assignment.apply(&mut table)?;
        }
        let named = || assignments.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(" ");
        let config: Config = toml::Value::Table(table)
            .try_into()
            .with_context(|| format!("invalid config with {}", named()))?;
        config.validate().with_context(|| format!("invalid config with {}", named()))?;
        Ok(config)
    }

    /// The same config with every relative path (and model folders that exist locally)
    /// made absolute, so that a run directory's copy works from anywhere.
    pub fn absolutized(mut self) -> Result<Self> {
        let cwd = std::env::current_dir().context("reading the current directory")?;
        let absolute = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = cwd.join(&*path);
            }
        };
        absolute(&mut self.data.train);
        for path in [&mut self.data.validation, &mut self.data.images].into_iter().flatten() {
            absolute(path);
        }
        absolute(&mut self.paths.runs);
        absolute(&mut self.paths.cache);
        let local_model = |spec: &mut String| {
            let path = Path::new(spec.as_str());
            if path.is_relative() && path.is_dir() {
                *spec = cwd.join(path).display().to_string();
            }
        };
        local_model(&mut self.text_encoder.model);
        if let Some(spec) = self.vision_encoder.model.as_mut() {
            local_model(spec);
        }
        Ok(self)
    }

    fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.data.val_fraction) {
            bail!("data.val_fraction must be in [0, 1), got {}", self.data.val_fraction);
        }
        if !self.model.fusion_dim.is_multiple_of(self.model.heads) {
            bail!(
                "model.fusion_dim ({}) must be divisible by model.heads ({})",
                self.model.fusion_dim,
                self.model.heads
            );
        }
        if self.model.experts == 0
            || self.model.ensemble == 0
            || self.train.batch_size == 0
            || self.text_encoder.layers == 0
        {
            bail!(
                "model.experts, model.ensemble, train.batch_size and text_encoder.layers must \
                 be at least 1"
            );
        }
        let finetune = self.text_encoder.finetune_layers;
        if finetune > 0 && self.text_encoder.layers > finetune + 1 {
            bail!(
                "text_encoder.layers = {} exposes more hidden states than fine-tuning {finetune} \
                 layers produces ({}: the input of the lowest fine-tuned layer and each fine-tuned \
                 layer's output); lower text_encoder.layers or raise \
                 text_encoder.finetune_layers",
                self.text_encoder.layers,
                finetune + 1
            );
        }
        if self.text_encoder.pooling == Pooling::Attention && finetune == 0 {
            bail!(
                "text_encoder.pooling = \"attention\" is learned, so it needs \
                 text_encoder.finetune_layers >= 1 (frozen features are pooled before training)"
            );
        }
        if self.ablation.lexical && self.model.lexical_buckets == 0 {
            bail!("model.lexical_buckets must be at least 1 when ablation.lexical is on");
        }
        match self.model.lexical_char_ngrams.as_slice() {
            [] => {}
            [shortest, longest] if 1 <= *shortest && shortest <= longest => {}
            other => bail!(
                "model.lexical_char_ngrams must be [] or [shortest, longest] with \
                 1 <= shortest <= longest, got {other:?}"
            ),
        }
        if !(0.0..=1.0).contains(&self.model.contrastive_weight) {
            bail!("model.contrastive_weight must be in [0, 1]");
        }
        if self.train.precision == Precision::Bf16 && self.train.device.trim() == "cpu" {
            bail!(
                "train.precision = \"bf16\" is mixed precision for CUDA; a CPU run trains in \
                 f32 (set train.device = \"cuda\" or \"auto\", or train.precision = \"f32\")"
            );
        }
        Ok(())
    }
}

/// Applies one `section.key=value` assignment. The value is read as a TOML value
/// (`true`, `3`, `1e-4`, `"x"`, `[1, 2]`) and falls back to a bare string.
/// The keys that hold file or folder paths.
const PATH_KEYS: [(&str, &str); 5] = [
    ("data", "train"),
    ("data", "validation"),
    ("data", "images"),
    ("paths", "runs"),
    ("paths", "cache"),
];
/// The keys that hold a model folder or a hub id.
const MODEL_KEYS: [(&str, &str); 2] = [("text_encoder", "model"), ("vision_encoder", "model")];

/// Makes the relative paths written in the config file at `path` relative to its folder, so
/// that a config works from any working directory. A model spec counts as a path when it
/// starts with `./` or `../` or that folder exists next to the config; otherwise it stays as
/// written (a hub id, or a folder relative to the working directory). Values given with `--set` are applied after this:
/// like any command-line path, they are relative to the working directory. Keys the file
/// leaves out keep their defaults, relative to the working directory too.
fn resolve_against_config_dir(table: &mut toml::Table, path: &Path) -> Result<()> {
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let folder = std::path::absolute(folder)
        .with_context(|| format!("resolving the folder of config {}", path.display()))?;
    let mut resolve = |section: &str, key: &str, model: bool| {
        let value = table.get_mut(section).and_then(|s| s.get_mut(key));
        let Some(toml::Value::String(written)) = value else { return };
        let candidate = folder.join(written.as_str());
        let explicit = written.starts_with("./") || written.starts_with("../");
        if Path::new(written.as_str()).is_relative() && (!model || explicit || candidate.is_dir()) {
            *written = candidate.display().to_string();
        }
    };
    for (section, key) in PATH_KEYS {
        resolve(section, key, false);
    }
    for (section, key) in MODEL_KEYS {
        resolve(section, key, true);
    }
    Ok(())
}

pub fn apply_override(table: &mut toml::Table, assignment: &str) -> Result<()> {
    Assignment::parse(assignment)?.apply(table)
}

/// One `section.key=value` assignment (a `--set`), its value already read as TOML. Its
/// `Display` writes the value as a TOML literal (strings quoted), so that the text reads
/// back as the same value: what a planned run's command line is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub key: String,
    pub value: toml::Value,
}

impl Assignment {
    pub fn new(key: &str, value: impl Into<toml::Value>) -> Self {
        Self { key: key.to_string(), value: value.into() }
    }

    pub fn parse(assignment: &str) -> Result<Self> {
        let (key, raw) = split_assignment(assignment, "--set expects section.key=value")?;
        Ok(Self { key: key.to_string(), value: parse_value(raw) })
    }

    pub fn apply(&self, table: &mut toml::Table) -> Result<()> {
        let mut parts: Vec<&str> = self.key.split('.').collect();
        let last = parts.pop().expect("split yields at least one part");
        let mut cursor = table;
        for part in parts {
            cursor = cursor
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .with_context(|| format!("`{part}` in `{}` is not a section", self.key))?;
        }
        cursor.insert(last.to_string(), self.value.clone());
        Ok(())
    }
}

impl std::fmt::Display for Assignment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// `section.key=rest` as the key (trimmed, no empty part) and the text after the first
/// `=`; `usage` starts the error for text that is not one.
pub fn split_assignment<'a>(text: &'a str, usage: &str) -> Result<(&'a str, &'a str)> {
    let (key, rest) = text.split_once('=').with_context(|| format!("{usage}, got `{text}`"))?;
    let key = key.trim();
    if key.split('.').any(str::is_empty) {
        bail!("empty key in `{text}`");
    }
    Ok((key, rest))
}

/// Reads the value of an assignment as TOML (`true`, `3`, `1e-4`, `"x"`, `[1, 2]`),
/// falling back to the bare text as a string (`other/model`).
pub fn parse_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[data]
format = "axiom"
train = "train.json"
[text_encoder]
model = "models/all-MiniLM-L6-v2"
"#;

    #[test]
    fn defaults_match_the_reference_setup() {
        let config = Config::from_toml_str(MINIMAL).unwrap();
        assert_eq!(config.data.val_fraction, 0.125);
        assert_eq!(config.text_encoder.layers, 3);
        assert_eq!(config.model.experts, 4);
        assert_eq!(config.model.temperature, 0.07);
        assert_eq!(config.model.contrastive_weight, 0.3);
        assert!(config.ablation.moe && config.ablation.image && !config.ablation.figurative);
        assert_eq!(config.data.ocr, OcrPolicy::Missing);
    }

    #[test]
    fn overrides_are_typed_and_nested() {
        let mut table: toml::Table = toml::from_str(MINIMAL).unwrap();
        apply_override(&mut table, "ablation.moe=false").unwrap();
        apply_override(&mut table, "train.lr=5e-4").unwrap();
        apply_override(&mut table, "text_encoder.model=other/model").unwrap();
        let config: Config = toml::Value::Table(table).try_into().unwrap();
        assert!(!config.ablation.moe);
        assert_eq!(config.train.lr, 5e-4);
        assert_eq!(config.text_encoder.model, "other/model");
    }

    #[test]
    fn mixed_precision_is_for_cuda_and_cpu_runs_stay_f32() {
        use candle_core::{DType, Device};
        let config = Config::from_toml_str(MINIMAL).unwrap();
        assert_eq!(config.train.precision, Precision::F32);
        let bf16 = |device: &str| {
            config
                .with_overrides(&[format!("train.device={device}"), "train.precision=bf16".into()])
        };
        let chosen = bf16("cuda").unwrap();
        assert_eq!(chosen.train.precision, Precision::Bf16);
        assert!(bf16("auto").is_ok(), "auto may find a GPU");
        let err = format!("{:#}", bf16("cpu").unwrap_err());
        assert!(err.contains("train.precision = \"bf16\"") && err.contains("f32"), "{err}");
        let err = config.with_overrides(&["train.precision=f16".to_string()]).unwrap_err();
        assert!(format!("{err:#}").contains("f16"), "{err:#}");
        // Where an `auto` run lands on the CPU, it computes in f32 all the same.
        assert_eq!(Precision::Bf16.compute_dtype(&Device::Cpu), DType::F32);
        assert_eq!(Precision::F32.compute_dtype(&Device::Cpu), DType::F32);
    }

    #[test]
    fn overrides_of_a_loaded_config_are_validated() {
        let config = Config::from_toml_str(MINIMAL).unwrap();
        let changed = config.with_overrides(&["train.lr=3e-4".to_string()]).unwrap();
        assert_eq!(changed.train.lr, 3e-4);
        let err = config.with_overrides(&["model.heads=7".to_string()]).unwrap_err();
        assert!(format!("{err:#}").contains("divisible by model.heads"), "{err:#}");
        let err = config.with_overrides(&["train.epochs=many".to_string()]).unwrap_err();
        assert!(format!("{err:#}").contains("epochs"), "{err:#}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let text = format!("{MINIMAL}\n[ablation]\nmoee = false\n");
        let err = Config::from_toml_str(&text).unwrap_err();
        assert!(format!("{err:#}").contains("moee"), "{err:#}");
    }

    #[test]
    fn paths_in_a_file_resolve_against_its_folder_and_set_values_against_the_working_dir() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("elsewhere");
        std::fs::create_dir_all(folder.join("models/all-MiniLM-L6-v2")).unwrap();
        let path = folder.join("x.toml");
        let text = MINIMAL.replace(r#"train = "train.json""#, r#"train = "data/t.json""#);
        assert_ne!(text, MINIMAL);
        std::fs::write(&path, format!("{text}\n[vision_encoder]\nmodel = \"owner/clip\"\n"))
            .unwrap();
        let overrides = ["data.validation=\"v.json\"".to_string()];
        let config = Config::load(&path, &overrides).unwrap();
        assert_eq!(config.data.train, folder.join("data/t.json"));
        let minilm = folder.join("models/all-MiniLM-L6-v2");
        assert_eq!(config.text_encoder.model, minilm.display().to_string());
        assert_eq!(config.vision_encoder.model.as_deref(), Some("owner/clip"), "a hub id stays");
        assert_eq!(config.data.validation, Some(PathBuf::from("v.json")), "--set: the working dir");
        assert_eq!(config.paths.runs, PathBuf::from("runs"), "a default: the working dir");
        // The resolved copy a run directory keeps reads back the same from anywhere.
        let copy = dir.path().join("run-config.toml");
        std::fs::write(&copy, config.to_toml_string()).unwrap();
        assert_eq!(Config::load(&copy, &[]).unwrap().data.train, config.data.train);
    }

    #[test]
    fn a_typo_in_a_config_file_names_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("typo.toml");
        std::fs::write(&path, format!("{MINIMAL}\n[train]\nepohcs = 3\n")).unwrap();
        let message = format!("{:#}", Config::load(&path, &[]).unwrap_err());
        assert!(message.contains("typo.toml") && message.contains("epohcs"), "{message}");
    }

    #[test]
    fn resolved_config_round_trips() {
        let config = Config::from_toml_str(MINIMAL).unwrap();
        assert_eq!(Config::from_toml_str(&config.to_toml_string()).unwrap(), config);
    }

    #[test]
    fn finetuning_defaults_off_and_rejects_more_layers_than_it_produces() {
        let config = Config::from_toml_str(MINIMAL).unwrap();
        assert_eq!(config.text_encoder.finetune_layers, 0);
        assert_eq!(config.train.encoder_lr, 5e-5);
        let ok = format!("{MINIMAL}finetune_layers = 2\n");
        assert_eq!(Config::from_toml_str(&ok).unwrap().text_encoder.finetune_layers, 2);
        let too_few = format!("{MINIMAL}finetune_layers = 1\n");
        let err = format!("{:#}", Config::from_toml_str(&too_few).unwrap_err());
        assert!(err.contains("text_encoder.layers = 3") && err.contains("(2:"), "{err}");
    }

    #[test]
    fn attention_pooling_needs_fine_tuned_layers() {
        let frozen = format!("{MINIMAL}pooling = \"attention\"\n");
        let err = format!("{:#}", Config::from_toml_str(&frozen).unwrap_err());
        assert!(err.contains("finetune_layers >= 1"), "{err}");
        let tuned = format!("{MINIMAL}pooling = \"attention\"\nfinetune_layers = 2\n");
        let config = Config::from_toml_str(&tuned).unwrap();
        assert_eq!(config.text_encoder.pooling, Pooling::Attention);
    }

    #[test]
    fn character_ngrams_are_a_range_or_nothing() {
        let with = |value: &str| {
            let mut table: toml::Table = toml::from_str(MINIMAL).unwrap();
            apply_override(&mut table, &format!("model.lexical_char_ngrams={value}")).unwrap();
            Config::from_toml_str(&toml::to_string(&table).unwrap())
        };
        assert_eq!(with("[2, 5]").unwrap().model.lexical_char_ngrams, [2, 5]);
        assert!(with("[]").unwrap().model.lexical_char_ngrams.is_empty());
        for bad in ["[5, 2]", "[0, 3]", "[3]"] {
            let err = format!("{:#}", with(bad).unwrap_err());
            assert!(err.contains("lexical_char_ngrams"), "{bad}: {err}");
        }
    }

    #[test]
    fn ablation_switches_by_name() {
        let mut ablation = Ablation::default();
        for name in ABLATION_SWITCHES {
            let before = ablation.get(name).unwrap();
            ablation.set(name, !before).unwrap();
            assert_eq!(ablation.get(name), Some(!before));
        }
        assert!(ablation.set("nope", true).is_err());
        assert_eq!(Ablation::default().short_label(), "all on");
    }

    /// A field added to `Ablation` outside `ablation_switches!` would be missing from the
    /// name list (so from the pane, `get`/`set` and the sweep): the serialized default shows it.
    #[test]
    fn every_serialized_switch_is_listed() {
        let serialized = toml::Table::try_from(Ablation::default()).unwrap();
        let mut keys: Vec<&str> = serialized.keys().map(String::as_str).collect();
        let mut listed = ABLATION_SWITCHES.to_vec();
        keys.sort_unstable();
        listed.sort_unstable();
        assert_eq!(keys, listed);
        for switch in SWITCHES {
            assert_eq!(serialized[switch.name].as_bool(), Some(switch.default), "{}", switch.name);
        }
    }

    #[test]
    fn switches_left_out_of_the_config_take_their_declared_default() {
        let config = Config::from_toml_str(&format!("{MINIMAL}[ablation]\nmoe = false\n")).unwrap();
        assert!(!config.ablation.moe);
        assert_eq!(config.ablation, Ablation { moe: false, ..Ablation::default() });
        let opt_in: Vec<&str> = SWITCHES.iter().filter(|s| s.opt_in()).map(|s| s.name).collect();
        assert_eq!(opt_in, ["figurative", "lexical"]);
        assert!(SWITCHES
            .iter()
            .find(|s| s.name == "lexical")
            .unwrap()
            .doc
            .contains("lexical expert"));
    }

    #[test]
    fn labels_show_added_modules_then_removed_ones() {
        let ablation = Ablation {
            lexical: true,
            figurative: true,
            moe: false,
            ocr: false,
            ..Ablation::default()
        };
        assert_eq!(ablation.short_label(), "+figurative +lexical -ocr -moe");
    }
}
