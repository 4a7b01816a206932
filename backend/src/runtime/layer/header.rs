//! What one tar header says about its entry: mode, owner, mtime and xattrs, PAX records
//! applied; and the errors that name an entry.

use std::io::{self, Read};

use nix::sys::stat::Mode;
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};

use super::{is_overlay_xattr, LayerError};

/// What a header says about an entry's metadata (PAX records applied).
pub(super) struct Meta {
    pub(super) mode: Mode,
    pub(super) uid: Uid,
    pub(super) gid: Gid,
    pub(super) mtime: TimeSpec,
    pub(super) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Mode, owner, mtime (a PAX `mtime` record wins over the header's) and `SCHILY.xattr.*`.
pub(super) fn read_meta<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    name: &str,
) -> Result<Meta, LayerError> {
    let mut xattrs = Vec::new();
    let mut pax_mtime = None;
    if let Some(records) = entry.pax_extensions().map_err(entry_err(name))? {
        for record in records {
            let record = record.map_err(entry_err(name))?;
            if let Some(key) = record.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                if !is_overlay_xattr(key) {
                    xattrs.push((key.to_vec(), record.value_bytes().to_vec()));
                }
            } else if record.key_bytes() == b"mtime" {
                pax_mtime = parse_pax_time(record.value_bytes());
            }
        }
    }
    let header = entry.header();
    let mode = header.mode().map_err(entry_err(name))?;
    let id = |v: io::Result<u64>, what: &str| -> Result<u32, LayerError> {
        let v = v.map_err(entry_err(name))?;
        u32::try_from(v).map_err(|_| invalid(name, format!("{what} {v} is too large")))
    };
    let uid = id(header.uid(), "uid")?;
    let gid = id(header.gid(), "gid")?;
    let mtime = match pax_mtime {
        Some(t) => t,
        None => {
            let secs = header.mtime().map_err(entry_err(name))?;
            TimeSpec::new(i64::try_from(secs).unwrap_or(i64::MAX), 0)
        }
    };
    Ok(Meta {
        mode: Mode::from_bits_truncate(mode & 0o7777),
        uid: Uid::from_raw(uid),
        gid: Gid::from_raw(gid),
        mtime,
        xattrs,
    })
}

/// A PAX time (`1700000000.5`, `-1.25`) as seconds and nanoseconds.
fn parse_pax_time(value: &[u8]) -> Option<TimeSpec> {
    let s = std::str::from_utf8(value).ok()?;
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = int.parse().ok()?;
    let mut nanos: i64 = 0;
    for (i, c) in frac.bytes().enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        if i < 9 {
            nanos += i64::from(c - b'0') * 10i64.pow(8 - i as u32);
        }
    }
    Some(match (negative, nanos) {
        (false, _) => TimeSpec::new(secs, nanos),
        (true, 0) => TimeSpec::new(-secs, 0),
        (true, _) => TimeSpec::new(-secs - 1, 1_000_000_000 - nanos),
    })
}

pub(super) fn invalid(name: &str, reason: impl Into<String>) -> LayerError {
    LayerError::Invalid {
        entry: name.to_string(),
        reason: reason.into(),
    }
}

pub(super) fn entry_err(name: &str) -> impl FnOnce(io::Error) -> LayerError + '_ {
    move |source| LayerError::Entry {
        entry: name.to_string(),
        source,
    }
}
