//! The built-in `busybox` image's one layer: Debian's static busybox, its applets as relative
//! symlinks, and the few files in `/etc` a shell expects.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use super::{io_err, ImageError};

/// Runs `busybox --list-full` and returns the applet paths (relative, like
/// `usr/bin/env`), refusing anything that could escape the root filesystem.
pub(super) fn list_applets(busybox: &Path) -> Result<Vec<PathBuf>, ImageError> {
    let fail = |detail: String| ImageError::Applets {
        path: busybox.to_path_buf(),
        detail,
    };
    let out = Command::new(busybox)
        .arg("--list-full")
        .output()
        .map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8(out.stdout).map_err(|_| fail("output is not UTF-8".into()))?;
    let mut applets = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let path = PathBuf::from(line);
        if !path.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(fail(format!("unexpected applet path {line:?}")));
        }
        if path != Path::new("bin/busybox") {
            applets.push(path);
        }
    }
    if applets.is_empty() {
        return Err(fail("no applets listed".into()));
    }
    Ok(applets)
}

/// Creates `dir` with exactly `mode` (whatever the umask).
fn make_dir(dir: &Path, mode: u32) -> Result<(), ImageError> {
    fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
        .map_err(io_err("setting mode of", dir))
}

/// Writes `path` with `text` and mode 0644.
fn write_file(path: &Path, text: &str) -> Result<(), ImageError> {
    fs::write(path, text).map_err(io_err("writing", path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))
        .map_err(io_err("setting mode of", path))
}

/// Lays out the busybox root filesystem at `rootfs`.
pub(super) fn build_busybox_rootfs(
    rootfs: &Path,
    busybox: &Path,
    applets: &[PathBuf],
) -> Result<(), ImageError> {
    for (dir, mode) in [
        ("", 0o755),
        ("bin", 0o755),
        ("etc", 0o755),
        ("root", 0o700),
        ("tmp", 0o1777),
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("var", 0o755),
        ("home", 0o755),
    ] {
        make_dir(&rootfs.join(dir), mode)?;
    }
    let bin = rootfs.join("bin/busybox");
    fs::copy(busybox, &bin).map_err(io_err("copying busybox to", &bin))?;
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755))
        .map_err(io_err("setting mode of", &bin))?;

    for applet in applets {
        let link = rootfs.join(applet);
        if let Some(parent) = link.parent() {
            if !parent.is_dir() {
                make_dir(parent, 0o755)?;
            }
        }
        // Relative, so the link is also right when followed from the host.
        let target: PathBuf = if applet.parent() == Some(Path::new("bin")) {
            PathBuf::from("busybox")
        } else {
            let depth = applet.components().count() - 1;
            std::iter::repeat_n(OsStr::new(".."), depth)
                .chain([OsStr::new("bin"), OsStr::new("busybox")])
                .collect()
        };
        match symlink(&target, &link) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            other => other.map_err(io_err("linking applet", &link))?,
        }
    }

    let etc = rootfs.join("etc");
    write_file(
        &etc.join("passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    write_file(
        &etc.join("group"),
        "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
    )?;
    write_file(
        &etc.join("hosts"),
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    )?;
    write_file(&etc.join("resolv.conf"), "")?;
    // Every time stamp the binary's: the same busybox makes the same layer, byte for byte,
    // whenever and wherever it is built (concurrent inits agree; the image's digest is stable).
    let stamp = fs::metadata(busybox)
        .map_err(io_err("reading", busybox))?
        .modified()
        .ok();
    if let Some(t) = stamp.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()) {
        let ts = nix::sys::time::TimeSpec::new(t.as_secs() as i64, 0);
        set_times(rootfs, &ts)?;
    }
    Ok(())
}

/// Set the access and modification times of a tree, symlinks themselves included, children
/// before their folder (writing into a folder changes its time).
fn set_times(path: &Path, ts: &nix::sys::time::TimeSpec) -> Result<(), ImageError> {
    let meta = fs::symlink_metadata(path).map_err(io_err("reading", path))?;
    if meta.is_dir() {
        for entry in fs::read_dir(path).map_err(io_err("reading", path))? {
            let entry = entry.map_err(io_err("reading", path))?;
            set_times(&entry.path(), ts)?;
        }
    }
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        ts,
        ts,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| io_err("setting the time of", path)(e.into()))
}
