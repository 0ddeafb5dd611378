//! Records the git commit memescope is built from (when built from a checkout) for the
//! provenance of its runs (without git, or outside a checkout, it is left empty), and lists
//! the bundled demo's files for `include_bytes!` (`src/demo.rs`), so that the binary carries
//! its demo wherever it is installed.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

/// Writes `$OUT_DIR/demo_files.rs`: `[(relative path, bytes)]` of `configs/demo.toml` and
/// every file under `assets/demo`, in a stable order.
fn embed_demo() {
    // Read when the script runs, not when it is compiled: checkouts that share a target
    // directory share this script's binary, and each must list its own files.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest_dir);
    let mut files = vec!["configs/demo.toml".to_string()];
    let mut pending = vec![root.join("assets/demo")];
    while let Some(dir) = pending.pop() {
        println!("cargo:rerun-if-changed={}", dir.display());
        for entry in std::fs::read_dir(&dir).expect("assets/demo is part of the source") {
            let path = entry.expect("listing assets/demo").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(root).expect("under the crate root");
                files.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    files.sort();
    let mut code = String::from("&[\n");
    for file in &files {
        println!("cargo:rerun-if-changed={file}");
        let absolute = root.join(file);
        code.push_str(&format!(
            "    ({file:?}, include_bytes!({:?})),\n",
            absolute.display().to_string()
        ));
    }
    code.push_str("]\n");
    let out =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("demo_files.rs");
    std::fs::write(out, code).expect("writing demo_files.rs");
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    embed_demo();
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_default();
    println!("cargo:rustc-env=MEMESCOPE_GIT_COMMIT={commit}");
    // Rebuild when HEAD moves: HEAD itself (a branch switch) and the branch's ref (a commit).
    let watched = [
        git(&["rev-parse", "--git-path", "HEAD"]),
        git(&["rev-parse", "--symbolic-full-name", "HEAD"])
            .and_then(|name| git(&["rev-parse", "--git-path", &name])),
        git(&["rev-parse", "--git-path", "packed-refs"]),
    ];
    for path in watched.into_iter().flatten() {
        if Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
