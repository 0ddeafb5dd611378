//! Every shipped config parses, and the reference configs describe the reference setup.

use memescope::config::Config;

fn load(name: &str) -> Config {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs").join(name);
    Config::load(&path, &[]).unwrap_or_else(|e| panic!("{name}: {e:#}"))
}

#[test]
fn shipped_configs_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            Config::load(&path, &[]).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            seen += 1;
        }
    }
    assert!(seen >= 5, "expected the demo, text-only and reference configs");
}

#[test]
fn reference_configs_use_mental_roberta_and_clip() {
    for name in ["axiom.toml", "restore.toml"] {
        let config = load(name);
        assert_eq!(config.text_encoder.model, "mental/mental-roberta-base", "{name}");
        assert_eq!(config.vision_encoder.model.as_deref(), Some("openai/clip-vit-base-patch32"));
        assert_eq!(config.text_encoder.layers, 3);
        assert_eq!(config.model.contrastive_weight, 0.3);
    }
    assert!(load("restore.toml").data.validation.is_some());
}

#[test]
fn overrides_apply_on_top_of_a_file() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/demo.toml");
    let config =
        Config::load(&path, &["ablation.moe=false".into(), "train.epochs=2".into()]).unwrap();
    assert!(!config.ablation.moe);
    assert_eq!(config.train.epochs, 2);
}

#[test]
fn the_demo_config_finds_its_data_from_any_working_directory() {
    // Its paths are written relative to configs/, not to the directory memescope runs in.
    let config = load("demo.toml");
    assert!(config.data.train.is_absolute() && config.data.train.is_file());
    assert!(config.data.images.as_deref().is_some_and(std::path::Path::is_dir));
}
