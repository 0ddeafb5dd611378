//! The two label spaces the project knows and how each dataset file names its labels.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetFormat {
    /// AxiOM: anxiety, 6 classes, one per meme, field `meme_anxiety_category`.
    Axiom,
    /// RESTORE: depression, 7 labels, a list per meme, field `meme_depressive_categories`.
    Restore,
}

pub const AXIOM_LABELS: [&str; 6] = [
    "Nervousness",
    "Lack of Worry Control",
    "Excessive Worry",
    "Difficulty Relaxing",
    "Restlessness",
    "Impending Doom",
];

pub const RESTORE_LABELS: [&str; 7] = [
    "Lack of Interest",
    "Feeling Down",
    "Eating Disorder",
    "Sleeping Disorder",
    "Concentration Problem",
    "Low Self-Esteem",
    "Self-Harm",
];

impl DatasetFormat {
    pub fn label_space(self) -> LabelSpace {
        let (name, labels, multi_label): (&str, &[&str], bool) = match self {
            DatasetFormat::Axiom => ("AxiOM", &AXIOM_LABELS, false),
            DatasetFormat::Restore => ("RESTORE", &RESTORE_LABELS, true),
        };
        LabelSpace {
            name: name.to_string(),
            labels: labels.iter().map(|s| s.to_string()).collect(),
            multi_label,
        }
    }

    /// The JSON field that holds the label(s).
    pub fn label_field(self) -> &'static str {
        match self {
            DatasetFormat::Axiom => "meme_anxiety_category",
            DatasetFormat::Restore => "meme_depressive_categories",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSpace {
    pub name: String,
    pub labels: Vec<String>,
    pub multi_label: bool,
}

impl LabelSpace {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn index_of(&self, label: &str) -> Option<usize> {
        self.labels.iter().position(|l| l == label)
    }
}
