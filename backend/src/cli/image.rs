//! `isolab image init|ls|inspect|import|export|rm|prune`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::runtime::container::Runtime;
use crate::runtime::image::import::Progress;
use crate::runtime::image::ImageStore;

#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
    /// Make the built-in `busybox` image from Debian's busybox-static.
    Init,
    /// List images: name, layers, size, id (the manifest's digest).
    Ls,
    /// One image as JSON: its settings and its layers, each with the instruction that made it.
    Inspect { name: String },
    /// Import an OCI image layout (a folder or a tar of one) or a `docker save` tarball.
    Import {
        /// The layout folder or archive.
        source: PathBuf,
        /// The name to give it (needed when the input names no image).
        name: Option<String>,
    },
    /// Write an image as an OCI image layout: a folder, or a tar when DEST ends in `.tar`.
    Export { name: String, dest: PathBuf },
    /// Remove images, then the layers and blobs nothing uses any more.
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove the layers and blobs no image and no container uses.
    Prune,
    /// Make a second image from a distribution (opt-in: it downloads and takes minutes).
    Bootstrap {
        /// Only `debian` (minbase, by debootstrap).
        distribution: String,
        /// The Debian release.
        #[arg(long, default_value = "bookworm")]
        suite: String,
        #[arg(long, default_value = "http://deb.debian.org/debian")]
        mirror: String,
        /// The image's name (default: the distribution).
        #[arg(long)]
        name: Option<String>,
    },
}

pub fn run(rt: &Runtime, cmd: ImageCommand) -> Result<ExitCode> {
    let store = &rt.images;
    match cmd {
        ImageCommand::Init => {
            let image = store.init_busybox()?;
            println!("busybox: {}", short(&image.record.manifest));
        }
        ImageCommand::Ls => {
            println!("{:<28} {:>6} {:>10}  ID", "NAME", "LAYERS", "SIZE");
            for name in store.list()? {
                let r = store.record(&name)?;
                let size: u64 = r.layers.iter().map(|l| l.size).sum();
                println!(
                    "{:<28} {:>6} {:>10}  {}",
                    name,
                    r.layers.len(),
                    human(size),
                    short(&r.manifest)
                );
            }
        }
        ImageCommand::Inspect { name } => {
            let r = store.record(&name)?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        ImageCommand::Import { source, name } => {
            let mut progress = |p: Progress| match p {
                Progress::Unpacking => eprintln!("unpacking {}", source.display()),
                Progress::Layer {
                    index,
                    count,
                    digest,
                    size,
                } => eprintln!("layer {index}/{count} {digest} {}", human(size)),
                Progress::Done { name } => println!("{name}"),
            };
            store
                .import(&source, name.as_deref(), &mut progress)
                .with_context(|| format!("import {}", source.display()))?;
        }
        ImageCommand::Export { name, dest } => {
            store
                .export(&name, &dest)
                .with_context(|| format!("export {name}"))?;
            println!("{}", exported(&name, &dest));
        }
        ImageCommand::Rm { names } => {
            for name in &names {
                if let Some(c) = rt.list().iter().find(|c| {
                    ImageStore::normalize_name(&c.image).ok()
                        == ImageStore::normalize_name(name).ok()
                }) {
                    anyhow::bail!(crate::runtime::image::ImageError::InUse {
                        name: name.clone(),
                        container: c.id.clone(),
                    });
                }
                store.remove(name)?;
                println!("{name}");
            }
            prune(rt)?;
        }
        ImageCommand::Prune => prune(rt)?,
        ImageCommand::Bootstrap {
            distribution,
            suite,
            mirror,
            name,
        } => {
            anyhow::ensure!(
                distribution == "debian",
                "only `debian` can be bootstrapped (with debootstrap), not {distribution:?}"
            );
            let b = crate::runtime::image::bootstrap::Bootstrap {
                name: name.unwrap_or_else(|| distribution.clone()),
                suite,
                mirror,
            };
            let image = store.bootstrap_debian(&b).context("bootstrap debian")?;
            println!("{} {}", image.name, short(&image.record.manifest));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn prune(rt: &Runtime) -> Result<()> {
    let got = rt.images.collect(|| rt.layers_in_use())?;
    eprintln!("removed {} layers, {} blobs", got.layers, got.blobs);
    Ok(())
}

/// The line an export prints: where it went, and how another tool reads it.
fn exported(name: &str, dest: &std::path::Path) -> String {
    let d = dest.display();
    if dest.extension().is_some_and(|e| e == "tar") {
        format!(
            "exported {name} to {d} (a tar of an OCI layout, tag \"latest\": skopeo inspect oci-archive:{d}:latest)"
        )
    } else {
        format!("exported {name} to {d} (tag \"latest\": umoci unpack --image {d}:latest BUNDLE)")
    }
}

/// `sha256:0123456789ab`.
fn short(digest: &str) -> String {
    digest.chars().take("sha256:".len() + 12).collect()
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_says_where_it_went_and_how_to_read_it() {
        assert_eq!(
            exported("web", std::path::Path::new("/tmp/web")),
            "exported web to /tmp/web (tag \"latest\": umoci unpack --image /tmp/web:latest BUNDLE)"
        );
        let tar = exported("web", std::path::Path::new("out/web.tar"));
        assert!(
            tar.starts_with("exported web to out/web.tar (a tar"),
            "{tar}"
        );
        assert!(tar.contains("oci-archive:out/web.tar:latest"), "{tar}");
    }
}
