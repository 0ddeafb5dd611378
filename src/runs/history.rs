//! `metrics.csv`: one row per completed epoch (losses, F1s, learning rate), for pandas or a
//! spreadsheet without parsing events. The trainer appends a row as each epoch ends, so an
//! interrupted run keeps its completed epochs. A run directory from before this file existed
//! gets the same rows from its `events.jsonl`.

use std::fs::OpenOptions;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::events::{EpochRecord, TrainEvent};

/// The fixed columns before the per-class F1s (`f1_<label>`), and after them.
const LEADING: [&str; 6] =
    ["epoch", "train_loss", "val_loss", "macro_f1", "weighted_f1", "accuracy"];
const TRAILING: [&str; 2] = ["lr", "seconds"];
const CLASS_PREFIX: &str = "f1_";

/// One completed epoch, as a row of `metrics.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRow {
    /// 1-based.
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub macro_f1: f64,
    pub weighted_f1: f64,
    /// Single-label: accuracy; multi-label: exact-match ratio.
    pub accuracy: f64,
    /// Validation F1 of each class, in label order.
    pub class_f1: Vec<(String, f64)>,
    /// The head's learning rate at the epoch's last step; unknown for an epoch read from an
    /// event log without its steps.
    pub lr: Option<f64>,
    /// Wall time of the epoch, validation included.
    pub seconds: f64,
}

impl EpochRow {
    pub fn new(record: &EpochRecord, lr: Option<f64>) -> Self {
        Self {
            epoch: record.epoch,
            train_loss: f64::from(record.train_loss),
            val_loss: f64::from(record.val_loss),
            macro_f1: record.metrics.macro_f1,
            weighted_f1: record.metrics.weighted_f1,
            accuracy: record.metrics.accuracy,
            class_f1: record.metrics.per_class.iter().map(|c| (c.label.clone(), c.f1)).collect(),
            lr,
            seconds: record.seconds,
        }
    }

    /// The epochs an event log records, each with the learning rate of its last step. A
    /// resumed run redoes an epoch it had not completed: the later record wins.
    pub fn from_events(events: &[TrainEvent]) -> Vec<Self> {
        let mut rows: Vec<Self> = Vec::new();
        let mut last_lr = None;
        for event in events {
            match event {
                TrainEvent::Step(step) => last_lr = Some(step.lr),
                TrainEvent::Epoch(record) => {
                    rows.retain(|row| row.epoch < record.epoch);
                    rows.push(Self::new(record, last_lr));
                }
                _ => {}
            }
        }
        rows
    }

    fn header(&self) -> Vec<String> {
        let classes = self.class_f1.iter().map(|(label, _)| format!("{CLASS_PREFIX}{label}"));
        let fixed = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        fixed(&LEADING).into_iter().chain(classes).chain(fixed(&TRAILING)).collect()
    }

    fn record(&self) -> Vec<String> {
        let leading = [
            self.epoch.to_string(),
            self.train_loss.to_string(),
            self.val_loss.to_string(),
            self.macro_f1.to_string(),
            self.weighted_f1.to_string(),
            self.accuracy.to_string(),
        ];
        let classes = self.class_f1.iter().map(|(_, f1)| f1.to_string());
        let trailing =
            [self.lr.map_or_else(String::new, |lr| lr.to_string()), self.seconds.to_string()];
        leading.into_iter().chain(classes).chain(trailing).collect()
    }
}

/// Appends `row` to `path`, writing the header first when the file is new or empty.
pub fn append_epoch_row(path: &Path, row: &EpochRow) -> Result<()> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let is_new = file.metadata().map(|m| m.len() == 0).unwrap_or(true);
    let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(file);
    let written = (|| -> Result<()> {
        if is_new {
            writer.write_record(row.header())?;
        }
        writer.write_record(row.record())?;
        writer.flush()?;
        Ok(())
    })();
    written.with_context(|| format!("appending epoch {} to {}", row.epoch, path.display()))
}

/// The rows of `path`, one per epoch (the last row wins where a resumed run repeated one).
pub fn read_epoch_rows(path: &Path) -> Result<Vec<EpochRow>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("opening {}", path.display()))?;
    let header: Vec<String> = reader
        .headers()
        .with_context(|| format!("reading the header of {}", path.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    let column = |name: &str| -> Result<usize> {
        match header.iter().position(|h| h == name) {
            Some(index) => Ok(index),
            None => bail!("{}: the header has no `{name}` column", path.display()),
        }
    };
    let leading: Vec<usize> = LEADING.iter().map(|name| column(name)).collect::<Result<_>>()?;
    let (lr, seconds) = (column("lr")?, column("seconds")?);
    let classes: Vec<(usize, String)> = header
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.strip_prefix(CLASS_PREFIX).map(|label| (i, label.to_string())))
        .collect();
    let mut rows: Vec<EpochRow> = Vec::new();
    for (number, record) in reader.records().enumerate() {
        // Line 1 is the header.
        let line = number + 2;
        let record = record.with_context(|| format!("{}: line {line}", path.display()))?;
        let number = |index: usize| -> Result<f64> {
            let text = record.get(index).unwrap_or("");
            text.trim().parse().with_context(|| {
                format!(
                    "{}: line {line}, column `{}`: `{text}` is not a number",
                    path.display(),
                    header[index]
                )
            })
        };
        let row = EpochRow {
            epoch: number(leading[0])? as usize,
            train_loss: number(leading[1])?,
            val_loss: number(leading[2])?,
            macro_f1: number(leading[3])?,
            weighted_f1: number(leading[4])?,
            accuracy: number(leading[5])?,
            class_f1: classes
                .iter()
                .map(|(index, label)| Ok((label.clone(), number(*index)?)))
                .collect::<Result<_>>()?,
            lr: match record.get(lr).map(str::trim) {
                None | Some("") => None,
                Some(_) => Some(number(lr)?),
            },
            seconds: number(seconds)?,
        };
        rows.retain(|r| r.epoch < row.epoch);
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(epoch: usize, lr: Option<f64>) -> EpochRow {
        EpochRow {
            epoch,
            train_loss: 1.5,
            val_loss: 1.25,
            macro_f1: 0.5,
            weighted_f1: 0.625,
            accuracy: 0.75,
            class_f1: vec![("calm".into(), 0.25), ("very, sad".into(), 0.75)],
            lr,
            seconds: 2.0,
        }
    }

    #[test]
    fn rows_append_under_one_header_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        append_epoch_row(&path, &row(1, Some(1e-3))).unwrap();
        append_epoch_row(&path, &row(2, None)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            r#"epoch,train_loss,val_loss,macro_f1,weighted_f1,accuracy,f1_calm,"f1_very, sad",lr,seconds"#
        );
        assert_eq!(lines[1], "1,1.5,1.25,0.5,0.625,0.75,0.25,0.75,0.001,2");
        assert_eq!(lines.len(), 3);
        assert_eq!(read_epoch_rows(&path).unwrap(), vec![row(1, Some(1e-3)), row(2, None)]);
    }

    #[test]
    fn a_repeated_epoch_replaces_the_later_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        for epoch in [1, 2, 2] {
            append_epoch_row(&path, &row(epoch, Some(epoch as f64))).unwrap();
        }
        let epochs: Vec<usize> = read_epoch_rows(&path).unwrap().iter().map(|r| r.epoch).collect();
        assert_eq!(epochs, [1, 2]);
    }

    #[test]
    fn a_bad_cell_names_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        append_epoch_row(&path, &row(1, None)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap().replace("1.25", "x");
        std::fs::write(&path, text).unwrap();
        let error = format!("{:#}", read_epoch_rows(&path).unwrap_err());
        assert!(error.contains("metrics.csv: line 2, column `val_loss`"), "{error}");
    }
}
