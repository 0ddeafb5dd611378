//! The Runs pane's rows: the known runs, repeats of one setup (runs differing only by
//! seed) folded into one row with mean ± std, sorted by any column. No drawing here.

use std::cmp::Ordering;

use super::known_runs::{KnownRun, KnownRuns};

/// The columns a table can be sorted by, in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Id,
    Label,
    MacroF1,
    WeightedF1,
    Time,
    Status,
}

impl Column {
    pub const ALL: [Column; 6] = [
        Column::Id,
        Column::Label,
        Column::MacroF1,
        Column::WeightedF1,
        Column::Time,
        Column::Status,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Column::Id => "id",
            Column::Label => "label",
            Column::MacroF1 => "macro F1",
            Column::WeightedF1 => "weighted F1",
            Column::Time => "time",
            Column::Status => "status",
        }
    }

    pub fn next(self) -> Column {
        let at = Column::ALL.iter().position(|&c| c == self).expect("listed");
        Column::ALL[(at + 1) % Column::ALL.len()]
    }
}

/// A mean over the runs of a row that have the value, with the spread when there are two
/// or more.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub mean: f64,
    /// Sample standard deviation; `None` for a single value.
    pub std: Option<f64>,
}

impl Stat {
    pub fn of(values: impl Iterator<Item = f64>) -> Option<Stat> {
        let values: Vec<f64> = values.collect();
        if values.is_empty() {
            return None;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.len() > 1)
            .then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
        Some(Stat { mean, std })
    }

    pub fn text(stat: Option<Stat>) -> String {
        match stat {
            None => "—".to_string(),
            Some(Stat { mean, std: None }) => format!("{mean:.3}"),
            Some(Stat { mean, std: Some(std) }) => format!("{mean:.3}±{std:.3}"),
        }
    }
}

/// One row of the table: a run, or the repeats of one setup.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    /// The runs it stands for, in listing order (one unless grouped).
    pub ids: Vec<String>,
    pub label: String,
    pub macro_f1: Option<Stat>,
    pub weighted_f1: Option<Stat>,
    /// Mean F1 per class over the runs, by label.
    pub per_class: Vec<(String, f64)>,
    /// Total training time of its runs.
    pub seconds: Option<f64>,
    pub status: String,
}

impl RunRow {
    fn of(runs: &[&KnownRun], grouped: bool) -> RunRow {
        let first = runs[0];
        let label = if grouped {
            format!("{} ×{} runs", first.seedless, runs.len())
        } else {
            first.label.clone()
        };
        let mut per_class: Vec<(String, f64)> = Vec::new();
        for (class, _) in &first.per_class {
            let stat = Stat::of(runs.iter().filter_map(|run| {
                run.per_class.iter().find(|(l, _)| l == class).map(|(_, f1)| *f1)
            }));
            if let Some(stat) = stat {
                per_class.push((class.clone(), stat.mean));
            }
        }
        let statuses: Vec<&str> = runs.iter().map(|run| run.status.label()).collect();
        let status = if statuses.iter().all(|s| *s == statuses[0]) {
            statuses[0].to_string()
        } else if statuses.iter().any(|s| *s == "running" || *s == "preparing") {
            "running".to_string()
        } else {
            "mixed".to_string()
        };
        let seconds: Vec<f64> = runs.iter().filter_map(|run| run.seconds).collect();
        RunRow {
            ids: runs.iter().map(|run| run.id.clone()).collect(),
            label,
            macro_f1: Stat::of(runs.iter().filter_map(|run| run.macro_f1)),
            weighted_f1: Stat::of(runs.iter().filter_map(|run| run.weighted_f1)),
            per_class,
            seconds: (!seconds.is_empty()).then(|| seconds.iter().sum()),
            status,
        }
    }

    pub fn id(&self) -> &str {
        &self.ids[0]
    }

    pub fn is_group(&self) -> bool {
        self.ids.len() > 1
    }
}

/// How the table is built: grouped by seed or not, sorted by a column or in listing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowOrder {
    pub group_seeds: bool,
    pub sort: Column,
    pub descending: bool,
}

impl Default for RowOrder {
    fn default() -> Self {
        Self { group_seeds: true, sort: Column::Id, descending: false }
    }
}

impl RowOrder {
    /// The rows of `runs`, skipping `hidden` ids. With grouping on, runs sharing their
    /// seedless label (and a known config) become one row where the first of them was.
    pub fn rows(&self, runs: &KnownRuns, hidden: &[String]) -> Vec<RunRow> {
        let visible: Vec<&KnownRun> =
            runs.rows.iter().filter(|run| !hidden.contains(&run.id)).collect();
        let mut groups: Vec<Vec<&KnownRun>> = Vec::new();
        for run in visible {
            let same_setup = |group: &Vec<&KnownRun>| {
                self.group_seeds
                    && run.config.is_some()
                    && group[0].config.is_some()
                    && group[0].seedless == run.seedless
            };
            match groups.iter_mut().find(|group| same_setup(group)) {
                Some(group) => group.push(run),
                None => groups.push(vec![run]),
            }
        }
        let mut rows: Vec<RunRow> =
            groups.iter().map(|group| RunRow::of(group, group.len() > 1)).collect();
        rows.sort_by(|a, b| {
            let order = compare(a, b, self.sort);
            if self.descending {
                order.reverse()
            } else {
                order
            }
        });
        rows
    }
}

fn compare(a: &RunRow, b: &RunRow, column: Column) -> Ordering {
    let number = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        // Rows without a value go last whichever way the numbers are sorted.
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    match column {
        Column::Id => a.id().cmp(b.id()),
        Column::Label => a.label.cmp(&b.label),
        Column::MacroF1 => number(a.macro_f1.map(|s| s.mean), b.macro_f1.map(|s| s.mean)),
        Column::WeightedF1 => number(a.weighted_f1.map(|s| s.mean), b.weighted_f1.map(|s| s.mean)),
        Column::Time => number(a.seconds, b.seconds),
        Column::Status => a.status.cmp(&b.status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_the_sample_standard_deviation() {
        let stat = Stat::of([0.70, 0.72, 0.74].into_iter()).unwrap();
        assert!((stat.mean - 0.72).abs() < 1e-12);
        assert!((stat.std.unwrap() - 0.02).abs() < 1e-12);
        assert_eq!(Stat::text(Some(stat)), "0.720±0.020");
        assert_eq!(Stat::of([0.5].into_iter()).unwrap().std, None);
        assert_eq!(Stat::of(std::iter::empty()), None);
    }
}
