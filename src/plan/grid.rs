//! A grid over config keys: every combination of the listed values, like `--set` each.

use anyhow::{bail, Result};

use super::Plan;
use crate::config::{parse_value, split_assignment, Assignment};

/// One key of a grid and the values it takes, parsed from `section.key=v1,v2,…`.
#[derive(Debug, Clone, PartialEq)]
pub struct GridAxis {
    pub key: String,
    pub values: Vec<toml::Value>,
}

impl GridAxis {
    /// Values are read like a `--set` value (TOML, else a bare string) and separated by
    /// commas outside brackets and quotes, so `model.lexical_char_ngrams=[1,3],[2,4]` has
    /// two values.
    pub fn parse(text: &str) -> Result<Self> {
        let (key, values) = split_assignment(text, "--grid expects section.key=v1,v2,…")?;
        let values: Vec<toml::Value> =
            split_top_level(values).into_iter().map(parse_value).collect();
        if values.iter().any(|v| v.as_str().is_some_and(str::is_empty)) {
            bail!("empty value in --grid `{text}`");
        }
        Ok(Self { key: key.to_string(), values })
    }
}

/// Splits at commas that are not inside `[]`, `{}` or quotes.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut depth, mut quote, mut start, mut parts) = (0i32, None, 0, Vec::new());
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

impl Plan {
    /// Every run of the plan crossed with every combination of the axes' values (the first
    /// axis varies slowest). Each combination goes through the config's checks: a value
    /// the config refuses is an error here, before any run starts.
    pub fn with_grid(self, axes: &[GridAxis]) -> Result<Plan> {
        for (i, axis) in axes.iter().enumerate() {
            if axes[..i].iter().any(|earlier| earlier.key == axis.key) {
                bail!("--grid names {} twice", axis.key);
            }
        }
        let mut combinations: Vec<Vec<Assignment>> = vec![Vec::new()];
        for axis in axes {
            combinations = combinations
                .iter()
                .flat_map(|combination| {
                    axis.values.iter().map(move |value| {
                        let mut next = combination.clone();
                        next.push(Assignment { key: axis.key.clone(), value: value.clone() });
                        next
                    })
                })
                .collect();
        }
        let mut runs = Vec::new();
        for run in &self.runs {
            for assignments in &combinations {
                let label: Vec<String> = assignments.iter().map(ToString::to_string).collect();
                runs.push(run.assigned(&label.join(" "), assignments)?);
            }
        }
        Ok(Plan { runs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::plan::test_base as base;

    fn axis(text: &str) -> GridAxis {
        GridAxis::parse(text).unwrap()
    }

    #[test]
    fn values_split_at_top_level_commas_and_read_as_toml() {
        let ngrams = axis("model.lexical_char_ngrams=[1,3],[2, 4]");
        assert_eq!(ngrams.values.len(), 2);
        assert_eq!(ngrams.values[1].to_string(), "[2, 4]");
        let models = axis(r#"text_encoder.model=a/b,"c,d""#);
        let models: Vec<String> = models.values.iter().map(ToString::to_string).collect();
        assert_eq!(models, [r#""a/b""#, r#""c,d""#]);
        assert_eq!(axis("train.lr=1e-3,0.01").values[0], toml::Value::Float(1e-3));
        assert!(GridAxis::parse("train.lr").is_err());
        assert!(GridAxis::parse("train.lr=1e-3,").is_err(), "an empty value");
    }

    #[test]
    fn grid_is_the_cartesian_product_first_axis_slowest() {
        let plan = Plan::base(base())
            .with_grid(&[axis("train.lr=1e-3,1e-2"), axis("model.experts=2,4,8")])
            .unwrap();
        assert_eq!(plan.len(), 6);
        assert_eq!(plan.runs[0].label, "train.lr=0.001 model.experts=2");
        assert_eq!(plan.runs[5].label, "train.lr=0.01 model.experts=8");
        assert_eq!(plan.runs[4].config.train.lr, 1e-2);
        assert_eq!(plan.runs[4].config.model.experts, 4);
        assert!(plan.runs.iter().all(|run| run.config.train.epochs == 3), "the base is kept");
    }

    #[test]
    fn invalid_values_and_unknown_keys_are_refused() {
        let refused = |text: &str| {
            let err = Plan::base(base()).with_grid(&[axis(text)]).unwrap_err();
            format!("{err:#}")
        };
        let err = refused("train.epochs=2,many");
        assert!(err.contains("train.epochs=\"many\"") && err.contains("invalid type"), "{err}");
        let err = refused("model.heads=4,5");
        assert!(err.contains("divisible"), "{err}");
        assert!(refused("train.epohcs=1,2").contains("unknown field"));
        let twice = Plan::base(base()).with_grid(&[axis("train.lr=1"), axis("train.lr=2")]);
        assert!(twice.is_err());
    }

    #[test]
    fn grid_composes_with_leave_one_out() {
        let plan = Plan::base(base())
            .with_grid(&[axis("train.lr=1e-3,1e-2")])
            .unwrap()
            .with_leave_one_out(false);
        let sweep = Plan::leave_one_out(&base(), false).len();
        assert_eq!(plan.len(), 2 * sweep);
        assert_eq!(plan.runs[1].label, "train.lr=0.001 +lexical -image");
        assert_eq!(plan.runs[sweep].config.train.lr, 1e-2);
        for run in &plan.runs {
            assert_eq!(base().with_assignments(&run.assignments).unwrap(), run.config);
        }
    }
}
