//! Paths inside a layer being unpacked: made relative, and reached one folder at a time from
//! the layer's root, each step checked with `lstat` and opened with `O_NOFOLLOW`, so no entry
//! is ever written through a symlink (a layer's symlinks may point anywhere on the host).

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

/// `path` (from a tar header) as components below the layer's root, as docker cleans it: a
/// leading `/` and any `.` dropped, `..` applied. `None` if `..` climbs above the root.
pub(super) fn normalize(path: &[u8]) -> Option<Vec<OsString>> {
    let mut parts: Vec<OsString> = Vec::new();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            name => parts.push(OsString::from_vec(name.to_vec())),
        }
    }
    Some(parts)
}

/// Components joined with `/`, for messages.
pub(super) fn display(parts: &[OsString]) -> String {
    let joined: Vec<_> = parts.iter().map(|p| p.to_string_lossy()).collect();
    joined.join("/")
}

/// What the type bits of a `stat` say.
pub(super) fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// Why a folder inside the layer could not be reached.
pub(super) enum Stop {
    /// This prefix is a symlink.
    Symlink(String),
    /// This prefix is something other than a folder.
    NotDir(String),
    /// This prefix does not exist (and was not to be made).
    Missing(String),
    /// A system call failed on this prefix.
    Io(&'static str, String, io::Error),
}

/// `lstat` of `name` in `dir`, `None` if it does not exist.
pub(super) fn lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<Option<FileStat>> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens the folder `name` in `dir` without following a symlink.
pub(super) fn open_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// The layer's root folder, the start of every walk.
pub(super) struct Root {
    fd: OwnedFd,
}

impl Root {
    pub(super) fn open(dest: &Path) -> io::Result<Root> {
        let fd = openat(
            nix::fcntl::AT_FDCWD,
            dest,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root { fd })
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens the folder at `parts` below the root, one component at a time: each must be a
    /// real folder (never a symlink); with `create`, missing ones are made (mode 0755, as docker
    /// makes the parents a layer does not list).
    pub(super) fn dir(&self, parts: &[OsString], create: bool) -> Result<OwnedFd, Stop> {
        let mut cur = self
            .fd
            .try_clone()
            .map_err(|e| Stop::Io("duplicating", String::new(), e))?;
        for (i, part) in parts.iter().enumerate() {
            let prefix = || display(&parts[..=i]);
            let st =
                lstat_at(cur.as_fd(), part).map_err(|e| Stop::Io("lstat", prefix(), e.into()))?;
            match st.map(|st| kind(&st)) {
                None if create => match mkdirat(
                    cur.as_fd(),
                    part.as_os_str(),
                    Mode::from_bits_truncate(0o755),
                ) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(Stop::Io("creating the folder", prefix(), e.into())),
                },
                None => return Err(Stop::Missing(prefix())),
                Some(SFlag::S_IFDIR) => {}
                Some(SFlag::S_IFLNK) => return Err(Stop::Symlink(prefix())),
                Some(_) => return Err(Stop::NotDir(prefix())),
            }
            cur = match open_dir_at(cur.as_fd(), part) {
                Ok(fd) => fd,
                // Changed under us between the lstat and the open: refuse rather than guess.
                Err(Errno::ELOOP) => return Err(Stop::Symlink(prefix())),
                Err(Errno::ENOTDIR) => return Err(Stop::NotDir(prefix())),
                Err(e) => return Err(Stop::Io("opening the folder", prefix(), e.into())),
            };
        }
        Ok(cur)
    }
}

/// Removes `name` from `dir`, and everything below it if it is a folder, never following a
/// symlink. Nothing there is fine.
pub(super) fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<()> {
    let Some(st) = lstat_at(dir, name)? else {
        return Ok(());
    };
    if kind(&st) != SFlag::S_IFDIR {
        return unlinkat(dir, name, UnlinkatFlags::NoRemoveDir);
    }
    let sub = open_dir_at(dir, name)?;
    let mut names = Vec::new();
    {
        let mut listing = nix::dir::Dir::from_fd(
            sub.try_clone()
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?,
        )?;
        for entry in listing.iter() {
            let entry = entry?;
            let child = entry.file_name().to_bytes();
            if child != b"." && child != b".." {
                names.push(OsStr::from_bytes(child).to_os_string());
            }
        }
    }
    for child in names {
        remove_all_at(sub.as_fd(), &child)?;
    }
    unlinkat(dir, name, UnlinkatFlags::RemoveDir)
}
