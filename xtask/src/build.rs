//! `cargo xtask run` and `cargo xtask test`: the README's two commands. Both set up first (fast
//! when nothing changed), build the page with Trunk and the server in release mode; `run` then
//! becomes the server, `test` runs every test, unit to browser.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::{cmd, wasm_std};

/// The page, into `dist/` (skipped, with a line saying so, while there is no page yet).
pub fn page(root: &Path) -> Result<()> {
    if !root.join("frontend/index.html").exists() {
        println!("xtask: no page yet (frontend/index.html): not building it");
        return Ok(());
    }
    println!("xtask: building the page (trunk build --release)");
    cmd::run(
        Command::new(wasm_std::wrapper(root))
            .args(["trunk", "build", "--release"])
            .env("TRUNK_SKIP_VERSION_CHECK", "true")
            .current_dir(root),
    )
}

fn server(root: &Path) -> Result<()> {
    println!("xtask: building the server (cargo build --release -p isolab)");
    cmd::run(
        cmd::cargo()
            .args(["build", "--release", "-p", "isolab"])
            .current_dir(root),
    )
}

/// Build everything and become `isolab serve` (extra arguments go to it).
pub fn run(root: &Path, serve_args: &[String]) -> Result<()> {
    page(root)?;
    server(root)?;
    let bin = root.join("target/release/isolab");
    cmd::run(Command::new(&bin).args(["image", "init"]))?;
    let err = Command::new(&bin)
        .args(["serve", "--dist"])
        .arg(root.join("dist"))
        .args(serve_args)
        .current_dir(root)
        .exec();
    Err(err).with_context(|| format!("start {}", bin.display()))
}

/// Build the page (the browser test serves it) and run every test of the workspace.
pub fn test(root: &Path) -> Result<()> {
    page(root)?;
    println!("xtask: cargo test (unit tests, the page's state natively, the privileged and WebSocket suites)");
    cmd::run(cmd::cargo().arg("test").current_dir(root))?;
    if root.join("dist/index.html").exists() {
        println!("xtask: the page in headless chromium (node --test tests/browser/)");
        cmd::run(
            Command::new("node")
                // One file at a time: each test's server uses the default state root and the
                // host's network namespace, which `isolab serve` claims for itself.
                .args(["--test", "--test-concurrency=1", "tests/browser/"])
                .env("ISOLAB_BIN", root.join("target/debug/isolab"))
                .current_dir(root),
        )?;
    }
    Ok(())
}
