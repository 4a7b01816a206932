//! `isolab image import FILE|DIR`: an OCI image layout (a folder, or a tar of one) or a
//! `docker save` tarball (its layers plain or gzip). Every blob is checked against its digest
//! and every layer against the config's diff_ids (even a layer the store has already) before the
//! image's record is written; what an import added is removed again if it fails (unless another
//! image now names it), so a refused input leaves the store unchanged.

use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::{Component, Path, PathBuf};

use oci_spec::image::{ImageIndex, ImageManifest, MediaType};

use super::archive::unpack_archive;
use super::record::{is_gzip, settings_from_config, HistoryStep};
use super::{io_err, temp_name, Digest, ImageError, ImageRecord, ImageStore, LayerRecord, TempDir};

/// The annotation naming an image in an OCI layout's index.
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The largest JSON document (index, manifest, config) read into memory.
const MAX_JSON: u64 = 16 << 20;

/// One step of a long import, for a progress line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Unpacking,
    Layer {
        index: usize,
        count: usize,
        digest: String,
        size: u64,
    },
    Done {
        name: String,
    },
}

/// What an import adds: on failure, whichever of it no record names by then is removed again.
#[derive(Debug, Default)]
pub(super) struct Added {
    pub(super) blobs: Vec<Digest>,
    /// Layer folders, by diff_id.
    pub(super) layers: Vec<Digest>,
}

impl ImageStore {
    /// Import every image of `source` (an OCI layout folder or tar, or a `docker save` tar).
    /// `name` names the image when the input has one image (it is required when the input
    /// names none). Returns the names imported.
    ///
    /// The store's lock is held shared while the input is read; if it fails, what it added is
    /// undone under the lock held exclusively ([`Self::roll_back`]).
    pub fn import(
        &self,
        source: &Path,
        name: Option<&str>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<String>, ImageError> {
        let mut added = Added::default();
        let result = self.import_shared(source, name, &mut added, progress);
        if result.is_err() {
            if let Err(e) = self.roll_back(&added) {
                tracing::warn!("undoing a failed import: {e}");
            }
        }
        result
    }

    /// The import itself, the store's lock held shared (so a collection waits for it).
    fn import_shared(
        &self,
        source: &Path,
        name: Option<&str>,
        added: &mut Added,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<String>, ImageError> {
        let _lock = self.lock(false)?;
        let meta = fs::metadata(source).map_err(io_err("reading", source))?;
        let _unpacked;
        let dir = if meta.is_dir() {
            source.to_path_buf()
        } else {
            progress(Progress::Unpacking);
            let tmp = TempDir(self.tmp_dir()?.join(temp_name("import")));
            unpack_archive(source, &tmp.0)?;
            let dir = tmp.0.clone();
            _unpacked = tmp;
            dir
        };
        let records = if dir.join("index.json").is_file() {
            self.import_oci(&dir, name, added, progress)?
        } else if dir.join("manifest.json").is_file() {
            self.import_docker(&dir, name, added, progress)?
        } else {
            return Err(ImageError::Invalid {
                what: format!(
                    "{}: neither an OCI image layout (index.json) nor a docker save archive (manifest.json)",
                    source.display()
                ),
            });
        };
        let mut names = Vec::new();
        for r in records {
            self.save_record(&r)?;
            progress(Progress::Done {
                name: r.name.clone(),
            });
            names.push(r.name);
        }
        Ok(names)
    }

    /// Remove what a failed import added, unless a record names it by now. The lock is held
    /// exclusively, so every import and build that ran beside this one has ended: one that
    /// reused a blob or layer of ours has saved the record naming it (and it stays), or failed.
    pub(super) fn roll_back(&self, added: &Added) -> Result<(), ImageError> {
        if added.blobs.is_empty() && added.layers.is_empty() {
            return Ok(());
        }
        let _lock = self.lock(true)?;
        let (keep_layers, keep_blobs) = self.referenced()?;
        for diff_id in &added.layers {
            let path = self.layer_dir(diff_id);
            if !keep_layers.contains(&diff_id.to_string()) && path.is_dir() {
                fs::remove_dir_all(&path).map_err(io_err("removing", &path))?;
            }
        }
        for d in &added.blobs {
            if !keep_blobs.contains(&d.to_string()) {
                self.blobs.remove(d)?;
            }
        }
        Ok(())
    }

    /// Copy a blob of the input into the store, checking its digest (and size, if known).
    fn take_blob(
        &self,
        file: &Path,
        digest: &Digest,
        size: Option<u64>,
        added: &mut Added,
    ) -> Result<(), ImageError> {
        let f = File::open(file).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ImageError::Corrupt {
                what: format!("blob {digest} is missing from the input"),
            },
            _ => io_err("opening", file)(e),
        })?;
        let (_, got_size, new) = self.blobs.write_from(BufReader::new(f), Some(digest))?;
        if new {
            added.blobs.push(digest.clone());
        }
        if let Some(want) = size {
            if want != got_size {
                return Err(ImageError::Corrupt {
                    what: format!("blob {digest}: {got_size} bytes, its descriptor says {want}"),
                });
            }
        }
        Ok(())
    }

    /// Unpack a stored layer blob, remembering a new layer folder.
    fn take_layer(
        &self,
        digest: &Digest,
        media_type: String,
        diff_id: &Digest,
        added: &mut Added,
    ) -> Result<LayerRecord, ImageError> {
        let existed = self.layer_dir(diff_id).is_dir();
        let record = self.unpack_blob(digest, media_type, Some(diff_id))?;
        if !existed {
            added.layers.push(diff_id.clone());
        }
        Ok(record)
    }

    fn import_oci(
        &self,
        dir: &Path,
        name: Option<&str>,
        added: &mut Added,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<ImageRecord>, ImageError> {
        let index: ImageIndex = parse_json(&dir.join("index.json"))?;
        let blob_path = |d: &Digest| dir.join("blobs").join("sha256").join(d.hex());
        // Manifests, following nested indexes one level (as multi-platform layouts have).
        let mut manifests = Vec::new();
        for desc in index.manifests() {
            let digest = Digest::parse(desc.digest().as_ref())?;
            match desc.media_type() {
                MediaType::ImageIndex => {
                    self.take_blob(&blob_path(&digest), &digest, Some(desc.size()), added)?;
                    let nested: ImageIndex = parse_json(&self.blobs.path(&digest))?;
                    for inner in nested.manifests() {
                        let platform_ok = inner.platform().as_ref().is_none_or(|p| {
                            p.os().to_string() == "linux"
                                && p.architecture().to_string() == super::record::host_arch()
                        });
                        if platform_ok && *inner.media_type() == MediaType::ImageManifest {
                            manifests.push((inner.clone(), desc.annotations().clone()));
                        }
                    }
                }
                _ => manifests.push((desc.clone(), None)),
            }
        }
        if manifests.is_empty() {
            return Err(ImageError::Invalid {
                what: "index.json lists no image manifest for linux/".to_string()
                    + super::record::host_arch(),
            });
        }
        one_name_for_one_image(manifests.len(), name)?;
        let mut records = Vec::new();
        for (desc, outer_annotations) in manifests {
            let ref_name = desc
                .annotations()
                .as_ref()
                .and_then(|a| a.get(REF_NAME).cloned())
                .or_else(|| outer_annotations.and_then(|a| a.get(REF_NAME).cloned()));
            let image_name = match (name, ref_name) {
                (Some(n), _) => n.to_string(),
                // A bare tag ("latest") names no repository.
                (None, Some(r)) if r.contains('/') || r.contains(':') || !looks_like_tag(&r) => r,
                _ => {
                    return Err(ImageError::Invalid {
                        what: "the layout does not name its image: give one (`isolab image import FILE NAME`)".into(),
                    })
                }
            };
            let image_name = ImageStore::normalize_name(&image_name)?;
            let digest = Digest::parse(desc.digest().as_ref())?;
            self.take_blob(&blob_path(&digest), &digest, Some(desc.size()), added)?;
            let manifest: ImageManifest = parse_json(&self.blobs.path(&digest))?;
            let config_desc = manifest.config();
            let config_digest = Digest::parse(config_desc.digest().as_ref())?;
            self.take_blob(
                &blob_path(&config_digest),
                &config_digest,
                Some(config_desc.size()),
                added,
            )?;
            let config: serde_json::Value = parse_json(&self.blobs.path(&config_digest))?;
            let diff_ids = diff_ids(&config)?;
            if diff_ids.len() != manifest.layers().len() {
                return Err(ImageError::Corrupt {
                    what: format!(
                        "the manifest has {} layers, the config {} diff_ids",
                        manifest.layers().len(),
                        diff_ids.len()
                    ),
                });
            }
            let mut layers = Vec::new();
            let count = diff_ids.len();
            for (i, (l, diff_id)) in manifest.layers().iter().zip(&diff_ids).enumerate() {
                let d = Digest::parse(l.digest().as_ref())?;
                progress(Progress::Layer {
                    index: i + 1,
                    count,
                    digest: d.short(),
                    size: l.size(),
                });
                self.take_blob(&blob_path(&d), &d, Some(l.size()), added)?;
                layers.push(self.take_layer(&d, l.media_type().to_string(), diff_id, added)?);
            }
            attach_history(&config, &mut layers);
            records.push(ImageRecord {
                name: image_name,
                manifest: digest.to_string(),
                config: config_digest.to_string(),
                created: config["created"].as_str().unwrap_or_default().to_string(),
                settings: settings_from_config(&config),
                history: history_steps(&config),
                layers,
            });
        }
        Ok(records)
    }

    fn import_docker(
        &self,
        dir: &Path,
        name: Option<&str>,
        added: &mut Added,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<ImageRecord>, ImageError> {
        let manifest: serde_json::Value = parse_json(&dir.join("manifest.json"))?;
        let entries = manifest.as_array().ok_or_else(|| ImageError::Invalid {
            what: "manifest.json is not a list of images".into(),
        })?;
        one_name_for_one_image(entries.len(), name)?;
        let mut records = Vec::new();
        for entry in entries {
            let field = |key: &str| -> Result<&str, ImageError> {
                entry[key].as_str().ok_or_else(|| ImageError::Invalid {
                    what: format!("manifest.json: an entry has no {key:?}"),
                })
            };
            let image_name = match name {
                Some(n) => n.to_string(),
                None => entry["RepoTags"][0]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ImageError::Invalid {
                        what: "the archive does not name its image: give one (`isolab image import FILE NAME`)".into(),
                    })?,
            };
            let image_name = ImageStore::normalize_name(&image_name)?;
            let config_file = inside(dir, field("Config")?)?;
            let config_bytes = read_limited(&config_file)?;
            let (config_digest, new) = self.blobs.write_bytes(&config_bytes)?;
            if new {
                added.blobs.push(config_digest.clone());
            }
            let config: serde_json::Value =
                serde_json::from_slice(&config_bytes).map_err(|e| ImageError::Invalid {
                    what: format!("{}: {e}", config_file.display()),
                })?;
            let diff_ids = diff_ids(&config)?;
            let layer_files = entry["Layers"]
                .as_array()
                .ok_or_else(|| ImageError::Invalid {
                    what: "manifest.json: an entry has no \"Layers\"".into(),
                })?;
            if layer_files.len() != diff_ids.len() {
                return Err(ImageError::Corrupt {
                    what: format!(
                        "manifest.json lists {} layers, the config {} diff_ids",
                        layer_files.len(),
                        diff_ids.len()
                    ),
                });
            }
            let mut layers = Vec::new();
            let count = diff_ids.len();
            for (i, (file, diff_id)) in layer_files.iter().zip(&diff_ids).enumerate() {
                let file = inside(dir, file.as_str().unwrap_or_default())?;
                let f = File::open(&file).map_err(|e| match e.kind() {
                    io::ErrorKind::NotFound => ImageError::Corrupt {
                        what: format!("layer {} is missing from the archive", file.display()),
                    },
                    _ => io_err("opening", &file)(e),
                })?;
                let gzip = is_gzip(&file)?;
                let (digest, size, new) = self.blobs.write_from(BufReader::new(f), None)?;
                if new {
                    added.blobs.push(digest.clone());
                }
                progress(Progress::Layer {
                    index: i + 1,
                    count,
                    digest: digest.short(),
                    size,
                });
                let media = if gzip {
                    MediaType::ImageLayerGzip
                } else {
                    MediaType::ImageLayer
                };
                layers.push(self.take_layer(&digest, media.to_string(), diff_id, added)?);
            }
            attach_history(&config, &mut layers);
            // A docker archive has no OCI manifest: one is written for its config as it is.
            let (manifest, new) =
                self.write_manifest(&layers, &config_digest, config_bytes.len() as u64)?;
            if new {
                added.blobs.push(manifest.clone());
            }
            let record = ImageRecord {
                name: image_name,
                manifest: manifest.to_string(),
                config: config_digest.to_string(),
                created: config["created"].as_str().unwrap_or_default().to_string(),
                settings: settings_from_config(&config),
                history: history_steps(&config),
                layers,
            };
            records.push(record);
        }
        Ok(records)
    }

    /// An OCI manifest for layers and an existing config blob.
    fn write_manifest(
        &self,
        layers: &[LayerRecord],
        config: &Digest,
        config_size: u64,
    ) -> Result<(Digest, bool), ImageError> {
        let layers: Vec<serde_json::Value> = layers
            .iter()
            .map(|l| serde_json::json!({"mediaType": l.media_type, "digest": l.digest, "size": l.size}))
            .collect();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MediaType::ImageManifest.to_string(),
            "config": {"mediaType": MediaType::ImageConfig.to_string(), "digest": config.to_string(), "size": config_size},
            "layers": layers,
        });
        self.blobs
            .write_bytes(&serde_json::to_vec(&manifest).expect("manifests serialize"))
    }
}

/// A name given on the command line names the input's one image.
fn one_name_for_one_image(images: usize, name: Option<&str>) -> Result<(), ImageError> {
    if images > 1 && name.is_some() {
        return Err(ImageError::Invalid {
            what: format!(
                "the input holds {images} images: import it without a name (each keeps its own)"
            ),
        });
    }
    Ok(())
}

fn looks_like_tag(s: &str) -> bool {
    s == "latest" || s.chars().next().is_some_and(|c| c.is_ascii_digit())
}

fn read_limited(path: &Path) -> Result<Vec<u8>, ImageError> {
    let meta = fs::metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => ImageError::Corrupt {
            what: format!("{} is missing", path.display()),
        },
        _ => io_err("reading", path)(e),
    })?;
    if meta.len() > MAX_JSON {
        return Err(ImageError::Invalid {
            what: format!(
                "{}: {} bytes is too large for a JSON document",
                path.display(),
                meta.len()
            ),
        });
    }
    fs::read(path).map_err(io_err("reading", path))
}

fn parse_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ImageError> {
    let bytes = read_limited(path)?;
    serde_json::from_slice(&bytes).map_err(|e| ImageError::Invalid {
        what: format!("{}: {e}", path.display()),
    })
}

/// A path named by an archive's manifest, which must stay inside the archive.
fn inside(dir: &Path, rel: &str) -> Result<PathBuf, ImageError> {
    let path = Path::new(rel);
    if rel.is_empty() || !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(ImageError::Invalid {
            what: format!("manifest.json names {rel:?}, which is not a path inside the archive"),
        });
    }
    Ok(dir.join(path))
}

fn diff_ids(config: &serde_json::Value) -> Result<Vec<Digest>, ImageError> {
    config["rootfs"]["diff_ids"]
        .as_array()
        .ok_or_else(|| ImageError::Invalid {
            what: "the image config has no rootfs.diff_ids".into(),
        })?
        .iter()
        .map(|d| Digest::parse(d.as_str().unwrap_or_default()))
        .collect()
}

/// The history entries of a config, as steps.
fn history_steps(config: &serde_json::Value) -> Vec<HistoryStep> {
    config["history"]
        .as_array()
        .map(|h| {
            h.iter()
                .map(|e| HistoryStep {
                    created_by: e["created_by"].as_str().unwrap_or_default().to_string(),
                    empty_layer: e["empty_layer"].as_bool().unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Each layer's `created_by`, from the history entries that are not empty layers.
fn attach_history(config: &serde_json::Value, layers: &mut [LayerRecord]) {
    let made: Vec<String> = history_steps(config)
        .into_iter()
        .filter(|s| !s.empty_layer)
        .map(|s| s.created_by)
        .collect();
    if made.len() == layers.len() {
        for (l, by) in layers.iter_mut().zip(made) {
            l.created_by = Some(by);
        }
    }
}
