//! Running a parsed Dockerfile: each RUN in a container of the image so far, whose upper
//! folder becomes the next layer; each COPY a layer made from the build context; the other
//! instructions change the image's settings (a history entry, no layer).

use std::fs::{self, File};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use isolab_shared::spec::{ContainerSpec, NsMode};

use super::command::{to_argv, BuildSettings, Form};
use super::dockerfile::{self, CopyArgs, Dockerfile, InstructionKind};
use super::BuildError;
use crate::runtime::container::{CreateOptions, Runtime, StdioSpec};
use crate::runtime::image::{
    resolve_user, temp_name, HistoryStep, Image, ImageRecord, LayerRecord, TempDir, BUSYBOX_IMAGE,
};
use crate::runtime::layer::IdShift;

/// What a build reports while it runs.
#[derive(Debug, Clone)]
pub enum BuildEvent {
    /// Steps, and what RUN commands print.
    Log(String),
    /// A layer of the new image's stack, `index` 0 being the bottom (the base image's layers
    /// are reported first).
    Layer { index: usize, layer: LayerRecord },
}

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// `-t NAME`.
    pub name: String,
    pub dockerfile: String,
    /// The build context (COPY's sources); None refuses COPY.
    pub context: Option<PathBuf>,
    /// Limits of each RUN's container (the server applies its per-container defaults).
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    pub pids_limit: Option<i64>,
}

/// The image so far.
struct Stage {
    layers: Vec<LayerRecord>,
    settings: BuildSettings,
    history: Vec<HistoryStep>,
}

/// Build `req` into an image, saved under its name; returns its record.
pub fn build(
    rt: &Runtime,
    req: &BuildRequest,
    events: &mut dyn FnMut(BuildEvent),
) -> Result<ImageRecord, BuildError> {
    let name = crate::runtime::image::ImageStore::normalize_name(&req.name)?;
    let file = dockerfile::parse(&req.dockerfile)?;
    let total = file.instructions.len() + 1;
    // The store lock, shared: a collection must not take the layers this build adds before
    // its record names them.
    let _lock = rt.images.lock(false)?;
    let base = match rt.images.open(&file.from.image) {
        Err(crate::runtime::image::ImageError::NotFound(_)) if file.from.image == BUSYBOX_IMAGE => {
            rt.images.init_busybox()?
        }
        r => r?,
    };
    events(BuildEvent::Log(format!(
        "STEP 1/{total}: {}\n",
        file.from.text
    )));
    for (index, layer) in base.record.layers.iter().enumerate() {
        events(BuildEvent::Layer {
            index,
            layer: layer.clone(),
        });
    }
    let mut stage = Stage {
        layers: base.record.layers.clone(),
        settings: BuildSettings::from_base(base.settings.clone()),
        history: base.record.history.clone(),
    };
    run_steps(rt, req, &file, &mut stage, events)?;
    let record = rt
        .images
        .commit(&name, &stage.settings.image, stage.layers, stage.history)?;
    rt.images.save_record(&record)?;
    events(BuildEvent::Log(format!(
        "built {name} {}\n",
        &record.manifest[..19.min(record.manifest.len())]
    )));
    Ok(record)
}

fn run_steps(
    rt: &Runtime,
    req: &BuildRequest,
    file: &Dockerfile,
    stage: &mut Stage,
    events: &mut dyn FnMut(BuildEvent),
) -> Result<(), BuildError> {
    let total = file.instructions.len() + 1;
    for (i, ins) in file.instructions.iter().enumerate() {
        events(BuildEvent::Log(format!(
            "STEP {}/{total}: {}\n",
            i + 2,
            ins.text
        )));
        let made = match &ins.kind {
            InstructionKind::Run(form) => Some(run_layer(rt, req, stage, form, &ins.text, events)?),
            InstructionKind::Copy(args) => Some(copy_layer(rt, req, stage, args, &ins.text)?),
            _ => {
                stage.settings.apply(ins)?;
                None
            }
        };
        match made {
            Some(mut layer) => {
                layer.created_by = Some(ins.text.clone());
                events(BuildEvent::Log(format!(
                    " ---> layer {} ({} bytes)\n",
                    &layer.digest[..19.min(layer.digest.len())],
                    layer.size
                )));
                events(BuildEvent::Layer {
                    index: stage.layers.len(),
                    layer: layer.clone(),
                });
                stage.history.push(HistoryStep {
                    created_by: ins.text.clone(),
                    empty_layer: false,
                });
                stage.layers.push(layer);
            }
            None => stage.history.push(HistoryStep {
                created_by: ins.text.clone(),
                empty_layer: true,
            }),
        }
    }
    Ok(())
}

/// `base` joined with `path` (absolute paths replace it), `.` and `..` resolved lexically.
fn join_clean(base: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        PathBuf::from(path)
    } else {
        Path::new(base).join(path)
    };
    let mut parts: Vec<String> = Vec::new();
    for c in joined.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    format!("/{}", parts.join("/"))
}

/// The image so far, as the runtime opens one.
fn stage_image(rt: &Runtime, stage: &Stage) -> Result<Image, BuildError> {
    let mut layers = Vec::new();
    for l in &stage.layers {
        layers.push(
            rt.images
                .layer_dir(&crate::runtime::image::Digest::parse(&l.diff_id)?),
        );
    }
    let record = ImageRecord {
        name: "build".into(),
        manifest: String::new(),
        config: String::new(),
        created: String::new(),
        settings: stage.settings.image.clone(),
        layers: stage.layers.clone(),
        history: Vec::new(),
    };
    Ok(Image {
        name: "build".into(),
        layers,
        settings: stage.settings.image.clone(),
        record,
    })
}

/// One RUN: a container of the image so far runs the command (no ENTRYPOINT, as docker);
/// its output streams; a non-zero exit fails the build; its upper folder is the layer.
fn run_layer(
    rt: &Runtime,
    req: &BuildRequest,
    stage: &Stage,
    form: &Form,
    text: &str,
    events: &mut dyn FnMut(BuildEvent),
) -> Result<LayerRecord, BuildError> {
    let image = stage_image(rt, stage)?;
    let mut spec = ContainerSpec::new("build", to_argv(form));
    spec.entrypoint = Some(Vec::new());
    spec.memory = req.memory.map(isolab_shared::spec::MemorySize);
    spec.cpus = req.cpus;
    spec.pids_limit = req.pids_limit;
    // A build step has no network to reach (none is set up yet), like `--network none`.
    spec.namespaces.net = NsMode::Private;
    let work = TempDir(rt.images.tmp_dir()?.join(temp_name("run")));
    fs::create_dir(&work.0).map_err(|e| BuildError::Run(format!("{}: {e}", work.0.display())))?;
    let upper = work.0.join("upper");
    let opts = CreateOptions {
        keep_upper: Some(upper.clone()),
        ..CreateOptions::default()
    };
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| BuildError::Run(format!("a pipe for the output: {e}")))?;
    let null: OwnedFd = File::open("/dev/null")
        .map_err(|e| BuildError::Run(format!("/dev/null: {e}")))?
        .into();
    let write2 = write
        .try_clone()
        .map_err(|e| BuildError::Run(format!("a pipe for the output: {e}")))?;
    let mut container =
        rt.create_from(&spec, image, &opts, StdioSpec::Fds([null, write, write2]))?;
    container.start()?;
    // Our copies of the write end are gone with the spec; read until the command's are too.
    let mut out = File::from(read);
    let mut buf = [0u8; 8192];
    loop {
        match out.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => events(BuildEvent::Log(
                String::from_utf8_lossy(&buf[..n]).into_owned(),
            )),
        }
    }
    let status = container.wait()?;
    if status.code != 0 {
        return Err(BuildError::Run(format!(
            "{text}: the command returned a non-zero code: {}",
            status.code
        )));
    }
    if !upper.is_dir() {
        return Err(BuildError::Run(format!(
            "{text}: its changes were not kept"
        )));
    }
    // A RUN ran with a user namespace: its files belong to host ids that stand for the ids
    // it saw, which the layer records.
    let shift = IdShift::of_upper(&upper)
        .map_err(|e| BuildError::Run(format!("{}: {e}", upper.display())))?;
    Ok(rt.images.add_layer_shifted(&upper, text, shift)?)
}

/// One COPY: the sources (inside the context) laid out at their destination in a folder of
/// their own, which becomes the layer.
fn copy_layer(
    rt: &Runtime,
    req: &BuildRequest,
    stage: &Stage,
    args: &CopyArgs,
    text: &str,
) -> Result<LayerRecord, BuildError> {
    let sub = |w: &str| stage.settings.substitute(w);
    let Some(context) = &req.context else {
        return Err(BuildError::Copy(
            "COPY needs a build context (`isolab build DIR`); the page builds without one".into(),
        ));
    };
    let context = context
        .canonicalize()
        .map_err(|e| BuildError::Copy(format!("the context {}: {e}", context.display())))?;
    let workdir = stage
        .settings
        .image
        .workdir
        .clone()
        .unwrap_or_else(|| "/".into());
    let dest_text = sub(&args.dest);
    let dest = join_clean(&workdir, &dest_text);
    let into_dir = dest_text.ends_with('/') || args.sources.len() > 1;
    let owner = match args.chown.as_deref().map(&sub).filter(|c| !c.is_empty()) {
        Some(c) => Some(resolve_user(&stage_image(rt, stage)?.layers, &c)?),
        None => None,
    };
    let work = TempDir(rt.images.tmp_dir()?.join(temp_name("copy")));
    fs::create_dir(&work.0).map_err(|e| BuildError::Copy(format!("{}: {e}", work.0.display())))?;
    let root = work.0.join("root");
    for src in &args.sources {
        let src = sub(src);
        let rel = Path::new(&src);
        if rel.is_absolute() || rel.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(BuildError::Copy(format!(
                "{src:?} is outside the build context"
            )));
        }
        let from = context.join(rel);
        let real = from
            .canonicalize()
            .map_err(|e| BuildError::Copy(format!("{src:?}: {e}")))?;
        if !real.starts_with(&context) {
            return Err(BuildError::Copy(format!(
                "{src:?} leads outside the build context (through a symlink)"
            )));
        }
        let meta = fs::metadata(&real).map_err(|e| BuildError::Copy(format!("{src:?}: {e}")))?;
        let target = if meta.is_dir() {
            // A folder's contents go into the destination, as docker does.
            root.join(dest.trim_start_matches('/'))
        } else if into_dir {
            root.join(dest.trim_start_matches('/'))
                .join(real.file_name().unwrap_or_default())
        } else {
            root.join(dest.trim_start_matches('/'))
        };
        copy_tree(&real, &target, owner)?;
    }
    if !root.exists() {
        fs::create_dir_all(&root).map_err(|e| BuildError::Copy(e.to_string()))?;
    }
    Ok(rt.images.add_layer_from_dir(&root, text)?)
}

/// Copy a file or folder (symlinks as symlinks, never followed out of the context), owned by
/// `owner` or root.
fn copy_tree(from: &Path, to: &Path, owner: Option<(u32, u32)>) -> Result<(), BuildError> {
    let err = |e: std::io::Error| BuildError::Copy(format!("{}: {e}", from.display()));
    let meta = fs::symlink_metadata(from).map_err(err)?;
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(err)?;
    }
    let (uid, gid) = owner.unwrap_or((0, 0));
    if meta.file_type().is_symlink() {
        let target = fs::read_link(from).map_err(err)?;
        std::os::unix::fs::symlink(&target, to).map_err(err)?;
    } else if meta.is_dir() {
        fs::create_dir_all(to).map_err(err)?;
        fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777)).map_err(err)?;
        for entry in fs::read_dir(from).map_err(err)? {
            let entry = entry.map_err(err)?;
            copy_tree(&entry.path(), &to.join(entry.file_name()), owner)?;
        }
    } else if meta.is_file() {
        fs::copy(from, to).map_err(err)?;
    } else {
        return Err(BuildError::Copy(format!(
            "{}: only files, folders and symlinks can be copied",
            from.display()
        )));
    }
    std::os::unix::fs::lchown(to, Some(uid), Some(gid)).map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workdirs_join_and_clean() {
        assert_eq!(join_clean("/", "app"), "/app");
        assert_eq!(join_clean("/app", "src/../lib"), "/app/lib");
        assert_eq!(join_clean("/app", "/srv"), "/srv");
        assert_eq!(join_clean("/", "../.."), "/");
    }
}
