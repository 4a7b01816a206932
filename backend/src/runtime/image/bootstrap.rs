//! `isolab image bootstrap debian`: a second image, Debian's minbase made by `debootstrap` (a
//! tool that makes a root file system, as `busybox-static` is the built-in image's source; it
//! takes minutes and downloads about 40 MB, so it is opt-in).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{temp_name, Image, ImageError, ImageSettings, ImageStore, TempDir};

/// How many of the last lines of a failed run's log its error quotes.
const LOG_TAIL_LINES: usize = 15;

/// What to bootstrap.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    /// The image's name (default `debian`).
    pub name: String,
    /// The Debian release, e.g. `bookworm`.
    pub suite: String,
    pub mirror: String,
}

impl ImageStore {
    /// Run `debootstrap --variant=minbase` into a work folder and make it a one-layer image.
    pub fn bootstrap_debian(&self, b: &Bootstrap) -> Result<Image, ImageError> {
        let name = ImageStore::normalize_name(&b.name)?;
        if Command::new("debootstrap")
            .arg("--version")
            .output()
            .is_err()
        {
            return Err(ImageError::Unsupported {
                what: "debootstrap is not installed: run `apt-get install debootstrap`".into(),
            });
        }
        let _lock = self.lock(false)?;
        let work = TempDir(self.tmp_dir()?.join(temp_name("debootstrap")));
        let root = work.0.join("root");
        let status = Command::new("debootstrap")
            .args(["--variant=minbase", &b.suite])
            .arg(&root)
            .arg(&b.mirror)
            .status()
            .map_err(|e| ImageError::Invalid {
                what: format!("running debootstrap: {e}"),
            })?;
        if !status.success() {
            // The work folder goes when this returns: the log is kept, and its end quoted.
            let log = root.join("debootstrap/debootstrap.log");
            return Err(ImageError::Invalid {
                what: self.debootstrap_failed(&b.suite, &status.to_string(), &log),
            });
        }
        // Downloaded packages are not part of the image (docker's debian images drop them too).
        let _ = fs::remove_dir_all(root.join("var/cache/apt/archives"));
        let _ = fs::create_dir_all(root.join("var/cache/apt/archives/partial"));
        let made_by = format!("debootstrap --variant=minbase {} {}", b.suite, b.mirror);
        let layer = self.add_layer_from_dir(&root, &made_by)?;
        let settings = ImageSettings {
            env: vec![crate::runtime::spec::DEFAULT_PATH.to_string()],
            cmd: Some(vec!["bash".to_string()]),
            ..ImageSettings::default()
        };
        let record = self.commit(&name, &settings, vec![layer], Vec::new())?;
        self.save_record(&record)?;
        self.open(&name)
    }

    /// The error of a failed debootstrap: its log copied to `<data_root>/logs/` (the work
    /// folder it was written in is removed) and its last lines.
    fn debootstrap_failed(&self, suite: &str, status: &str, log: &Path) -> String {
        let head = format!("debootstrap {suite} failed ({status})");
        let Ok(text) = fs::read_to_string(log) else {
            return format!("{head}; it wrote no log (its output is above)");
        };
        let kept = self.keep_log(log, suite);
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
        match kept {
            Some(path) => format!(
                "{head}; its log is kept in {}, ending:\n{tail}",
                path.display()
            ),
            None => format!("{head}; its log ended:\n{tail}"),
        }
    }

    /// Copy a log to `<data_root>/logs/debootstrap-<suite>.log`.
    fn keep_log(&self, log: &Path, suite: &str) -> Option<PathBuf> {
        let safe: String = suite
            .chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
                _ => '_',
            })
            .collect();
        let dir = self.data_root.join("logs");
        let dest = dir.join(format!("debootstrap-{}.log", safe.trim_start_matches('.')));
        fs::create_dir_all(&dir).ok()?;
        fs::copy(log, &dest).ok()?;
        Some(dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_debootstrap_s_log_is_kept_and_its_end_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::new(dir.path().join("data"));
        let work = TempDir(dir.path().join("work"));
        let log = work.0.join("debootstrap/debootstrap.log");
        fs::create_dir_all(log.parent().unwrap()).unwrap();
        let text: String = (1..=40).map(|i| format!("line {i}\n")).collect();
        fs::write(&log, &text).unwrap();
        let msg = store.debootstrap_failed("../bookworm", "exit status: 1", &log);
        drop(work);
        let kept = dir.path().join("data/logs/debootstrap-_bookworm.log");
        assert_eq!(fs::read_to_string(&kept).unwrap(), text, "the whole log");
        assert!(
            msg.starts_with("debootstrap ../bookworm failed (exit status: 1)"),
            "{msg}"
        );
        assert!(msg.contains(&kept.display().to_string()), "{msg}");
        assert!(msg.ends_with("line 39\nline 40"), "{msg}");
        assert!(!msg.contains("line 25\n"), "only the last lines: {msg}");
        let none = store.debootstrap_failed("sid", "exit status: 2", &dir.path().join("nope"));
        assert!(none.contains("wrote no log"), "{none}");
    }
}
