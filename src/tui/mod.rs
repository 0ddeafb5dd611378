//! STUB (integration placeholder): replaced by helper D.
pub async fn run_live(config: crate::config::Config) -> anyhow::Result<()> {
    let _ = config;
    todo!()
}
pub async fn run_watch(run: std::path::PathBuf) -> anyhow::Result<()> {
    let _ = run;
    todo!()
}
