//! `isolab image export NAME PATH`: an OCI image layout, as a folder (`skopeo inspect oci:DIR`,
//! `umoci unpack --image DIR:latest`) or, when PATH ends in `.tar`, a tar of one. The blobs are
//! the store's own, so the digests are the image's.

use std::fs::{self, File};
use std::io;
use std::path::Path;

use super::{io_err, temp_name, Digest, ImageError, ImageStore, TempDir};

/// The annotation naming an image in an OCI layout's index.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

impl ImageStore {
    /// Write image `name` as an OCI image layout at `dest` (a new folder, or a `.tar`).
    pub fn export(&self, name: &str, dest: &Path) -> Result<(), ImageError> {
        // Shared: a collection (which empties the work folder) or a removal waits for it.
        let _lock = self.lock(false)?;
        let record = self.record(name)?;
        if dest.exists() && !(dest.is_dir() && is_empty_dir(dest)) {
            return Err(ImageError::Invalid {
                what: format!(
                    "{} exists: export writes a new folder or file",
                    dest.display()
                ),
            });
        }
        let as_tar = dest.extension().is_some_and(|e| e == "tar");
        let work = TempDir(self.tmp_dir()?.join(temp_name("export")));
        let layout = work.0.join("layout");
        let blobs = layout.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(io_err("creating", &blobs))?;
        let mut digests = vec![record.manifest.clone(), record.config.clone()];
        digests.extend(record.layers.iter().map(|l| l.digest.clone()));
        for d in &digests {
            let d = Digest::parse(d)?;
            let from = self.blobs.path(&d);
            let to = blobs.join(d.hex());
            // A hard link when the store and the work folder share a file system.
            if fs::hard_link(&from, &to).is_err() {
                fs::copy(&from, &to).map_err(|e| match e.kind() {
                    io::ErrorKind::NotFound => ImageError::Corrupt {
                        what: format!("blob {d} of image {name:?} is missing from the store"),
                    },
                    _ => io_err("copying", &from)(e),
                })?;
            }
        }
        let manifest = Digest::parse(&record.manifest)?;
        let manifest_size = fs::metadata(self.blobs.path(&manifest))
            .map_err(io_err("reading", &self.blobs.path(&manifest)))?
            .len();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest.to_string(),
                "size": manifest_size,
                "annotations": {REF_NAME: "latest"},
                "platform": {"architecture": super::record::host_arch(), "os": "linux"},
            }],
        });
        let write = |file: &str, value: &serde_json::Value| -> Result<(), ImageError> {
            let path = layout.join(file);
            fs::write(&path, serde_json::to_vec(value).expect("json"))
                .map_err(io_err("writing", &path))
        };
        write("index.json", &index)?;
        write(
            "oci-layout",
            &serde_json::json!({"imageLayoutVersion": "1.0.0"}),
        )?;
        if as_tar {
            let tmp_tar = work.0.join("layout.tar");
            let file = File::create(&tmp_tar).map_err(io_err("creating", &tmp_tar))?;
            let mut tar = tar::Builder::new(io::BufWriter::new(file));
            tar.mode(tar::HeaderMode::Deterministic);
            tar.append_dir_all(".", &layout)
                .map_err(io_err("writing", &tmp_tar))?;
            tar.into_inner()
                .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
                .map_err(io_err("writing", &tmp_tar))?;
            move_into_place(&tmp_tar, dest)
        } else {
            if dest.is_dir() {
                fs::remove_dir(dest).map_err(io_err("replacing", dest))?;
            }
            move_into_place(&layout, dest)
        }
    }
}

fn is_empty_dir(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
}

/// Rename, or copy when `dest` is on another file system.
fn move_into_place(from: &Path, dest: &Path) -> Result<(), ImageError> {
    if fs::rename(from, dest).is_ok() {
        return Ok(());
    }
    if from.is_dir() {
        copy_dir(from, dest)
    } else {
        fs::copy(from, dest)
            .map(|_| ())
            .map_err(io_err("copying to", dest))
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), ImageError> {
    fs::create_dir_all(to).map_err(io_err("creating", to))?;
    for entry in fs::read_dir(from).map_err(io_err("reading", from))? {
        let entry = entry.map_err(io_err("reading", from))?;
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target).map_err(io_err("copying to", &target))?;
        }
    }
    Ok(())
}
