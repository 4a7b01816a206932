//! Content-addressed blobs (`<data_root>/blobs/sha256/<hex>`, as in an OCI image layout):
//! layer tars as they came (compressed or not), image configs and manifests. A blob is written
//! to a temporary file and renamed into place once its digest is known, so a reader never sees
//! half a blob and two writers of the same content agree.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::{io_err, temp_name, ImageError};

/// A `sha256:<64 lowercase hex>` digest, checked when parsed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    /// Parse `sha256:<hex>`; other algorithms are refused.
    pub fn parse(s: &str) -> Result<Digest, ImageError> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| ImageError::Invalid {
                what: format!("digest {s:?}: only sha256 digests are supported"),
            })?;
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ImageError::Invalid {
                what: format!("digest {s:?} is not 64 lowercase hex digits"),
            });
        }
        Ok(Digest(hex.to_string()))
    }

    pub fn of(bytes: &[u8]) -> Digest {
        Digest(hex(&Sha256::digest(bytes)))
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.0
    }

    /// `sha256:abcdef012345` (for messages).
    pub fn short(&self) -> String {
        format!("sha256:{}", &self.0[..12])
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.0)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A reader that hashes (and counts) what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Read the rest (a tar reader stops at its end-of-archive blocks), then the digest and
    /// the byte count of everything read.
    pub fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((Digest(hex(&self.hasher.finalize())), self.bytes))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// A writer that hashes (and counts) what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, Digest(hex(&self.hasher.finalize())), self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The blob folder of a store.
#[derive(Debug, Clone)]
pub struct Blobs {
    dir: PathBuf,
}

impl Blobs {
    pub fn new(data_root: &Path) -> Blobs {
        Blobs {
            dir: data_root.join("blobs").join("sha256"),
        }
    }

    pub fn path(&self, d: &Digest) -> PathBuf {
        self.dir.join(d.hex())
    }

    pub fn has(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    /// Every blob present.
    pub fn list(&self) -> Result<Vec<Digest>, ImageError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("reading", &self.dir)(e)),
        };
        Ok(entries
            .filter_map(|e| {
                Digest::parse(&format!("sha256:{}", e.ok()?.file_name().to_str()?)).ok()
            })
            .collect())
    }

    /// Copy a stream into the store; returns its digest and size, and whether it was new.
    /// When `expect` is given and differs, nothing is kept and the error names both.
    pub fn write_from(
        &self,
        reader: impl Read,
        expect: Option<&Digest>,
    ) -> Result<(Digest, u64, bool), ImageError> {
        fs::create_dir_all(&self.dir).map_err(io_err("creating", &self.dir))?;
        let tmp = self.dir.join(temp_name("blob"));
        let result = (|| {
            let file = File::create(&tmp).map_err(io_err("creating", &tmp))?;
            let mut w = HashingWriter::new(io::BufWriter::new(file));
            let mut r = reader;
            io::copy(&mut r, &mut w).map_err(io_err("writing", &tmp))?;
            let (buf, digest, size) = w.finish();
            let file = buf
                .into_inner()
                .map_err(|e| io_err("writing", &tmp)(e.into_error()))?;
            file.sync_all().map_err(io_err("syncing", &tmp))?;
            if let Some(want) = expect {
                if *want != digest {
                    return Err(ImageError::Corrupt {
                        what: format!("blob {want}: its content has digest {digest}"),
                    });
                }
            }
            let dest = self.path(&digest);
            let new = !dest.exists();
            fs::rename(&tmp, &dest).map_err(io_err("renaming into place", &dest))?;
            Ok((digest, size, new))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    pub fn write_bytes(&self, bytes: &[u8]) -> Result<(Digest, bool), ImageError> {
        let (d, _, new) = self.write_from(bytes, None)?;
        Ok((d, new))
    }

    /// A small blob (config, manifest), checked against its digest.
    pub fn read_verified(&self, d: &Digest) -> Result<Vec<u8>, ImageError> {
        let path = self.path(d);
        let bytes = fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ImageError::Corrupt {
                what: format!("blob {d} is missing from the store"),
            },
            _ => io_err("reading", &path)(e),
        })?;
        let got = Digest::of(&bytes);
        if got != *d {
            return Err(ImageError::Corrupt {
                what: format!("blob {d} has digest {got}"),
            });
        }
        Ok(bytes)
    }

    pub fn remove(&self, d: &Digest) -> Result<(), ImageError> {
        let path = self.path(d);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("removing", &path)(e)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_parse_strictly() {
        let hex = "a".repeat(64);
        assert_eq!(Digest::parse(&format!("sha256:{hex}")).unwrap().hex(), hex);
        assert!(Digest::parse(&hex).is_err(), "no algorithm");
        assert!(Digest::parse(&format!("sha512:{hex}")).is_err());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(Digest::parse("sha256:../../etc/passwd").is_err());
        assert_eq!(
            Digest::of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn blobs_are_content_addressed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::new(dir.path());
        let (d, new) = blobs.write_bytes(b"hello").unwrap();
        assert!(new);
        assert_eq!(d, Digest::of(b"hello"));
        assert_eq!(blobs.read_verified(&d).unwrap(), b"hello");
        assert!(
            !blobs.write_bytes(b"hello").unwrap().1,
            "the same content again"
        );
        let wrong = Digest::of(b"other");
        assert!(matches!(
            blobs.write_from(&b"hello"[..], Some(&wrong)),
            Err(ImageError::Corrupt { .. })
        ));
        assert_eq!(blobs.list().unwrap(), vec![d.clone()], "nothing else kept");
        fs::write(blobs.path(&d), b"tampered").unwrap();
        assert!(matches!(
            blobs.read_verified(&d),
            Err(ImageError::Corrupt { .. })
        ));
    }
}
