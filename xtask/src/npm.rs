//! npm packages: the page's (xterm.js, binaryen's wasm-opt) in frontend/, and the browser
//! test's (playwright-core, which drives Debian's chromium) in tests/browser/: `npm ci` in each
//! folder whose node_modules is older than its lockfile.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};

use crate::cmd;

pub fn setup(root: &Path) -> Result<()> {
    for folder in ["frontend", "tests/browser"] {
        install(root, folder)?;
    }
    Ok(())
}

fn install(root: &Path, folder: &str) -> Result<()> {
    let frontend = root.join(folder);
    if !frontend.join("package.json").exists() {
        println!("setup: npm packages skipped (no {folder}/package.json)");
        return Ok(());
    }
    let lock = frontend.join("package-lock.json");
    let lock_time = modified(&lock).with_context(|| {
        format!("{folder}/package-lock.json is missing: run `npm install` there once and commit it")
    })?;
    // `npm ci` removes node_modules and writes it anew, so its time says when it last ran.
    if modified(&frontend.join("node_modules")).is_ok_and(|time| time > lock_time) {
        println!("setup: npm packages present ({folder}/node_modules is newer than its lockfile)");
        return Ok(());
    }
    if cmd::find_on_path("npm").is_none() {
        bail!("npm is not on PATH");
    }
    println!("setup: installing npm packages (npm ci in {folder}/)");
    cmd::run_quiet(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&frontend),
    )
}

fn modified(path: &Path) -> Result<SystemTime> {
    Ok(fs::metadata(path)?.modified()?)
}
