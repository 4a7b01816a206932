//! Project chores, run as `cargo xtask <command>` (an alias in .cargo/config.toml).
//!
//! `cargo xtask run` and `cargo xtask test` are the README's two commands: each runs `setup`,
//! builds the page and the server, then serves (`run`) or runs every test (`test`).
//!
//! `cargo xtask setup` installs what isolab needs on a fresh Debian 12 machine that has only
//! rustup's stable toolchain, and does nothing (quickly) when everything is there. Each step
//! prints one line; a failure names its step. The steps, in order:
//! 1. Debian packages (the built-in image, peer runtimes, benchmark tools, the test browser);
//! 2. the wasm32 std, by rustup or Debian's rustc-web, and the `.wasm-toolchain/run` wrapper
//!    that every wasm build goes through (shared/wasm-toolchain.md says why);
//! 3. trunk and wasm-bindgen-cli at exact versions;
//! 4. the page's npm packages.

mod apt;
mod build;
mod cmd;
mod npm;
mod tools;
mod wasm_std;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::apt::Apt;

/// Debian packages: the built-in image (busybox-static), peers for the benchmark (runc, crun),
/// benchmark and test witnesses (hyperfine, strace, util-linux, iproute2; skopeo and umoci for
/// images), the CNI plugins and the iptables they drive, the test browser (chromium), and the
/// balancer of the many-hosts test (nginx, with docker/nginx/isolab.conf).
const DEBIAN_PACKAGES: &[&str] = &[
    "busybox-static",
    "runc",
    "crun",
    "hyperfine",
    "strace",
    "util-linux",
    "iproute2",
    "skopeo",
    "umoci",
    "containernetworking-plugins",
    "iptables",
    "chromium",
    "chromium-driver",
    "nginx",
];

#[derive(Parser)]
#[command(about = "isolab's project chores")]
struct Cli {
    #[command(subcommand)]
    command: Chore,
}

#[derive(Subcommand)]
enum Chore {
    /// Set up, build page and server (release), and serve (arguments go to `isolab serve`,
    /// e.g. `cargo xtask run -- --listen 0.0.0.0:8080`)
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        serve_args: Vec<String>,
    },
    /// Set up, build the page, and run every test, unit to browser
    Test,
    /// Install what the project needs (Debian packages, wasm32 std, trunk, wasm-bindgen, npm)
    Setup {
        /// How to get the wasm32 std
        #[arg(long, value_enum, default_value_t = wasm_std::Choice::Auto)]
        wasm_route: wasm_std::Choice,
        /// wasm-bindgen-cli version while Cargo.lock has no wasm-bindgen (it must match the lock
        /// once it has one)
        #[arg(long, value_name = "X.Y.Z")]
        wasm_bindgen_version: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = repo_root();
    let result = match cli.command {
        Chore::Run { serve_args } => {
            setup(wasm_std::Choice::Auto, None).and_then(|()| build::run(&root, &serve_args))
        }
        Chore::Test => setup(wasm_std::Choice::Auto, None).and_then(|()| build::test(&root)),
        Chore::Setup {
            wasm_route,
            wasm_bindgen_version,
        } => setup(wasm_route, wasm_bindgen_version.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: this crate's parent folder.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

fn setup(route: wasm_std::Choice, wasm_bindgen_version: Option<&str>) -> Result<()> {
    let start = Instant::now();
    let root = repo_root();
    let mut apt = Apt::default();

    step("Debian packages", || debian_packages(&mut apt))?;
    let route = step("wasm32 std", || wasm_std::setup(&root, &mut apt, route))?;
    // Trunk.toml has `offline = true` (cargo --offline): everything, including std's own
    // dependencies on the Debian route, must be in cargo's cache before a build.
    step("cargo fetch", || {
        cmd::run_quiet(
            Command::new(wasm_std::wrapper(&root))
                .args(["cargo", "fetch", "--target", wasm_std::TARGET])
                .current_dir(&root),
        )?;
        println!(
            "setup: crates fetched for {} (Trunk builds offline)",
            wasm_std::TARGET
        );
        Ok(())
    })?;
    step("trunk", tools::trunk)?;
    step("wasm-bindgen-cli", || {
        let (version, source) = tools::wasm_bindgen_version(&root, wasm_bindgen_version)?;
        println!("setup: wasm-bindgen {version} ({source})");
        tools::wasm_bindgen(&version)
    })?;
    step("npm packages", || npm::setup(&root))?;

    println!(
        "setup: done in {:.1} s (wasm route: {}; wasm builds: `{}/run trunk build`)",
        start.elapsed().as_secs_f64(),
        route.name(),
        wasm_std::DIR
    );
    Ok(())
}

/// Runs one step; its error names it.
fn step<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    f().with_context(|| format!("step `{name}` failed"))
}

fn debian_packages(apt: &mut Apt) -> Result<()> {
    let mut wanted = DEBIAN_PACKAGES.to_vec();
    if cmd::find_on_path("npm").is_none() {
        wanted.extend(["nodejs", "npm"]);
    }
    let missing = apt.missing(&wanted)?;
    if missing.is_empty() {
        println!("setup: Debian packages present");
        return Ok(());
    }
    println!("setup: installing {} (apt-get)", missing.join(" "));
    apt.install(&missing)
}
