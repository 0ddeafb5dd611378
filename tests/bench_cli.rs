//! `memescope bench --json` end to end, on generated records and a tiny random BERT.

use std::process::Command;

use serde_json::Value;

#[test]
fn bench_json_reports_positive_rates_and_dumps_embeddings() {
    let dir = tempfile::tempdir().unwrap();
    let bert = dir.path().join("tiny-bert");
    memescope::testing::write_tiny_bert(&bert).unwrap();
    let config = dir.path().join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "[data]\nformat = \"axiom\"\ntrain = \"unused.json\"\n\
             [text_encoder]\nmodel = \"{}\"\nmax_length = 32\nlayers = 2\npooling = \"mean\"\n\
             [model]\nfusion_dim = 16\nheads = 2\nexperts = 2\n\
             [train]\nepochs = 1\nbatch_size = 8\n",
            bert.display()
        ),
    )
    .unwrap();
    let dump = dir.path().join("embeddings.npy");
    // Generated records, passed explicitly: whether ../shared/data exists depends on where
    // the checkout (and the temp dir) happen to live.
    let records = dir.path().join("generated-records.json");
    memescope::bench::write_axiom_records(&records, 60, 7).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_memescope"))
        .current_dir(dir.path())
        .args(["bench", "--json", "--limit", "40", "--epochs", "2", "--sweep", "--device", "cpu"])
        .arg("--config")
        .arg(&config)
        .arg("--data")
        .arg(&records)
        .arg("--dump-embeddings")
        .arg(&dump)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed: {stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("stdout is one JSON object");

    assert!(report["data"].as_str().unwrap().contains("generated-records.json"), "{report}");
    assert_eq!(report["texts"], 40);
    assert_eq!(report["device"], "cpu", "{report}");
    assert_eq!(report["epochs"], 2);
    for field in [
        "encode_texts_per_s",
        "encode_tokens_per_s",
        "encode_seconds",
        "train_samples_per_s",
        "epoch_seconds",
        "peak_memory_mb",
    ] {
        let value = report[field].as_f64().unwrap_or_else(|| panic!("{field} missing: {report}"));
        assert!(value > 0.0, "{field} = {value}");
    }
    for field in ["encode_cpu_seconds", "train_cpu_seconds"] {
        // CPU time has a 10 ms resolution, so a tiny run may round to zero.
        assert!(report[field].as_f64().is_some_and(|v| v >= 0.0), "{field}: {report}");
    }
    assert!(report["tokens"].as_u64().unwrap() > 40 * 2, "at least the special tokens");
    // The validation split keeps 1/8 of the records out of training.
    assert_eq!(report["train_samples"], 35);
    // All on and six modules off; "-ocr" has nothing to learn from without images.
    assert_eq!(report["sweep"]["runs"], 7);
    assert_eq!(report["sweep"]["failed"], serde_json::json!(["+lexical -ocr"]));
    assert!(report["sweep"]["seconds"].as_f64().unwrap() > 0.0);

    // (40 texts, 2 layers, 32 wide) f32 after the 64-byte-aligned header.
    let bytes = std::fs::read(&dump).unwrap();
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(header.contains("'shape': (40, 2, 32)"), "{header}");
    assert_eq!(bytes.len() - 10 - header_len, 40 * 2 * 32 * 4);
}

/// `--device cuda` in a build without CUDA stops with how to get one, instead of quietly
/// benchmarking the CPU.
#[cfg(not(feature = "cuda"))]
#[test]
fn bench_on_cuda_without_the_cuda_build_says_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records.json");
    memescope::bench::write_axiom_records(&records, 8, 7).unwrap();
    let config = dir.path().join("bench.toml");
    std::fs::write(
        &config,
        "[data]\nformat = \"axiom\"\ntrain = \"unused.json\"\n\
         [text_encoder]\nmodel = \"unused\"\nmax_length = 32\nlayers = 2\npooling = \"mean\"\n\
         [model]\nfusion_dim = 16\nheads = 2\nexperts = 2\n",
    )
    .unwrap();
    let bench = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_memescope"))
            .current_dir(dir.path())
            .args(["bench", "--config"])
            .arg(&config)
            .arg("--data")
            .arg(&records)
            .args(args)
            .output()
            .unwrap();
        assert!(!output.status.success(), "bench ran: {args:?}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = bench(&["--device", "cuda"]);
    assert!(stderr.contains("--features cuda"), "{stderr}");
    // bf16 is checked against the device asked for on the command line, not the config's
    // (CPU) one: the refusal is the missing CUDA build, not "bf16 needs CUDA".
    let stderr = bench(&["--device", "cuda", "--set", "train.precision=\"bf16\""]);
    assert!(stderr.contains("--features cuda"), "{stderr}");
    let stderr = bench(&["--device", "cpu", "--set", "train.precision=\"bf16\""]);
    assert!(stderr.contains("is mixed precision for CUDA"), "{stderr}");
}

/// `bench --finetune-export DIR --json`: the epoch's files land in DIR, and the report on
/// stdout is the `memescope.json` written beside them.
#[test]
fn finetune_export_writes_the_epoch_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let bert = dir.path().join("tiny-bert");
    memescope::testing::write_tiny_bert(&bert).unwrap();
    let records = dir.path().join("records.json");
    memescope::bench::write_axiom_records(&records, 40, 5).unwrap();
    let config = dir.path().join("finetune.toml");
    std::fs::write(
        &config,
        format!(
            "[data]\nformat = \"axiom\"\ntrain = \"{}\"\n\
             [text_encoder]\nmodel = \"{}\"\nmax_length = 24\nfinetune_layers = 1\n\
             layers = 2\npooling = \"mean\"\n\
             [model]\nfusion_dim = 16\nheads = 2\nexperts = 2\n\
             [train]\nbatch_size = 8\n",
            records.display(),
            bert.display()
        ),
    )
    .unwrap();
    let out = dir.path().join("epoch");
    let output = Command::new(env!("CARGO_BIN_EXE_memescope"))
        .current_dir(dir.path())
        .args(["bench", "--json", "--limit", "24", "--config"])
        .arg(&config)
        .arg("--finetune-export")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench --finetune-export failed: {stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("stdout is one JSON object");
    // 24 records, 3 kept for validation: 21 training samples in 3 batches of at most 8.
    assert_eq!((report["train_samples"].as_u64(), report["steps"].as_u64()), (Some(21), Some(3)));
    assert_eq!(report["step_losses"].as_array().map(Vec::len), Some(3), "{report}");
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("memescope.json")).unwrap())
            .unwrap();
    assert_eq!(written, report);
    for file in ["initial.safetensors", "batches.safetensors", "hyperparams.json"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
}
