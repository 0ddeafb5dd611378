//! The spread of a score over folds or seeds.

/// Mean and sample (n − 1) standard deviation; the deviation of one value is 0, and no
/// values give `(0, 0)`.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, variance.sqrt())
}

#[cfg(test)]
mod tests {
    use super::mean_std;

    #[test]
    fn mean_and_sample_standard_deviation() {
        let (mean, std) = mean_std(&[0.5, 0.7, 0.6]);
        assert!((mean - 0.6).abs() < 1e-12);
        assert!((std - 0.1).abs() < 1e-12, "sample std (n - 1): {std}");
        let (mean, std) = mean_std(&[0.5, 0.7]);
        assert!((mean - 0.6).abs() < 1e-12);
        assert!((std - 0.141_421_356).abs() < 1e-6);
        assert_eq!(mean_std(&[0.4]), (0.4, 0.0));
        assert_eq!(mean_std(&[]), (0.0, 0.0));
    }
}
