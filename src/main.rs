fn main() -> anyhow::Result<()> {
    memescope::cli::main()
}
