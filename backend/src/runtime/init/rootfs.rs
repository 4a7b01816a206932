//! The container's root: the spec's mounts on top of the overlay, the default devices and their
//! links, `pivot_root` with the old root detached, then masked and read-only paths.
//!
//! Runs inside the container's new mount namespace, so every mount made here vanishes with it.

use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Component, Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};
use nix::unistd::{chdir, pivot_root};
use oci_spec::runtime::{LinuxDevice, Mount};

use super::protocol::{CreateConfig, Failure, RootfsLayers};
use super::Step;

/// Links every `/dev` has.
const DEV_LINKS: [(&str, &str); 6] = [
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
    ("pts/ptmx", "ptmx"),
    ("/proc/kcore", "core"),
];

/// `root_mount`: the overlay as a detached mount, to attach here (a container with its own
/// user namespace, see `idmap`); without it the overlay is already mounted on the host side.
/// `binds`: the spec's idmapped bind mounts as detached mounts, in the spec's order.
pub fn setup(
    cfg: &CreateConfig,
    layers: &RootfsLayers,
    root_mount: Option<OwnedFd>,
    binds: Vec<OwnedFd>,
) -> Result<(), Failure> {
    let root = layers.target.as_path();
    // Nothing we mount may propagate back to the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .step("make / private")?;
    if let Some(mnt) = root_mount {
        super::idmap::attach(&mnt, root)?;
    } else {
        // A mount made in this namespace: the overlay came from the host's, and inside a user
        // namespace such a mount is locked, which pivot_root refuses (runc binds it the same
        // way).
        mount(
            Some(root),
            root,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .step("bind rootfs")?;
    }
    let mut binds = binds.into_iter();
    for m in cfg.spec.mounts().iter().flatten() {
        if crate::runtime::spec::is_idmapped(m) {
            let mnt = binds.next().ok_or_else(|| Failure {
                step: format!("mount {}", m.destination().display()),
                message: "the monitor sent no idmapped mount for it".into(),
            })?;
            attach_bind(root, m, &mnt)?;
        } else {
            mount_entry(root, m, cfg)?;
        }
    }
    // runc's default devices always, then the spec's own (a bundle from `runc spec` lists
    // none and relies on them).
    let mut devices = crate::runtime::spec::default_devices();
    for d in cfg
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
    {
        devices.retain(|have| have.path() != d.path());
        devices.push(d.clone());
    }
    create_devices(root, &devices)?;
    for (target, link) in DEV_LINKS {
        let path = root.join("dev").join(link);
        if !path.exists() {
            symlink(target, &path).step(&format!("link /dev/{link}"))?;
        }
    }
    enter(root)?;
    let linux = cfg.spec.linux().as_ref();
    for p in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        mask(Path::new(p))?;
    }
    for p in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        make_readonly(Path::new(p))?;
    }
    if cfg
        .spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        remount_readonly(Path::new("/")).step("make / read-only")?;
    }
    Ok(())
}

/// Join `dest` to `root`, refusing `..` and any symlink on the way (an image must not be able to
/// aim a mount at the host).
fn inside(root: &Path, dest: &Path) -> Result<PathBuf, Failure> {
    let mut path = root.to_path_buf();
    for c in dest.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => {
                path.push(name);
                if path
                    .symlink_metadata()
                    .is_ok_and(|m| m.file_type().is_symlink())
                {
                    return Err(Failure {
                        step: format!("mount {}", dest.display()),
                        message: "the image has a symlink on this path".into(),
                    });
                }
            }
            _ => {
                return Err(Failure {
                    step: format!("mount {}", dest.display()),
                    message: "a mount destination may not contain '..'".into(),
                })
            }
        }
    }
    Ok(path)
}

struct Options {
    flags: MsFlags,
    propagation: MsFlags,
    data: Vec<String>,
}

fn parse_options(opts: &[String]) -> Options {
    let mut o = Options {
        flags: MsFlags::empty(),
        propagation: MsFlags::empty(),
        data: Vec::new(),
    };
    for opt in opts {
        match opt.as_str() {
            "ro" => o.flags |= MsFlags::MS_RDONLY,
            "rw" => o.flags &= !MsFlags::MS_RDONLY,
            "nosuid" => o.flags |= MsFlags::MS_NOSUID,
            "nodev" => o.flags |= MsFlags::MS_NODEV,
            "noexec" => o.flags |= MsFlags::MS_NOEXEC,
            "sync" => o.flags |= MsFlags::MS_SYNCHRONOUS,
            "noatime" => o.flags |= MsFlags::MS_NOATIME,
            "nodiratime" => o.flags |= MsFlags::MS_NODIRATIME,
            "relatime" => o.flags |= MsFlags::MS_RELATIME,
            "strictatime" => o.flags |= MsFlags::MS_STRICTATIME,
            "bind" => o.flags |= MsFlags::MS_BIND,
            "rbind" => o.flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
            "private" => o.propagation |= MsFlags::MS_PRIVATE,
            "rprivate" => o.propagation |= MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            "slave" => o.propagation |= MsFlags::MS_SLAVE,
            "rslave" => o.propagation |= MsFlags::MS_SLAVE | MsFlags::MS_REC,
            "shared" | "rshared" | "unbindable" | "runbindable" => {}
            "dev" | "suid" | "exec" | "atime" | "async" => {}
            other => o.data.push(other.to_string()),
        }
    }
    o
}

fn mount_entry(root: &Path, m: &Mount, cfg: &CreateConfig) -> Result<(), Failure> {
    let dest = inside(root, m.destination())?;
    let step = format!("mount {}", m.destination().display());
    let opts = parse_options(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().as_deref().unwrap_or("");
    let data = opts.data.join(",");
    let data = (!data.is_empty()).then_some(data.as_str());
    if opts.flags.contains(MsFlags::MS_BIND) {
        let src = m.source().as_deref().unwrap_or(Path::new(""));
        if src.is_dir() {
            fs::create_dir_all(&dest).step(&step)?;
        } else if !dest.exists() {
            fs::create_dir_all(dest.parent().unwrap_or(root)).step(&step)?;
            fs::write(&dest, b"").step(&step)?;
        }
        bind(src, &dest, opts.flags).step(&step)?;
    } else if typ == "cgroup" || typ == "cgroup2" {
        fs::create_dir_all(&dest).step(&step)?;
        mount_cgroup(&dest, &opts, cfg).step(&step)?;
    } else {
        fs::create_dir_all(&dest).step(&step)?;
        let src = m.source().as_deref().unwrap_or(Path::new(typ));
        // No device cgroup is needed to keep devices out: every file system we mount is nodev
        // (devpts excepted: it holds only ptys and refuses mknod), and the spec's devices are
        // bind mounts of the host's nodes. CAP_MKNOD then makes only nodes nobody can open.
        // /proc never runs or elevates anything either (nosuid, noexec, as docker's defaults).
        let flags = match typ {
            "devpts" => opts.flags,
            "proc" => opts.flags | MsFlags::MS_NODEV | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            _ => opts.flags | MsFlags::MS_NODEV,
        };
        let r = mount(Some(src), &dest, Some(typ), flags, data);
        match r {
            // sysfs belongs to the network namespace: without a private one (or inside a user
            // namespace that does not own it) bind the host's, read-only, as runc does.
            Err(nix::Error::EPERM) if typ == "sysfs" => bind(
                Path::new("/sys"),
                &dest,
                opts.flags | MsFlags::MS_BIND | MsFlags::MS_REC,
            )
            .step(&step)?,
            r => r.step(&step)?,
        }
    }
    if !opts.propagation.is_empty() {
        mount(
            None::<&str>,
            &dest,
            None::<&str>,
            opts.propagation,
            None::<&str>,
        )
        .step(&step)?;
    }
    Ok(())
}

/// Attach `mnt`, an idmapped clone of `m`'s source made by the monitor, at `m`'s destination
/// (a folder or an empty file made for it, as the source is).
fn attach_bind(root: &Path, m: &Mount, mnt: &OwnedFd) -> Result<(), Failure> {
    let dest = inside(root, m.destination())?;
    let step = format!("mount {}", m.destination().display());
    let is_dir = nix::sys::stat::fstat(mnt)
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
        .step(&step)?;
    if is_dir {
        fs::create_dir_all(&dest).step(&step)?;
    } else if !dest.exists() {
        fs::create_dir_all(dest.parent().unwrap_or(root)).step(&step)?;
        fs::write(&dest, b"").step(&step)?;
    }
    super::idmap::attach(mnt, &dest)
}

/// Bind `src` on `dest`; flags beyond bind (ro, nosuid, …) need a second, remounting call.
fn bind(src: &Path, dest: &Path, flags: MsFlags) -> nix::Result<()> {
    let bind_flags = flags & (MsFlags::MS_BIND | MsFlags::MS_REC);
    mount(Some(src), dest, None::<&str>, bind_flags, None::<&str>)?;
    let rest = flags & !(MsFlags::MS_BIND | MsFlags::MS_REC);
    if !rest.is_empty() {
        let keep = locked_flags(dest);
        mount(
            None::<&str>,
            dest,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | rest | keep,
            None::<&str>,
        )?;
    }
    Ok(())
}

/// cgroup v2: a fresh cgroup2 mount (rooted at the container's cgroup by its namespace).
/// cgroup v1: a tmpfs holding a read-only bind of the container's own folder per hierarchy.
fn mount_cgroup(dest: &Path, opts: &Options, cfg: &CreateConfig) -> nix::Result<()> {
    if cfg.cgroup_v1_dirs.is_empty() {
        return mount(
            Some("cgroup"),
            dest,
            Some("cgroup2"),
            opts.flags,
            None::<&str>,
        );
    }
    let fl = opts.flags & !MsFlags::MS_RDONLY;
    mount(Some("tmpfs"), dest, Some("tmpfs"), fl, Some("mode=755"))?;
    for (name, dir) in &cfg.cgroup_v1_dirs {
        let target = dest.join(name);
        fs::create_dir_all(&target).map_err(|_| nix::Error::EIO)?;
        bind(
            dir,
            &target,
            MsFlags::MS_BIND | (opts.flags & MsFlags::MS_RDONLY),
        )?;
    }
    if opts.flags.contains(MsFlags::MS_RDONLY) {
        mount(
            None::<&str>,
            dest,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | fl,
            Some("mode=755"),
        )?;
    }
    Ok(())
}

/// Make the default device nodes: `mknod` when we may, else (in a user namespace) bind the
/// host's node onto an empty file, as runc does.
/// Make the spec's device nodes (`linux.devices`: the runtime spec's six defaults) as bind
/// mounts of the host's, which stay usable on the `nodev` /dev (runc does the same inside a
/// user namespace, where mknod is not allowed anyway).
fn create_devices(root: &Path, devices: &[LinuxDevice]) -> Result<(), Failure> {
    for d in devices {
        let path = inside(root, d.path())?;
        let step = format!("create {}", d.path().display());
        if path.exists() {
            continue;
        }
        let host = fs::metadata(d.path()).step(&step)?;
        let (major, minor) = (libc::major(host.rdev()), libc::minor(host.rdev()));
        if (i64::from(major), i64::from(minor)) != (d.major(), d.minor()) {
            return Err(Failure {
                step,
                message: format!(
                    "the host's node is {major}:{minor}, not {}:{}",
                    d.major(),
                    d.minor()
                ),
            });
        }
        fs::write(&path, b"").step(&step)?;
        bind(d.path(), &path, MsFlags::MS_BIND).step(&step)?;
    }
    Ok(())
}

/// `pivot_root` into `root` and detach the old root (runc's pivot_root(".", ".") trick: no
/// temporary folder is needed).
fn enter(root: &Path) -> Result<(), Failure> {
    chdir(root).step("chdir to rootfs")?;
    pivot_root(".", ".").step("pivot_root")?;
    umount2(".", MntFlags::MNT_DETACH).step("detach old root")?;
    chdir("/").step("chdir /")?;
    Ok(())
}

/// Hide a path: `/dev/null` over a file, an empty read-only tmpfs over a folder.
fn mask(path: &Path) -> Result<(), Failure> {
    let step = format!("mask {}", path.display());
    let Ok(meta) = fs::metadata(path) else {
        return Ok(());
    };
    if meta.is_dir() {
        mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .step(&step)
    } else {
        mount(
            Some("/dev/null"),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .step(&step)
    }
}

fn make_readonly(path: &Path) -> Result<(), Failure> {
    if !path.exists() {
        return Ok(());
    }
    let step = format!("read-only {}", path.display());
    mount(
        Some(path),
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .step(&step)?;
    remount_readonly(path).step(&step)
}

fn remount_readonly(path: &Path) -> nix::Result<()> {
    let keep = locked_flags(path);
    mount(
        None::<&str>,
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | keep,
        None::<&str>,
    )
}

/// The flags a bind remount must repeat (inside a user namespace they are locked).
fn locked_flags(path: &Path) -> MsFlags {
    let Ok(st) = statvfs(path) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (s, m) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(s) {
            out |= m;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_and_data() {
        let o = parse_options(&[
            "nosuid".into(),
            "ro".into(),
            "mode=755".into(),
            "rbind".into(),
        ]);
        assert!(o
            .flags
            .contains(MsFlags::MS_NOSUID | MsFlags::MS_RDONLY | MsFlags::MS_BIND));
        assert!(o.flags.contains(MsFlags::MS_REC));
        assert_eq!(o.data, ["mode=755"]);
    }

    #[test]
    fn destinations_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("evil")).unwrap();
        assert!(inside(dir.path(), Path::new("/evil/x")).is_err());
        assert!(inside(dir.path(), Path::new("/a/../b")).is_err());
        assert_eq!(
            inside(dir.path(), Path::new("/proc")).unwrap(),
            dir.path().join("proc")
        );
    }
}
