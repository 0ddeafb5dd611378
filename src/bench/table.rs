//! The human-readable form of a [`BenchReport`].

use super::BenchReport;

pub fn render_table(report: &BenchReport) -> String {
    let mut rows: Vec<(String, String)> = vec![
        ("data".into(), report.data.clone()),
        ("text encoder".into(), report.text_encoder.clone()),
        ("device".into(), report.device.clone()),
        ("threads".into(), report.threads.to_string()),
        (
            "encode".into(),
            format!(
                "{} texts ({} tokens, max length {}, batch {}) in {:.2} s ({:.2} s of CPU)",
                report.texts,
                report.tokens,
                report.max_length,
                report.encode_batch_size,
                report.encode_seconds,
                report.encode_cpu_seconds
            ),
        ),
        ("encode texts/s".into(), format!("{:.1}", report.encode_texts_per_s)),
        ("encode tokens/s".into(), format!("{:.0}", report.encode_tokens_per_s)),
        ("head training samples/s".into(), format!("{:.0}", report.train_samples_per_s)),
        (
            "epoch".into(),
            format!(
                "{:.2} s (mean of {}, {} training samples; prepare {:.2} s; run {:.2} s of CPU)",
                report.epoch_seconds,
                report.epochs,
                report.train_samples,
                report.prepare_seconds,
                report.train_cpu_seconds
            ),
        ),
    ];
    if let Some(sweep) = &report.sweep {
        let failed = if sweep.failed.is_empty() {
            String::new()
        } else {
            format!("; failed: {}", sweep.failed.join(", "))
        };
        rows.push((
            "ablation sweep".into(),
            format!(
                "{:.1} s ({} runs, {} epochs{failed})",
                sweep.seconds, sweep.runs, sweep.epochs_run
            ),
        ));
    }
    rows.push(("peak memory".into(), format!("{:.0} MB", report.peak_memory_mb)));
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    rows.iter().map(|(name, value)| format!("{name:<width$}  {value}\n")).collect()
}
