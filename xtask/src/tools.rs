//! Trunk and wasm-bindgen-cli, installed once into cargo's bin directory at exact versions.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::cmd;

pub const TRUNK_VERSION: &str = "0.21.14";
/// Used while Cargo.lock has no `wasm-bindgen` yet (the page's crates are not in yet); the
/// newest on crates.io when this was written. Once the lock has one, the lock decides.
pub const DEFAULT_WASM_BINDGEN_VERSION: &str = "0.2.130";

/// `trunk` at [`TRUNK_VERSION`].
pub fn trunk() -> Result<()> {
    if installed("trunk", TRUNK_VERSION) {
        println!("setup: trunk {TRUNK_VERSION} present");
        return Ok(());
    }
    println!(
        "setup: installing trunk {TRUNK_VERSION} (cargo install; about 16 minutes cold on 2 cores)"
    );
    // 0.22 needs a newer rustc than ours; --locked keeps its tested dependency versions.
    cmd::run(
        cmd::cargo()
            .args(["install", "trunk", "--quiet", "--locked", "--version"])
            .arg(format!("={TRUNK_VERSION}")),
    )?;
    check_installed("trunk", TRUNK_VERSION)
}

/// `wasm-bindgen` at `version`, which must equal the `wasm-bindgen` crate the page links.
pub fn wasm_bindgen(version: &str) -> Result<()> {
    if installed("wasm-bindgen", version) {
        println!("setup: wasm-bindgen-cli {version} present");
        return Ok(());
    }
    println!("setup: installing wasm-bindgen-cli {version} (cargo install; about 3 minutes)");
    let exact = format!("={version}");
    let locked = cmd::capture(
        cmd::cargo()
            .args([
                "install",
                "wasm-bindgen-cli",
                "--quiet",
                "--locked",
                "--version",
            ])
            .arg(&exact),
    )?;
    if !locked.status.success() {
        // Its lockfile has named versions that crates.io lacks (webpki-roots for 0.2.130).
        println!(
            "setup: wasm-bindgen-cli {version} did not build with --locked ({}); retrying without",
            cmd::error_line(&locked)
        );
        cmd::run(
            cmd::cargo()
                .args(["install", "wasm-bindgen-cli", "--quiet", "--version"])
                .arg(&exact),
        )?;
    }
    check_installed("wasm-bindgen", version)
}

/// Whether `name --version` prints `name <version>`.
fn installed(name: &str, version: &str) -> bool {
    cmd::find_cargo_tool(name)
        .and_then(|path| cmd::version_of(&path))
        .is_some_and(|line| line.split_whitespace().nth(1) == Some(version))
}

fn check_installed(name: &str, version: &str) -> Result<()> {
    if !installed(name, version) {
        bail!("`cargo install` finished but `{name} --version` does not print {version}");
    }
    if cmd::find_on_path(name).is_none() {
        println!(
            "setup: note: {name} is in {} which is not on PATH",
            cmd::cargo_bin_dir().map_or_else(
                || "cargo's bin directory".into(),
                |d| d.display().to_string()
            )
        );
    }
    Ok(())
}

/// The version of wasm-bindgen to install: the one in the workspace's Cargo.lock, else the
/// `--wasm-bindgen-version` asked for, else [`DEFAULT_WASM_BINDGEN_VERSION`].
pub fn wasm_bindgen_version(root: &Path, asked: Option<&str>) -> Result<(String, &'static str)> {
    let lock_path = root.join("Cargo.lock");
    let lock = fs::read_to_string(&lock_path)
        .with_context(|| format!("cannot read {}", lock_path.display()))?;
    let locked = lock_versions(&lock, "wasm-bindgen");
    match (locked.as_slice(), asked) {
        ([], Some(asked)) => Ok((asked.to_owned(), "--wasm-bindgen-version")),
        ([], None) => Ok((
            DEFAULT_WASM_BINDGEN_VERSION.to_owned(),
            "default, Cargo.lock has none",
        )),
        ([one], Some(asked)) if one != asked => bail!(
            "Cargo.lock has wasm-bindgen {one} but --wasm-bindgen-version asks for {asked}: the \
             CLI must match the crate exactly"
        ),
        ([one], _) => Ok((one.clone(), "Cargo.lock")),
        (many, _) => bail!(
            "Cargo.lock has several wasm-bindgen versions ({}); the CLI can match only one",
            many.join(", ")
        ),
    }
}

/// The versions of package `name` in a Cargo.lock.
fn lock_versions(lock: &str, name: &str) -> Vec<String> {
    let wanted = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    let mut versions = Vec::new();
    while let Some(line) = lines.next() {
        if line.trim() != wanted {
            continue;
        }
        // `version` follows `name` in every Cargo.lock format.
        if let Some(version) = lines
            .next()
            .and_then(|l| l.trim().strip_prefix("version = \""))
            .and_then(|l| l.strip_suffix('"'))
        {
            versions.push(version.to_owned());
        }
    }
    versions
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
[[package]]
name = "wasm-bindgen"
version = "0.2.130"
source = "registry+https://github.com/rust-lang/crates.io-index"

[[package]]
name = "wasm-bindgen-macro"
version = "0.2.130"
"#;

    #[test]
    fn finds_the_exact_package_only() {
        assert_eq!(lock_versions(LOCK, "wasm-bindgen"), ["0.2.130"]);
        assert!(lock_versions(LOCK, "wasm-bindgen-cli").is_empty());
    }
}
