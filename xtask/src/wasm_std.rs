//! The wasm32 std, by one of two routes (see shared/wasm-toolchain.md), and the generated
//! `.wasm-toolchain/` that every wasm build goes through: `.wasm-toolchain/run trunk build`.
//!
//! - rustup: `rustup target add wasm32-unknown-unknown`; `run` only puts the page's npm tools
//!   (binaryen's `wasm-opt`) first on PATH and execs its command.
//! - debian: when rustup's download host fails or hangs, Debian's rustc-web builds std for wasm
//!   itself (`-Zbuild-std`); `run` sources `env`, which puts links to `/usr/bin/{cargo,rustc,
//!   rustdoc}` first on PATH. Those variables stay out of host builds: Debian cargo with
//!   RUSTC_BOOTSTRAP=1 would rebuild std for the host too.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::apt::Apt;
use crate::cmd;

pub const TARGET: &str = "wasm32-unknown-unknown";
/// rustup's download host is not a package registry: it may hang rather than refuse.
const RUSTUP_TIMEOUT_SECS: &str = "90";
/// rustc-web's default wasm linker `/usr/bin/rust-lld` is a link into lld-22.
const DEBIAN_PACKAGES: &[&str] = &["rustc-web", "cargo-web", "rust-web-src", "lld-22"];
/// The Debian tools that must come before rustup's proxies on PATH (Trunk runs `cargo` from PATH).
const DEBIAN_TOOLS: &[&str] = &["cargo", "rustc", "rustdoc"];
pub const DIR: &str = ".wasm-toolchain";

/// What `--wasm-route` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Choice {
    /// rustup if it works (or already has the target), else Debian; keeps a recorded Debian route
    Auto,
    Rustup,
    Debian,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Rustup,
    Debian,
}

impl Route {
    pub fn name(self) -> &'static str {
        match self {
            Route::Rustup => "rustup",
            Route::Debian => "debian",
        }
    }

    fn parse(text: &str) -> Option<Route> {
        match text.trim() {
            "rustup" => Some(Route::Rustup),
            "debian" => Some(Route::Debian),
            _ => None,
        }
    }
}

/// Makes sure a wasm32 std is there, writes `.wasm-toolchain/`, and returns the route taken.
pub fn setup(root: &Path, apt: &mut Apt, choice: Choice) -> Result<Route> {
    let dir = root.join(DIR);
    let recorded = fs::read_to_string(dir.join("route"))
        .ok()
        .and_then(|text| Route::parse(&text));
    let route = match choice {
        Choice::Rustup if rustup_has_target(root) => {
            println!("setup: wasm32 std present (rustup)");
            Route::Rustup
        }
        Choice::Rustup => {
            rustup_add_target(root)?;
            println!("setup: wasm32 std installed (rustup)");
            Route::Rustup
        }
        Choice::Debian => {
            debian_packages(apt)?;
            Route::Debian
        }
        Choice::Auto if rustup_has_target(root) => {
            println!("setup: wasm32 std present (rustup)");
            Route::Rustup
        }
        // Do not wait on rustup's host again on every run once it has failed here.
        Choice::Auto
            if recorded == Some(Route::Debian) && apt.missing(DEBIAN_PACKAGES)?.is_empty() =>
        {
            println!(
                "setup: wasm32 std present (Debian rustc-web, as recorded in {DIR}/route; \
                 `--wasm-route rustup` retries rustup)"
            );
            Route::Debian
        }
        Choice::Auto => match rustup_add_target(root) {
            Ok(()) => {
                println!("setup: wasm32 std installed (rustup)");
                Route::Rustup
            }
            Err(err) => {
                println!(
                    "setup: rustup could not add {TARGET} ({err:#}); using Debian's rustc-web"
                );
                debian_packages(apt)?;
                Route::Debian
            }
        },
    };
    write_dir(root, &dir, route)?;
    Ok(route)
}

/// The wrapper every wasm build command goes through.
pub fn wrapper(root: &Path) -> PathBuf {
    root.join(DIR).join("run")
}

fn rustup_has_target(root: &Path) -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(root)
        .output()
        .is_ok_and(|out| {
            out.status.success()
                && String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .any(|l| l.trim() == TARGET)
        })
}

fn rustup_add_target(root: &Path) -> Result<()> {
    if cmd::find_on_path("rustup").is_none() {
        bail!("rustup is not on PATH");
    }
    println!("setup: installing {TARGET} std (rustup, at most {RUSTUP_TIMEOUT_SECS} s)");
    let out = cmd::capture(
        Command::new("timeout")
            .args(["--kill-after=5", RUSTUP_TIMEOUT_SECS])
            .args(["rustup", "target", "add", TARGET])
            .current_dir(root),
    )?;
    match out.status.code() {
        Some(0) => Ok(()),
        Some(124 | 137) => {
            bail!("`rustup target add {TARGET}` timed out after {RUSTUP_TIMEOUT_SECS} s")
        }
        _ => bail!(
            "`rustup target add {TARGET}` failed: {}",
            cmd::tail(&out, 3)
        ),
    }
}

fn debian_packages(apt: &mut Apt) -> Result<()> {
    let missing = apt.missing(DEBIAN_PACKAGES)?;
    if !missing.is_empty() {
        println!("setup: installing {} (apt-get)", missing.join(" "));
        apt.install(&missing)?;
    }
    let line = cmd::version_of(Path::new("/usr/bin/rustc"))
        .context("/usr/bin/rustc does not run after installing rustc-web")?;
    // `rustc 1.96.0 (hash date) (built from a source tarball)`: the first two words.
    let version: Vec<&str> = line.split_whitespace().take(2).collect();
    println!(
        "setup: wasm32 std via Debian {} (std built from rust-web-src)",
        version.join(" ")
    );
    Ok(())
}

/// Writes `.wasm-toolchain/{route,run}` and, on the Debian route, `env` and `bin/`; files that
/// already have the right content are left alone.
fn write_dir(root: &Path, dir: &Path, route: Route) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_if_changed(&dir.join("route"), &format!("{}\n", route.name()), 0o644)?;
    let bin = dir.join("bin");
    let env = dir.join("env");
    match route {
        Route::Rustup => {
            // Stale Debian pieces must not be picked up by anyone.
            if bin.exists() {
                fs::remove_dir_all(&bin)
                    .with_context(|| format!("cannot remove {}", bin.display()))?;
            }
            if env.exists() {
                fs::remove_file(&env)
                    .with_context(|| format!("cannot remove {}", env.display()))?;
            }
        }
        Route::Debian => {
            fs::create_dir_all(&bin).with_context(|| format!("cannot create {}", bin.display()))?;
            for tool in DEBIAN_TOOLS {
                let target = Path::new("/usr/bin").join(tool);
                let link = bin.join(tool);
                if fs::read_link(&link).ok().as_deref() == Some(target.as_path()) {
                    continue;
                }
                let _ = fs::remove_file(&link);
                symlink(&target, &link)
                    .with_context(|| format!("cannot link {}", link.display()))?;
            }
            write_if_changed(&env, &debian_env(root, &bin), 0o644)?;
        }
    }
    // Last, so `run` never sources an `env` that is not there yet.
    write_if_changed(&dir.join("run"), &run_script(root, route), 0o755)
}

/// The wrapper. Both routes put the page's npm tools first on PATH: Trunk takes `wasm-opt`
/// (npm's binaryen) from there. Paths are absolute: the file is made on and for this machine.
fn run_script(root: &Path, route: Route) -> String {
    let (why, env) = match route {
        Route::Rustup => (
            "# rustup's toolchain has the wasm32 std: only PATH changes.\n",
            "",
        ),
        Route::Debian => (
            "# Debian's rustc-web builds the wasm32 std itself, with the variables in ./env.\n",
            ". \"$(dirname -- \"$0\")/env\"\n",
        ),
    };
    format!(
        "#!/bin/sh
# Generated by `cargo xtask setup` (route: {route}). Not committed; do not edit.
# Every wasm build goes through here, e.g. `.wasm-toolchain/run trunk build --release`.
{why}set -e
{env}PATH=\"{npm_bin}:$PATH\"
export PATH
exec \"$@\"
",
        route = route.name(),
        npm_bin = root.join("frontend/node_modules/.bin").display(),
    )
}

fn debian_env(root: &Path, bin: &Path) -> String {
    let target_dir = root.join("target").join("debian-wasm");
    format!(
        "# Generated by `cargo xtask setup` (route: debian); sourced by ./run only. Host builds
# must not see these: Debian cargo with RUSTC_BOOTSTRAP=1 rebuilds std for the host too.
# Trunk runs whichever cargo is first on PATH (it ignores $CARGO).
export PATH=\"{bin}:$PATH\"
export RUSTC=/usr/bin/rustc
export RUSTDOC=/usr/bin/rustdoc
export RUSTC_BOOTSTRAP=1
export CARGO_UNSTABLE_BUILD_STD=std,panic_abort
# Apart from rustup's artifacts, so the two compilers do not keep invalidating each other.
export CARGO_TARGET_DIR=\"${{ISOLAB_WASM_TARGET_DIR:-{target_dir}}}\"
unset RUSTUP_TOOLCHAIN RUSTC_WRAPPER
",
        bin = bin.display(),
        target_dir = target_dir.display(),
    )
}

fn write_if_changed(path: &Path, content: &str, mode: u32) -> Result<()> {
    if fs::read_to_string(path).ok().as_deref() != Some(content) {
        fs::write(path, content).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let perms = fs::Permissions::from_mode(mode);
    fs::set_permissions(path, perms).with_context(|| format!("cannot chmod {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_round_trips_through_its_file() {
        for route in [Route::Rustup, Route::Debian] {
            assert_eq!(Route::parse(&format!("{}\n", route.name())), Some(route));
        }
        assert_eq!(Route::parse("nightly"), None);
    }

    #[test]
    fn writes_the_debian_wrapper_and_then_cleans_it_for_rustup() {
        let root = std::env::temp_dir().join(format!("xtask-wasm-std-{}", std::process::id()));
        let dir = root.join(DIR);
        write_dir(&root, &dir, Route::Debian).unwrap();
        let env = fs::read_to_string(dir.join("env")).unwrap();
        assert!(env.contains("CARGO_UNSTABLE_BUILD_STD=std,panic_abort"));
        assert!(env.contains(&root.join("target/debian-wasm").display().to_string()));
        assert_eq!(
            fs::read_link(dir.join("bin/cargo")).unwrap(),
            Path::new("/usr/bin/cargo")
        );
        // Again: idempotent.
        write_dir(&root, &dir, Route::Debian).unwrap();

        write_dir(&root, &dir, Route::Rustup).unwrap();
        assert_eq!(fs::read_to_string(dir.join("route")).unwrap(), "rustup\n");
        assert!(!dir.join("env").exists() && !dir.join("bin").exists());
        let out = Command::new(dir.join("run"))
            .args(["echo", "hi"])
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"hi\n");
        fs::remove_dir_all(&root).unwrap();
    }
}
