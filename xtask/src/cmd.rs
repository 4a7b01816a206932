//! Running other programs: a failing status becomes an error naming the command line.

use std::env;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{bail, Context, Result};

/// `program args...` for messages.
fn describe(cmd: &Command) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Runs `cmd` with inherited stdio; fails unless it exits 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    let line = describe(cmd);
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Runs `cmd` and captures its output, whatever its status; fails only if it cannot start.
pub fn capture(cmd: &mut Command) -> Result<Output> {
    let line = describe(cmd);
    cmd.stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start `{line}`"))
}

/// Runs `cmd` quietly; on failure the error carries the tail of what it printed.
pub fn run_quiet(cmd: &mut Command) -> Result<()> {
    let line = describe(cmd);
    let out = capture(cmd)?;
    if !out.status.success() {
        bail!("`{line}` failed ({}):\n{}", out.status, tail(&out, 20));
    }
    Ok(())
}

/// The last `lines` lines of a command's stdout and stderr, for an error message.
pub fn tail(out: &Output, lines: usize) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The first `error:` line a command printed (else its last line), for a one-line message.
pub fn error_line(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr);
    text.lines()
        .find(|line| line.starts_with("error"))
        .or_else(|| text.lines().last())
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// The first line `program --version` prints, or `None` if it is missing or fails.
pub fn version_of(program: &Path) -> Option<String> {
    let out = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.lines().next().unwrap_or("").trim().to_owned())
}

/// Where `name` is found on PATH, like `which`.
pub fn find_on_path(name: impl AsRef<OsStr>) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name.as_ref()))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Cargo's bin directory, where `cargo install` puts tools (`$CARGO_HOME/bin`, `~/.cargo/bin`).
pub fn cargo_bin_dir() -> Option<PathBuf> {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .map(|home| home.join("bin"))
}

/// A tool installed by `cargo install`: cargo's bin directory first, then PATH.
pub fn find_cargo_tool(name: &str) -> Option<PathBuf> {
    cargo_bin_dir()
        .map(|dir| dir.join(name))
        .filter(|p| is_executable(p))
        .or_else(|| find_on_path(name))
}

/// The cargo that runs this xtask (rustup's, via `$CARGO`), for `cargo install` and friends.
pub fn cargo() -> Command {
    Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Whether we are root (apt-get needs it); `id -u` avoids unsafe code for `geteuid`.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}
