//! An image's record (what `image.json` holds), the settings a container starts from, and how
//! layers and images are added: a layer from a folder or from a blob, an image from layers
//! (its OCI config and manifest written as blobs, so an export is a copy).

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::Path;

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, HistoryBuilder, ImageConfigurationBuilder,
    ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};
use serde::{Deserialize, Serialize};

use super::{io_err, temp_name, Digest, HashingReader, ImageError, ImageStore, TempDir};
use crate::runtime::layer;

/// What a container of the image starts from (the OCI config's `config` part).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSettings {
    /// `KEY=VALUE` entries.
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// One layer of an image, bottom first in [`ImageRecord::layers`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// The blob's digest (of the tar as stored: compressed or not).
    pub digest: String,
    /// The digest of the uncompressed tar: the unpacked folder's name.
    pub diff_id: String,
    /// The blob's size in bytes.
    pub size: u64,
    pub media_type: String,
    /// The instruction that made it (`RUN apk add curl`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

/// One step of an image's history: a layer, or a settings change (`empty_layer`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryStep {
    pub created_by: String,
    #[serde(default)]
    pub empty_layer: bool,
}

/// `images/<name>/image.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub name: String,
    /// The manifest blob's digest (an image's identity, as `docker images --digests`).
    pub manifest: String,
    pub config: String,
    pub created: String,
    pub settings: ImageSettings,
    pub layers: Vec<LayerRecord>,
    #[serde(default)]
    pub history: Vec<HistoryStep>,
}

impl ImageRecord {
    /// The record under another name (a tag of the same content).
    pub fn named(&self, name: &str) -> ImageRecord {
        ImageRecord {
            name: name.to_string(),
            ..self.clone()
        }
    }
}

/// The OCI architecture name of this machine.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

fn now_rfc3339() -> String {
    // No chrono: a UTC timestamp from the epoch seconds (civil-from-days, H. Hinnant).
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Is this a gzip stream? (Its first two bytes.)
pub(super) fn is_gzip(path: &Path) -> Result<bool, ImageError> {
    let mut magic = [0u8; 2];
    let mut f = File::open(path).map_err(io_err("opening", path))?;
    let n = f.read(&mut magic).map_err(io_err("reading", path))?;
    Ok(n == 2 && magic == [0x1f, 0x8b])
}

impl ImageStore {
    /// Turn a folder into a layer: its tar (reproducible, from [`layer::diff`]) gzipped into a
    /// blob, and the tar unpacked into the layer folder (so what runs is what exports).
    pub fn add_layer_from_dir(
        &self,
        dir: &Path,
        created_by: &str,
    ) -> Result<LayerRecord, ImageError> {
        self.add_layer_shifted(dir, created_by, layer::IdShift::default())
    }

    /// [`Self::add_layer_from_dir`] for a container's upper folder, its owners written less
    /// `shift` (the host ids of the container's root).
    pub fn add_layer_shifted(
        &self,
        dir: &Path,
        created_by: &str,
        shift: layer::IdShift,
    ) -> Result<LayerRecord, ImageError> {
        let tmp = TempDir(self.tmp_dir()?.join(temp_name("layer.tar")));
        fs::create_dir_all(&tmp.0).map_err(io_err("creating", &tmp.0))?;
        let tar_path = tmp.0.join("layer.tar.gz");
        let file = File::create(&tar_path).map_err(io_err("creating", &tar_path))?;
        let mut gz = GzEncoder::new(io::BufWriter::new(file), flate2::Compression::fast());
        layer::diff_shifted(dir, &mut gz, shift).map_err(|e| ImageError::Layer {
            layer: dir.display().to_string(),
            message: e.to_string(),
        })?;
        gz.finish()
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
            .map_err(io_err("writing", &tar_path))?;
        let blob = File::open(&tar_path).map_err(io_err("opening", &tar_path))?;
        let (digest, size, _) = self.blobs.write_from(blob, None)?;
        let mut record = self.unpack_blob(&digest, MediaType::ImageLayerGzip.to_string(), None)?;
        record.size = size;
        record.created_by = Some(created_by.to_string());
        Ok(record)
    }

    /// Unpack a stored layer blob into its layer folder (unless that exists), checking its
    /// uncompressed digest against `diff_id` when given.
    pub fn unpack_blob(
        &self,
        digest: &Digest,
        media_type: String,
        diff_id: Option<&Digest>,
    ) -> Result<LayerRecord, ImageError> {
        let path = self.blobs.path(digest);
        let size = fs::metadata(&path).map_err(io_err("reading", &path))?.len();
        if media_type.contains("zstd") {
            return Err(ImageError::Unsupported {
                what: format!("layer {} is zstd-compressed ({media_type}); gzip and plain tar layers are supported", digest.short()),
            });
        }
        if let Some(d) = diff_id {
            if self.layer_dir(d).is_dir() {
                // Already unpacked by an earlier image: the blob is not unpacked again, but
                // both its digest and its content's (the diff_id) are checked, so a blob cannot
                // borrow another layer's folder.
                self.check_blob(digest, &path, d)?;
                return Ok(LayerRecord {
                    digest: digest.to_string(),
                    diff_id: d.to_string(),
                    size,
                    media_type,
                    created_by: None,
                });
            }
        }
        let file = BufReader::new(File::open(&path).map_err(io_err("opening", &path))?);
        let mut blob = HashingReader::new(file);
        let gzip = is_gzip(&path)?;
        let work = TempDir(self.tmp_dir()?.join(temp_name("unpack")));
        fs::create_dir(&work.0).map_err(io_err("creating", &work.0))?;
        let layer_err = |message: String| ImageError::Layer {
            layer: digest.short(),
            message,
        };
        let (got_diff, _) = if gzip {
            let mut tar = HashingReader::new(GzDecoder::new(&mut blob));
            layer::apply(&mut tar, &work.0).map_err(|e| layer_err(e.to_string()))?;
            tar.finish()
                .map_err(|e| layer_err(format!("not a valid gzip stream: {e}")))?
        } else {
            let mut tar = HashingReader::new(&mut blob);
            layer::apply(&mut tar, &work.0).map_err(|e| layer_err(e.to_string()))?;
            tar.finish().map_err(io_err("reading", &path))?
        };
        let (got_blob, _) = blob.finish().map_err(io_err("reading", &path))?;
        if got_blob != *digest {
            return Err(ImageError::Corrupt {
                what: format!("layer blob {digest} has digest {got_blob}"),
            });
        }
        if let Some(want) = diff_id {
            if *want != got_diff {
                return Err(diff_id_mismatch(digest, want, &got_diff));
            }
        }
        let dest = self.layer_dir(&got_diff);
        fs::create_dir_all(self.layers_dir()).map_err(io_err("creating", &self.layers_dir()))?;
        match fs::rename(&work.0, &dest) {
            Ok(()) => std::mem::forget(work),
            // Made meanwhile by another import: the same content, ours is dropped.
            Err(_) if dest.is_dir() => {}
            Err(e) => return Err(io_err("renaming into place", &dest)(e)),
        }
        Ok(LayerRecord {
            digest: digest.to_string(),
            diff_id: got_diff.to_string(),
            size,
            media_type,
            created_by: None,
        })
    }

    /// Check a stored layer blob against its digest and its uncompressed content against
    /// `diff_id`, without unpacking it.
    fn check_blob(&self, digest: &Digest, path: &Path, diff_id: &Digest) -> Result<(), ImageError> {
        let file = BufReader::new(File::open(path).map_err(io_err("opening", path))?);
        let mut blob = HashingReader::new(file);
        let (got_diff, _) = if is_gzip(path)? {
            HashingReader::new(GzDecoder::new(&mut blob))
                .finish()
                .map_err(|e| ImageError::Layer {
                    layer: digest.short(),
                    message: format!("not a valid gzip stream: {e}"),
                })?
        } else {
            HashingReader::new(&mut blob)
                .finish()
                .map_err(io_err("reading", path))?
        };
        let (got_blob, _) = blob.finish().map_err(io_err("reading", path))?;
        if got_blob != *digest {
            return Err(ImageError::Corrupt {
                what: format!("layer blob {digest} has digest {got_blob}"),
            });
        }
        if got_diff != *diff_id {
            return Err(diff_id_mismatch(digest, diff_id, &got_diff));
        }
        Ok(())
    }

    /// Write an image's OCI config and manifest blobs for `layers` (bottom first) and
    /// `settings`; returns the record (not yet saved under its name).
    pub fn commit(
        &self,
        name: &str,
        settings: &ImageSettings,
        layers: Vec<LayerRecord>,
        history: Vec<HistoryStep>,
    ) -> Result<ImageRecord, ImageError> {
        let name = ImageStore::normalize_name(name)?;
        let created = now_rfc3339();
        let history = if history.is_empty() {
            layers
                .iter()
                .map(|l| HistoryStep {
                    created_by: l.created_by.clone().unwrap_or_default(),
                    empty_layer: false,
                })
                .collect()
        } else {
            history
        };
        let invalid = |e: oci_spec::OciSpecError| ImageError::Invalid {
            what: format!("building the image config: {e}"),
        };
        let mut config = ConfigBuilder::default().env(settings.env.clone());
        if let Some(w) = &settings.workdir {
            config = config.working_dir(w.clone());
        }
        if let Some(u) = &settings.user {
            config = config.user(u.clone());
        }
        if let Some(e) = &settings.entrypoint {
            config = config.entrypoint(e.clone());
        }
        if let Some(c) = &settings.cmd {
            config = config.cmd(c.clone());
        }
        if !settings.labels.is_empty() {
            config = config.labels(
                settings
                    .labels
                    .clone()
                    .into_iter()
                    .collect::<std::collections::HashMap<_, _>>(),
            );
        }
        let history_items = history
            .iter()
            .map(|h| {
                HistoryBuilder::default()
                    .created(created.clone())
                    .created_by(h.created_by.clone())
                    .empty_layer(h.empty_layer)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        let image_config = ImageConfigurationBuilder::default()
            .created(created.clone())
            .architecture(Arch::from(host_arch()))
            .os(Os::Linux)
            .config(config.build().map_err(invalid)?)
            .rootfs(
                RootFsBuilder::default()
                    .typ("layers")
                    .diff_ids(layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>())
                    .build()
                    .map_err(invalid)?,
            )
            .history(history_items)
            .build()
            .map_err(invalid)?;
        let config_bytes = serde_json::to_vec(&image_config).expect("configs serialize");
        let (config_digest, _) = self.blobs.write_bytes(&config_bytes)?;
        let descriptor =
            |media: MediaType, size: u64, digest: &str| -> Result<Descriptor, ImageError> {
                let d: oci_spec::image::Digest = digest.parse().map_err(invalid)?;
                Ok(Descriptor::new(media, size, d))
            };
        let layer_descriptors = layers
            .iter()
            .map(|l| descriptor(MediaType::from(l.media_type.as_str()), l.size, &l.digest))
            .collect::<Result<Vec<_>, _>>()?;
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(descriptor(
                MediaType::ImageConfig,
                config_bytes.len() as u64,
                &config_digest.to_string(),
            )?)
            .layers(layer_descriptors)
            .build()
            .map_err(invalid)?;
        let manifest_bytes = serde_json::to_vec(&manifest).expect("manifests serialize");
        let (manifest_digest, _) = self.blobs.write_bytes(&manifest_bytes)?;
        Ok(ImageRecord {
            name,
            manifest: manifest_digest.to_string(),
            config: config_digest.to_string(),
            created,
            settings: settings.clone(),
            layers,
            history,
        })
    }
}

/// A layer blob whose uncompressed content is not the one its config names.
fn diff_id_mismatch(digest: &Digest, want: &Digest, got: &Digest) -> ImageError {
    ImageError::Corrupt {
        what: format!(
            "layer {}: the config says its content (diff_id) is {want}, it is {got}",
            digest.short()
        ),
    }
}

/// The settings in an OCI (or docker) image config's `config` object.
pub(super) fn settings_from_config(config: &serde_json::Value) -> ImageSettings {
    let c = &config["config"];
    let strings = |v: &serde_json::Value| -> Option<Vec<String>> {
        v.as_array().map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
    };
    let text = |v: &serde_json::Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    ImageSettings {
        env: strings(&c["Env"]).unwrap_or_default(),
        workdir: text(&c["WorkingDir"]),
        user: text(&c["User"]),
        entrypoint: strings(&c["Entrypoint"]),
        cmd: strings(&c["Cmd"]),
        labels: c["Labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z') && t.as_bytes()[10] == b'T');
    }

    #[test]
    fn settings_read_docker_and_oci_configs() {
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Env": ["PATH=/bin", "A=b"], "Cmd": ["sh"], "WorkingDir": "",
                       "Entrypoint": null, "User": "1000:1000", "Labels": {"k": "v"}},
            "rootfs": {"type": "layers", "diff_ids": []}
        });
        let s = settings_from_config(&config);
        assert_eq!(s.env, ["PATH=/bin", "A=b"]);
        assert_eq!(s.cmd, Some(vec!["sh".to_string()]));
        assert_eq!((s.workdir, s.entrypoint), (None, None));
        assert_eq!(s.user.as_deref(), Some("1000:1000"));
        assert_eq!(s.labels["k"], "v");
    }
}
