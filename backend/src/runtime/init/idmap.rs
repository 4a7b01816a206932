//! The overlay root of a container with a private user namespace, over *idmapped* image layers.
//!
//! The layer store keeps files with the owners the image gave them (root is 0). Inside a user
//! namespace that maps root to host uid 1000000000, a plain overlay of those layers would show
//! every file as `nobody`, and the container's root could change none of them. An idmapped
//! mount (Linux 5.12; overlayfs over idmapped layers since 5.19) shifts owners as the kernel
//! reads them: uid 0 on disk is seen as the container's root, and nothing is copied or chowned.
//!
//! The monitor, still host root, makes a detached copy of each layer (`open_tree`), idmaps it
//! with the container's user namespace (`mount_setattr`), then builds the overlay with the new
//! mount API (`fsopen`/`fsconfig`/`fsmount`) as another detached mount. The container's first
//! process, which cannot do any of this inside its namespace, receives that mount over its
//! stage channel and attaches it with `move_mount` (runc 1.2 does the same for idmapped mounts).
//! Files the container writes land in the upper folder with their host ids (1000000000 up).
//!
//! The spec's idmapped bind mounts (named volumes) are made the same way: a detached clone of
//! the source, idmapped with the container's user namespace, attached by the container at its
//! destination. Through such a mount the container's root is uid 0 on disk, so a folder stored
//! 0:0 is its root's in every container, whatever their uid ranges.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};

use super::protocol::{Failure, RootfsLayers};
use super::Step;

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_SYMLINK_NOFOLLOW: libc::c_uint = 0x100;
const AT_EMPTY_PATH: libc::c_uint = 0x1000;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

/// `struct mount_attr` (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// A raw fd from a syscall's return value, or the errno.
fn fd_result(ret: libc::c_long) -> std::io::Result<OwnedFd> {
    if ret < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the syscall returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

fn c_path(p: &Path) -> std::io::Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes()).map_err(std::io::Error::other)
}

/// A detached copy of `dir` (not following a symlink there; with the mounts below it when
/// `recursive`), its owners seen through the user namespace `userns`, with `attrs` (nodev
/// always).
fn idmapped_clone(
    dir: &Path,
    userns: &File,
    attrs: u64,
    recursive: bool,
) -> std::io::Result<OwnedFd> {
    let path = c_path(dir)?;
    let rec = if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: open_tree reads a NUL-terminated path and returns a new descriptor or -1.
    let tree = fd_result(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            OPEN_TREE_CLONE | AT_SYMLINK_NOFOLLOW | rec | libc::O_CLOEXEC as libc::c_uint,
        )
    })?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP | MOUNT_ATTR_NODEV | attrs,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: `attr` is a live, correctly sized `struct mount_attr`; the empty path with
    // AT_EMPTY_PATH names `tree` itself.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            AT_EMPTY_PATH | rec,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(tree)
}

/// `fsconfig` with a key and an optional string value.
fn fsconfig(
    fs: &OwnedFd,
    cmd: libc::c_uint,
    key: &str,
    value: Option<&str>,
) -> Result<(), Failure> {
    let key_c = CString::new(key).step("fsconfig key")?;
    let value_c = value.map(CString::new).transpose().step("fsconfig value")?;
    let value_ptr = value_c.as_ref().map_or(std::ptr::null(), |v| v.as_ptr());
    let key_ptr = if cmd == FSCONFIG_CMD_CREATE {
        std::ptr::null()
    } else {
        key_c.as_ptr()
    };
    // SAFETY: key and value are NUL-terminated strings (or null where the command takes
    // none) that outlive the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            cmd,
            key_ptr,
            value_ptr,
            0 as libc::c_int,
        )
    };
    if ret < 0 {
        let e = std::io::Error::last_os_error();
        return Err(Failure {
            step: format!("overlay option {key}"),
            message: e.to_string(),
        });
    }
    Ok(())
}

/// The container's overlay root as a detached mount: the image layers idmapped with `userns`
/// (the container's user namespace, its maps written), the upper and work folders as they are.
pub fn overlay(layers: &RootfsLayers, userns: &File) -> Result<OwnedFd, Failure> {
    // Held until the overlay is made: each lower layer is named by its descriptor.
    let lower = layers
        .lower
        .iter()
        .map(|dir| {
            idmapped_clone(dir, userns, 0, false).map_err(|e| Failure {
                step: format!("idmap image layer {}", dir.display()),
                message: format!(
                    "{e} (a user namespace needs idmapped mounts: Linux 5.19 or newer and a \
                     file system that supports them, or run with --user host)"
                ),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // SAFETY: fsopen reads a NUL-terminated file system name and returns a new descriptor.
    let fs =
        fd_result(unsafe { libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), FSOPEN_CLOEXEC) })
            .step("fsopen overlay")?;
    let lowerdir = lower
        .iter()
        .map(|fd| format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .collect::<Vec<_>>()
        .join(":");
    fsconfig(&fs, FSCONFIG_SET_STRING, "lowerdir", Some(&lowerdir))?;
    // The upper and work folders by descriptor too: the container's mountinfo shows the options
    // as given, and host paths there tell it where the host keeps its files.
    let open_dir = |dir: &Path| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(dir)
            .step(&format!("open {}", dir.display()))
    };
    let (upper, work) = (open_dir(&layers.upper)?, open_dir(&layers.work)?);
    let by_fd = |f: &File| format!("/proc/self/fd/{}", f.as_raw_fd());
    fsconfig(&fs, FSCONFIG_SET_STRING, "upperdir", Some(&by_fd(&upper)))?;
    fsconfig(&fs, FSCONFIG_SET_STRING, "workdir", Some(&by_fd(&work)))?;
    // The same options as the plain overlay (see the monitor).
    fsconfig(&fs, FSCONFIG_SET_FLAG, "volatile", None)?;
    fsconfig(&fs, FSCONFIG_SET_STRING, "redirect_dir", Some("off"))?;
    fsconfig(&fs, FSCONFIG_SET_STRING, "metacopy", Some("off"))?;
    fsconfig(&fs, FSCONFIG_CMD_CREATE, "create", None)?;
    // SAFETY: fsmount takes the configured context and returns a new mount descriptor.
    let mnt = fd_result(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            MOUNT_ATTR_NODEV as libc::c_uint,
        )
    })
    .step("fsmount overlay")?;
    drop(lower);
    Ok(mnt)
}

/// The spec's idmapped bind mounts (`spec::is_idmapped`, in the spec's order) as detached
/// clones of their sources idmapped with `userns`, the container's user namespace. `own_maps`:
/// the namespace is the container's new one, whose maps the spec gives; a mount that gives
/// mappings must give those (another mapping would need a user namespace of its own). In a
/// joined namespace a mount gives none (`idmap` alone).
pub fn binds(spec: &Spec, userns: &File, own_maps: bool) -> Result<Vec<OwnedFd>, Failure> {
    let linux = spec.linux().as_ref();
    let ours = (
        linux.and_then(|l| l.uid_mappings().as_ref()),
        linux.and_then(|l| l.gid_mappings().as_ref()),
    );
    idmapped_binds(spec)
        .map(|m| {
            let step = format!("idmap mount {}", m.destination().display());
            let theirs = (m.uid_mappings().as_ref(), m.gid_mappings().as_ref());
            let same = |a: Option<&Vec<LinuxIdMapping>>, b: Option<&Vec<LinuxIdMapping>>| {
                a.is_none() || (own_maps && a == b)
            };
            if !same(theirs.0, ours.0) || !same(theirs.1, ours.1) {
                return Err(Failure {
                    step,
                    message: "only the container's own mapping is supported (give the idmap \
                              option without uidMappings and gidMappings)"
                        .into(),
                });
            }
            let source = m.source().as_deref().unwrap_or(Path::new(""));
            let (attrs, recursive) = bind_attrs(m.options().as_deref().unwrap_or_default());
            idmapped_clone(source, userns, attrs, recursive).map_err(|e| Failure {
                step,
                message: format!("{}: {e}", source.display()),
            })
        })
        .collect()
}

/// The spec's mounts that are to be idmapped binds, in order.
pub fn idmapped_binds(spec: &Spec) -> impl Iterator<Item = &Mount> {
    spec.mounts()
        .iter()
        .flatten()
        .filter(|m| crate::runtime::spec::is_idmapped(m))
}

/// A bind mount's options as mount attributes, and whether it takes the mounts below (`rbind`).
fn bind_attrs(options: &[String]) -> (u64, bool) {
    let mut attrs = 0;
    for o in options {
        attrs |= match o.as_str() {
            "ro" => MOUNT_ATTR_RDONLY,
            "nosuid" => MOUNT_ATTR_NOSUID,
            "noexec" => MOUNT_ATTR_NOEXEC,
            _ => 0,
        };
    }
    let recursive = options.iter().any(|o| o == "rbind" || o == "ridmap");
    (attrs, recursive)
}

/// Attach the detached mount `mnt` at `target` (in the caller's mount namespace).
pub fn attach(mnt: &OwnedFd, target: &Path) -> Result<(), Failure> {
    let target_c = c_path(target).step("mount point path")?;
    // SAFETY: both paths are NUL-terminated; the empty source path with
    // MOVE_MOUNT_F_EMPTY_PATH names `mnt` itself.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target_c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if ret < 0 {
        let step = format!("attach {}", target.display());
        return Err(std::io::Error::last_os_error()).step(&step);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_options_become_mount_attributes() {
        let opts = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            bind_attrs(&opts(&["bind", "nosuid", "nodev", "ro", "idmap"])),
            (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, false)
        );
        assert_eq!(
            bind_attrs(&opts(&["rbind", "rw", "noexec"])),
            (MOUNT_ATTR_NOEXEC, true)
        );
        assert_eq!(bind_attrs(&opts(&["bind", "ridmap"])), (0, true));
    }
}
