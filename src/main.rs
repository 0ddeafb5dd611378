fn main() -> anyhow::Result<std::process::ExitCode> {
    memescope::cli::main()
}
