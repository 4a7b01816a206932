//! `isolab image bootstrap debian`: a second image, Debian's minbase made by `debootstrap` (a
//! tool that makes a root file system, as `busybox-static` is the built-in image's source; it
//! takes minutes and downloads about 40 MB, so it is opt-in).

use std::path::Path;
use std::process::Command;

use super::{temp_name, Image, ImageError, ImageSettings, ImageStore, TempDir};

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
            return Err(ImageError::Invalid {
                what: format!(
                    "debootstrap {} failed ({status}); its log is in {}",
                    b.suite,
                    Path::new(&root)
                        .join("debootstrap/debootstrap.log")
                        .display()
                ),
            });
        }
        // Downloaded packages are not part of the image (docker's debian images drop them too).
        let _ = std::fs::remove_dir_all(root.join("var/cache/apt/archives"));
        let _ = std::fs::create_dir_all(root.join("var/cache/apt/archives/partial"));
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
}
