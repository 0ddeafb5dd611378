//! Several trained runs used as one model. Each member featurises the samples as it was
//! trained (its own text encoder, its own image encoder) and scores them with its best
//! checkpoint; the members' probabilities are averaged. This is how an ensemble across
//! encoders (MiniLM + MPNet, the best cross-validated AxiOM setup) is used on new data: a
//! run has one text encoder, so such members cannot share one run.
//!
//! Multi-label: the decision thresholds are chosen again, as a run chooses its own, on the
//! members' averaged validation predictions (each run's `predictions.jsonl`, its best
//! epoch's); the members must have been validated on the same samples. A single run keeps
//! the thresholds it chose, so an ensemble of one is exactly that run.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::averaged::{mean_probabilities, score_members, shared_thresholds};
use super::evaluate::decide;
use super::prepare::prepare_eval;
use super::trained::{load_trained_run, Evaluation, TrainedRun};
use crate::data::{Dataset, LabelSpace};
use crate::events::TrainEvent;
use crate::features::Features;
use crate::runs::{read_json, Report, RunDir};

/// Why a run's `predictions.jsonl` may be missing.
const NO_EPOCH: &str = "the run has no completed epoch";

pub struct RunEnsemble {
    /// In the order given.
    pub members: Vec<TrainedRun>,
    /// The members' shared label space.
    pub space: LabelSpace,
    /// Multi-label decision thresholds (see the module documentation).
    pub thresholds: Option<Vec<f32>>,
}

/// Loads the runs in `run_dirs` (at least one) as one ensemble.
pub fn load_run_ensemble(run_dirs: &[PathBuf]) -> Result<RunEnsemble> {
    if run_dirs.is_empty() {
        bail!("no run given");
    }
    let members = run_dirs.iter().map(|dir| load_trained_run(dir)).collect::<Result<Vec<_>>>()?;
    check_shared_labels(members.iter().map(|m| (m.run.path.as_path(), &m.space)))?;
    let space = members[0].space.clone();
    let thresholds = match (space.multi_label, members.as_slice()) {
        (false, _) => None,
        (true, [single]) => single.report.thresholds.clone(),
        (true, _) => Some(
            shared_thresholds(&runs_of(&members), &space, NO_EPOCH)
                .context("choosing the ensemble's thresholds on its runs' validation samples")?,
        ),
    };
    Ok(RunEnsemble { members, space, thresholds })
}

/// Refuses runs (path and label space, in order) whose labels differ from the first's,
/// naming both.
fn check_shared_labels<'a>(
    mut runs: impl Iterator<Item = (&'a Path, &'a LabelSpace)>,
) -> Result<()> {
    let Some((first_path, first)) = runs.next() else { return Ok(()) };
    for (path, space) in runs {
        if space != first {
            bail!(
                "{} labels {} memes ({}), {} labels {} memes ({}): an ensemble's runs must \
                 share their labels",
                first_path.display(),
                first.name,
                first.labels.join(", "),
                path.display(),
                space.name,
                space.labels.join(", ")
            );
        }
    }
    Ok(())
}

impl RunEnsemble {
    /// Whether any member reads the memes' text (so each sample needs it).
    pub fn reads_text(&self) -> bool {
        self.members.iter().any(TrainedRun::reads_text)
    }

    /// The members' mean per-label probabilities; `features_for` featurises the samples
    /// for one member, as that member was trained.
    pub fn probabilities(
        &self,
        mut features_for: impl FnMut(&TrainedRun) -> Result<Features>,
    ) -> Result<Vec<Vec<f32>>> {
        let each = self
            .members
            .iter()
            .map(|member| member.probabilities(&features_for(member)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(mean_probabilities(&each))
    }

    /// The labels decided from `probabilities`: the most probable one (single-label), or
    /// every label at or above its threshold (multi-label).
    pub fn decide(&self, probabilities: &[Vec<f32>]) -> Vec<Vec<usize>> {
        decide(probabilities, self.space.multi_label, self.thresholds.as_deref())
    }

    /// The metrics, and each sample's prediction, on the labelled file `data` (its images
    /// in `images`).
    pub fn evaluate(
        &self,
        data: &Path,
        images: Option<&Path>,
        emit: &mut dyn FnMut(TrainEvent),
    ) -> Result<Evaluation> {
        let mut dataset: Option<Dataset> = None;
        let probabilities = self.probabilities(|member| {
            let split = prepare_eval(&member.config, data, images, &member.device, emit)?;
            match &dataset {
                None => dataset = Some(split.dataset),
                Some(first) if !same_ids(first, &split.dataset) => bail!(
                    "{} reads other records from {} than {} does (check the runs' [data] \
                     settings)",
                    member.run.path.display(),
                    data.display(),
                    self.members[0].run.path.display()
                ),
                Some(_) => {}
            }
            Ok(split.features)
        })?;
        let dataset = dataset.expect("an ensemble has at least one member");
        let predicted = self.decide(&probabilities);
        Ok(Evaluation::of(&self.space, &dataset, &probabilities, &predicted))
    }
}

fn same_ids(a: &Dataset, b: &Dataset) -> bool {
    a.samples.len() == b.samples.len()
        && a.samples.iter().zip(&b.samples).all(|(x, y)| x.sample_id == y.sample_id)
}

/// The metrics of the runs in `run_dirs`, averaged as one ensemble (one run: that run), on
/// the labelled file `data` (its images in `images`).
pub fn evaluate_runs(
    run_dirs: &[PathBuf],
    data: &Path,
    images: Option<&Path>,
) -> Result<Evaluation> {
    let ensemble = load_run_ensemble(run_dirs)?;
    let mut log = |event| tracing::info!(?event, "eval");
    ensemble.evaluate(data, images, &mut log)
}

fn runs_of(members: &[TrainedRun]) -> Vec<RunDir> {
    members.iter().map(|m| m.run.clone()).collect()
}

/// How several trained runs do together on their shared validation samples, from the
/// predictions each run kept (`predictions.jsonl`, its best epoch's); nothing is loaded or
/// scored again. Multi-label thresholds are chosen on the same samples, as a run's are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationEnsemble {
    /// The runs averaged, in the order given.
    pub members: Vec<PathBuf>,
    /// Validation samples scored.
    pub samples: usize,
    /// Each run's own validation macro-F1 (its `report.json`).
    pub member_macro_f1: Vec<f64>,
    pub macro_f1: f64,
    pub weighted_f1: f64,
}

/// Averages the validation predictions of the runs in `run_dirs` (two or more) and scores
/// the average.
pub fn ensemble_validations(run_dirs: &[PathBuf]) -> Result<ValidationEnsemble> {
    if run_dirs.len() < 2 {
        bail!("an ensemble needs at least two run directories");
    }
    let runs = run_dirs.iter().map(|dir| RunDir::open(dir)).collect::<Result<Vec<_>>>()?;
    let reports =
        runs.iter().map(|run| read_json::<Report>(&run.report())).collect::<Result<Vec<_>>>()?;
    let spaces: Vec<LabelSpace> = reports.iter().map(Report::label_space).collect();
    check_shared_labels(runs.iter().map(|r| r.path.as_path()).zip(&spaces))?;
    let (samples, macro_f1, weighted_f1) = score_members(&runs, RunDir::predictions, NO_EPOCH)?;
    Ok(ValidationEnsemble {
        members: run_dirs.to_vec(),
        samples,
        member_macro_f1: reports.iter().map(|r| r.macro_f1).collect(),
        macro_f1,
        weighted_f1,
    })
}
