//! Learning-rate schedules.

use crate::config::{Schedule, TrainConfig};

/// Linear warmup then linear decay (or constant, for reduce-on-plateau), times a scale
/// that reduce-on-plateau lowers.
#[derive(Debug, Clone)]
pub struct LrSchedule {
    base: f64,
    warmup_steps: usize,
    total_steps: usize,
    kind: Schedule,
}

impl LrSchedule {
    pub fn new(config: &TrainConfig, total_steps: usize) -> Self {
        let warmup_steps = (config.warmup * total_steps as f64).round() as usize;
        Self {
            base: config.lr,
            warmup_steps,
            total_steps: total_steps.max(1),
            kind: config.schedule,
        }
    }

    /// Steps of linear warmup at the start.
    pub fn warmup_steps(&self) -> usize {
        self.warmup_steps
    }

    /// The learning rate for 0-based `step`.
    pub fn at(&self, step: usize, scale: f64) -> f64 {
        if step < self.warmup_steps {
            return self.base * scale * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let factor = match self.kind {
            Schedule::ReduceOnPlateau => 1.0,
            Schedule::WarmupLinear => {
                let decay_steps = (self.total_steps - self.warmup_steps).max(1) as f64;
                (1.0 - (step - self.warmup_steps) as f64 / decay_steps).max(0.0)
            }
        };
        self.base * scale * factor
    }
}

/// Reduce-on-plateau: halve the rate after `patience` epochs without improvement.
pub fn plateau_scale(kind: Schedule, scale: f64, epochs_without_improvement: usize) -> f64 {
    const PATIENCE: usize = 2;
    if kind == Schedule::ReduceOnPlateau
        && epochs_without_improvement > 0
        && epochs_without_improvement.is_multiple_of(PATIENCE)
    {
        (scale * 0.5).max(1e-3)
    } else {
        scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_linear_decay() {
        let config = TrainConfig { lr: 1.0, warmup: 0.1, ..Default::default() };
        let schedule = LrSchedule::new(&config, 100);
        assert!((schedule.at(0, 1.0) - 0.1).abs() < 1e-12);
        assert!((schedule.at(9, 1.0) - 1.0).abs() < 1e-12);
        assert!((schedule.at(10, 1.0) - 1.0).abs() < 1e-12);
        assert!((schedule.at(55, 1.0) - 0.5).abs() < 1e-12);
        assert!(schedule.at(99, 1.0) > 0.0 && schedule.at(99, 1.0) < 0.02);
    }

    #[test]
    fn plateau_halves_every_second_bad_epoch() {
        let kind = Schedule::ReduceOnPlateau;
        assert_eq!(plateau_scale(kind, 1.0, 1), 1.0);
        assert_eq!(plateau_scale(kind, 1.0, 2), 0.5);
        assert_eq!(plateau_scale(Schedule::WarmupLinear, 1.0, 2), 1.0);
    }
}
