//! Layer tars: unpacking an OCI layer into a folder an overlay can use, and writing an
//! overlay upper folder back out as an OCI layer.
//!
//! The two formats say "deleted" differently. An OCI layer marks a removed `dir/NAME` with an
//! empty file `dir/.wh.NAME`, and a folder whose lower contents are hidden with
//! `dir/.wh..wh..opq`; overlayfs uses a character device 0/0 named `dir/NAME`, and the xattr
//! `trusted.overlay.opaque=y` on `dir`. [`apply`] converts OCI to overlay while it unpacks (and
//! refuses any entry that would land outside its folder), [`diff`] converts back while it
//! writes, and [`changes`] reads an upper folder the way `docker diff` reports it.
//!
//! `walk.rs` reaches paths inside a layer being unpacked one folder at a time, never through a
//! symlink; `header.rs` reads an entry's metadata; `xattr.rs` holds the xattr system calls.

mod apply;
mod changes;
mod diff;
mod header;
mod walk;
mod xattr;

#[cfg(test)]
mod tests;

use std::fs::Metadata;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;

pub use apply::{apply, ApplyStats};
pub use changes::{changes, Change, ChangeKind};
pub use diff::{diff, diff_shifted, DiffStats, IdShift};

/// The prefix of an OCI whiteout file: `dir/.wh.NAME` deletes `dir/NAME`.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The OCI opaque marker: `dir/.wh..wh..opq` hides everything lower layers have in `dir`.
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
/// Names starting with this are aufs metadata (`.wh..wh.plnk`, ...), never real files.
const META_PREFIX: &str = ".wh..wh.";
/// overlayfs's opaque-folder xattr; its value is `y`.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Why a layer could not be unpacked, written or read.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The tar (or gzip) stream itself is unreadable: truncated, corrupt, a bad checksum.
    #[error("reading the layer tar: {0}")]
    Read(#[source] io::Error),
    /// One entry's header or data is unreadable or truncated.
    #[error("layer entry {entry:?}: {source}")]
    Entry {
        entry: String,
        #[source]
        source: io::Error,
    },
    /// The entry's path climbs out of the layer's root (`../../etc/x`).
    #[error("layer entry {entry:?} escapes the layer's root")]
    Escapes { entry: String },
    /// A hard link whose target climbs out of the layer's root.
    #[error("layer entry {entry:?} is a hard link to {target:?}, outside the layer")]
    LinkEscapes { entry: String, target: String },
    /// The entry (or its hard link target) would be reached through a symlink already in the
    /// layer, which could point anywhere on the host.
    #[error("layer entry {entry:?} would be written through the symlink {symlink:?}")]
    ThroughSymlink { entry: String, symlink: String },
    /// An entry the layer format does not allow: a whiteout of `..`, a hard link to a folder or
    /// to something not unpacked yet, a file where a folder is needed, an unknown entry type.
    #[error("layer entry {entry:?}: {reason}")]
    Invalid { entry: String, reason: String },
    /// A system call failed on a path (inside the layer for `apply`, on the host for `diff`).
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The upper folder uses an overlay feature that a tar cannot express (a renamed folder's
    /// redirect, a metadata-only copy-up): mount the overlay with `redirect_dir=off` and
    /// `metacopy=off` (the kernel's defaults).
    #[error("{}: overlay {what} cannot be written as a layer (mount with redirect_dir=off,metacopy=off)", path.display())]
    OverlayFeature { path: PathBuf, what: &'static str },
}

/// An `Io` error maker for `map_err`.
fn io_err(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> LayerError {
    let path = path.into();
    move |source| LayerError::Io { op, path, source }
}

/// Is this an overlayfs whiteout (a character device 0/0)?
fn is_whiteout(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Is this overlay's own metadata (`trusted.overlay.*`, or `user.overlay.*` for a `userxattr`
/// mount)? Such xattrs are never written to, nor taken from, a layer tar.
fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}
