//! Extended attributes: the few calls `nix` does not wrap, on paths (never following a final
//! symlink) or on open descriptors.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::ErrorKind::InvalidInput.into())
}

fn c_name(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::ErrorKind::InvalidInput.into())
}

/// Calls `call(buf, len)` (a get or list xattr call) twice: once for the size, then to fill a
/// buffer of that size, again if the value grew in between.
fn sized(mut call: impl FnMut(*mut libc::c_void, usize) -> isize) -> io::Result<Vec<u8>> {
    loop {
        let size = call(std::ptr::null_mut(), 0);
        if size < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; size as usize];
        let got = call(buf.as_mut_ptr().cast(), buf.len());
        if got >= 0 {
            buf.truncate(got as usize);
            return Ok(buf);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ERANGE) {
            return Err(err);
        }
    }
}

/// The names of every xattr of `path` (not following a final symlink).
pub(super) fn list(path: &Path) -> io::Result<Vec<Vec<u8>>> {
    let c = c_path(path)?;
    let raw = sized(|buf, len| {
        // SAFETY: `c` is a NUL-terminated path that outlives the call; `buf` is either null with
        // `len` 0 (a size query) or points to `len` writable bytes owned by `sized`.
        unsafe { libc::llistxattr(c.as_ptr(), buf.cast(), len) }
    })?;
    Ok(raw
        .split(|&b| b == 0)
        .filter(|name| !name.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}

/// The value of one xattr of `path` (not following a final symlink), or `None` if unset.
pub(super) fn get(path: &Path, name: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let c = c_path(path)?;
    let n = c_name(name)?;
    let got = sized(|buf, len| {
        // SAFETY: `c` and `n` are NUL-terminated strings that outlive the call; `buf` is either
        // null with `len` 0 (a size query) or points to `len` writable bytes owned by `sized`.
        unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf, len) }
    });
    match got {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.raw_os_error() == Some(libc::ENODATA) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sets one xattr on an open file or folder.
pub(super) fn fset(fd: BorrowedFd<'_>, name: &[u8], value: &[u8]) -> io::Result<()> {
    let n = c_name(name)?;
    // SAFETY: `fd` is a live descriptor borrowed for the call, `n` a NUL-terminated name, and
    // `value` a slice whose pointer and length are passed together; the kernel only reads them.
    let ret = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets one xattr on `path` without following a final symlink.
pub(super) fn lset(path: &Path, name: &[u8], value: &[u8]) -> io::Result<()> {
    let c = c_path(path)?;
    let n = c_name(name)?;
    // SAFETY: `c` and `n` are NUL-terminated strings that outlive the call, and `value` a slice
    // whose pointer and length are passed together; the kernel only reads them.
    let ret = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
