//! Debian packages: ask dpkg what is missing, then one `apt-get update` and `apt-get install`.

use std::collections::HashSet;
use std::process::Command;

use anyhow::{bail, Result};

use crate::cmd;

/// apt-get, remembering whether this run already refreshed the package lists.
#[derive(Default)]
pub struct Apt {
    updated: bool,
}

impl Apt {
    /// The packages of `wanted` that dpkg does not report as installed, in the given order.
    pub fn missing<'a>(&self, wanted: &[&'a str]) -> Result<Vec<&'a str>> {
        // One dpkg-query for all: it prints the packages it knows and exits 1 if it does not
        // know some, so the status says nothing and only the lines count.
        let out = cmd::capture(
            Command::new("dpkg-query")
                .args(["-W", "-f", "${Package} ${Status}\n"])
                .args(wanted),
        )?;
        let installed: HashSet<&str> = std::str::from_utf8(&out.stdout)?
            .lines()
            .filter(|line| line.ends_with(" install ok installed"))
            .filter_map(|line| line.split_whitespace().next())
            // Multi-arch packages may print as `name:arch`.
            .map(|name| name.split(':').next().unwrap_or(name))
            .collect();
        Ok(wanted
            .iter()
            .copied()
            .filter(|pkg| !installed.contains(pkg))
            .collect())
    }

    /// `apt-get install -y` for `pkgs` (after one `apt-get update` per run).
    pub fn install(&mut self, pkgs: &[&str]) -> Result<()> {
        if pkgs.is_empty() {
            return Ok(());
        }
        if !cmd::is_root() {
            bail!(
                "{} must be installed and apt-get needs root: run as root or `sudo apt-get \
                 install {}`",
                pkgs.join(", "),
                pkgs.join(" ")
            );
        }
        if !self.updated {
            cmd::run_quiet(apt_get().arg("update"))?;
            self.updated = true;
        }
        cmd::run_quiet(apt_get().args(["install", "-y"]).args(pkgs))
    }
}

fn apt_get() -> Command {
    let mut cmd = Command::new("apt-get");
    cmd.arg("-q").env("DEBIAN_FRONTEND", "noninteractive");
    cmd
}
