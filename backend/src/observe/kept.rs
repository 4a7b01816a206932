//! Files the observer keeps open between passes and reads again from their start (`pread` at
//! offset 0): a pass then costs one read per file instead of a path walk, an open, a `statx`
//! and a close. `/proc` and cgroup files make their text anew on every read from offset 0.
//!
//! A kept file that fails to read is dropped (its process is gone, its cgroup removed); one
//! that two passes did not use is closed at the start of the next, and one unused for
//! [`IDLE`] by a janitor thread: the session stops calling the observer when nothing is
//! watched, and a kept mount table or namespace must not keep a removed container's
//! namespaces (and what they hold: its root, its writable layer) alive. How many files are kept
//! in the whole server is bounded by a share of the open-files limit; past it, files are opened
//! for each read, as before.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, OnceLock, Weak};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// Files kept by every observer of the server together.
static HELD: AtomicUsize = AtomicUsize::new(0);

/// At most a quarter of the soft `RLIMIT_NOFILE`: the server's other files come first.
fn budget() -> usize {
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map_or(1024, |(soft, _)| soft);
        usize::try_from(soft / 4).unwrap_or(usize::MAX).min(1 << 16)
    })
}

/// A kept file unused this long is closed, passes or not.
const IDLE: Duration = Duration::from_secs(2);

/// One kept file: what it was opened for (`tag`), the pass that last read it and when, and for
/// a mount table its text at the last read.
#[derive(Debug)]
struct Held {
    file: Arc<File>,
    tag: u64,
    used: u64,
    at: Instant,
    last: Option<Vec<u8>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        HELD.fetch_sub(1, Ordering::Relaxed);
    }
}

type Files = HashMap<PathBuf, Held>;

/// Files kept open, by path.
#[derive(Debug, Default)]
pub struct Kept {
    /// Shared with the janitor.
    files: Arc<Mutex<Files>>,
    /// Whether the janitor knows `files`.
    shown: bool,
    pass: u64,
    /// Reused between reads.
    buf: Vec<u8>,
}

fn lock(files: &Mutex<Files>) -> MutexGuard<'_, Files> {
    files
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Every observer's kept files, for the janitor.
static STORES: Mutex<Vec<Weak<Mutex<Files>>>> = Mutex::new(Vec::new());

/// Have the janitor look after `files` (started with the first).
fn show_janitor(files: &Arc<Mutex<Files>>) {
    static JANITOR: Once = Once::new();
    JANITOR.call_once(|| {
        let started = std::thread::Builder::new()
            .name("isolab-kept".into())
            .spawn(janitor);
        if let Err(e) = started {
            tracing::warn!("observer: no janitor for kept files: {e}");
        }
    });
    let mut stores = STORES.lock().unwrap_or_else(|p| p.into_inner());
    stores.push(Arc::downgrade(files));
}

/// Close the files no pass has used for [`IDLE`], forever.
fn janitor() {
    loop {
        std::thread::sleep(IDLE / 2);
        let stores: Vec<Arc<Mutex<Files>>> = {
            let mut stores = STORES.lock().unwrap_or_else(|p| p.into_inner());
            stores.retain(|w| w.strong_count() > 0);
            stores.iter().filter_map(Weak::upgrade).collect()
        };
        for files in stores {
            lock(&files).retain(|_, h| h.at.elapsed() < IDLE);
        }
    }
}

/// How a read knows it has reached a file's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ends {
    /// The kernel makes the whole text in one go (a `/proc/PID/status`, a cgroup value or flat
    /// keyed file: one seq-file record; a command line), so a read that does not fill the
    /// buffer was the last.
    Short,
    /// Several records (id map lines, mount table lines): a seq file may stop a read early
    /// at a record that does not fit its page, so read until a read returns nothing.
    Empty,
}

/// What [`Kept::read`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// Read through a file kept from an earlier pass.
    Kept(Vec<u8>),
    /// Opened now.
    Opened(Vec<u8>),
    /// There is no such file (now).
    Missing,
}

impl Read {
    pub fn bytes(self) -> Option<Vec<u8>> {
        match self {
            Read::Kept(b) | Read::Opened(b) => Some(b),
            Read::Missing => None,
        }
    }
}

/// Bytes as text, refused when not UTF-8 (as `std::fs::read_to_string` does).
pub fn utf8(bytes: Vec<u8>) -> io::Result<String> {
    String::from_utf8(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

impl Kept {
    /// Start a pass: close the files the last two passes did not read (some are read on
    /// every other pass only).
    pub fn next_pass(&mut self) {
        let last = self.pass;
        lock(&self.files).retain(|_, h| h.used + 1 >= last);
        self.pass += 1;
    }

    /// The whole text of `path`. `tag` says what the file is opened for (a namespace inode, when
    /// the file belongs to the namespace the process was in at open): a kept file with another
    /// tag is opened again. A kept file that fails to read is dropped and the error returned:
    /// the caller decides whether to open it again (see [`Kept::read_again`]).
    pub fn read(&mut self, path: &Path, tag: u64, ends: Ends) -> io::Result<Read> {
        if let Some(file) = self.kept(path, tag) {
            return match read_from_start(&file, &mut self.buf, ends) {
                Ok(()) => Ok(Read::Kept(self.buf.clone())),
                Err(e) => {
                    self.forget(path);
                    Err(e)
                }
            };
        }
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Read::Missing),
            Err(e) => return Err(e),
        };
        read_from_start(&file, &mut self.buf, ends)?;
        let read = Read::Opened(self.buf.clone());
        self.keep(path, tag, Arc::new(file), None);
        Ok(read)
    }

    /// A mount table (`/proc/PID/mountinfo`, whose lines are records: read to the end), read
    /// again only when the kernel says its mount namespace changed since the last read: a kept
    /// mount table polls readable with `POLLPRI` once after each change. The table shows the
    /// namespace and root the process had when it was opened: `tag` must change with them.
    pub fn read_mounts(&mut self, path: &Path, tag: u64) -> io::Result<Vec<u8>> {
        if let Some(file) = self.kept(path, tag) {
            let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLPRI)];
            let polled = poll(&mut fds, PollTimeout::ZERO).map(|_| fds[0].revents());
            let last = lock(&self.files).get(path).and_then(|h| h.last.clone());
            match (polled, last) {
                (Ok(Some(r)), Some(last)) if r.is_empty() => return Ok(last),
                (Ok(_), _) => {
                    // Changed (the poll above has taken note): read it again.
                    if read_from_start(&file, &mut self.buf, Ends::Empty).is_ok() {
                        if let Some(held) = lock(&self.files).get_mut(path) {
                            held.last = Some(self.buf.clone());
                        }
                        return Ok(self.buf.clone());
                    }
                }
                (Err(_), _) => {}
            }
            self.forget(path);
        }
        let file = File::open(path)?;
        read_from_start(&file, &mut self.buf, Ends::Empty)?;
        let text = self.buf.clone();
        self.keep(path, tag, Arc::new(file), Some(text.clone()));
        Ok(text)
    }

    /// [`Kept::read`], opening the file again when a kept one fails: for `/proc/PID` files,
    /// whose path names whatever process has that pid now.
    pub fn read_again(&mut self, path: &Path, tag: u64, ends: Ends) -> io::Result<Option<Vec<u8>>> {
        match self.read(path, tag, ends) {
            Err(_) => self.read(path, tag, ends).map(Read::bytes),
            other => other.map(Read::bytes),
        }
    }

    /// A file to use as a handle (a namespace, for `setns`), kept while the passes use it.
    pub fn handle(&mut self, path: &Path, tag: u64) -> io::Result<Arc<File>> {
        if let Some(file) = self.kept(path, tag) {
            return Ok(file);
        }
        let file = Arc::new(File::open(path)?);
        self.keep(path, tag, file.clone(), None);
        Ok(file)
    }

    /// Close a kept file (a handle that no longer works).
    pub fn forget(&mut self, path: &Path) {
        lock(&self.files).remove(path);
    }

    /// The file kept for `path` with `tag`, marked used now; one with another tag is closed.
    fn kept(&mut self, path: &Path, tag: u64) -> Option<Arc<File>> {
        let mut files = lock(&self.files);
        match files.get_mut(path) {
            Some(held) if held.tag == tag => {
                held.used = self.pass;
                held.at = Instant::now();
                Some(held.file.clone())
            }
            Some(_) => {
                files.remove(path);
                None
            }
            None => None,
        }
    }

    /// Keep `file` if the budget allows.
    fn keep(&mut self, path: &Path, tag: u64, file: Arc<File>, last: Option<Vec<u8>>) {
        let taken = HELD.fetch_add(1, Ordering::Relaxed);
        if taken >= budget() {
            HELD.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        if !self.shown {
            show_janitor(&self.files);
            self.shown = true;
        }
        let held = Held {
            file,
            tag,
            used: self.pass,
            at: Instant::now(),
            last,
        };
        lock(&self.files).insert(path.to_path_buf(), held);
    }

    /// Files kept now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        lock(&self.files).len()
    }
}

/// A whole file, opened for this read only (a file read on slow passes, or one that cannot be
/// kept): like `std::fs::read`, in reads of a page or more rather than from a small probe up.
pub fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    read_from_start(&File::open(path)?, &mut buf, Ends::Empty)?;
    Ok(buf)
}

/// The file's whole content into `buf`, from offset 0.
fn read_from_start(file: &File, buf: &mut Vec<u8>, ends: Ends) -> io::Result<()> {
    const CHUNK: usize = 4096;
    let mut len = 0;
    loop {
        if buf.len() < len + CHUNK {
            buf.resize(len + CHUNK, 0);
        }
        let want = buf.len() - len;
        let n = file.read_at(&mut buf[len..], len as u64)?;
        len += n;
        if n == 0 || (n < want && ends == Ends::Short) {
            buf.truncate(len);
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_file_is_read_again_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("memory.current");
        std::fs::write(&path, "1\n").unwrap();
        let mut kept = Kept::default();
        kept.next_pass();
        assert_eq!(
            kept.read(&path, 0, Ends::Short).unwrap(),
            Read::Opened(b"1\n".to_vec())
        );
        std::fs::write(&path, "22\n").unwrap();
        assert_eq!(
            kept.read(&path, 0, Ends::Short).unwrap(),
            Read::Kept(b"22\n".to_vec())
        );
        // Another tag: opened anew.
        assert_eq!(
            kept.read(&path, 7, Ends::Short).unwrap(),
            Read::Opened(b"22\n".to_vec())
        );
        // Longer than a chunk.
        let long = "x".repeat(10_000);
        std::fs::write(&path, &long).unwrap();
        assert_eq!(
            kept.read(&path, 7, Ends::Short).unwrap().bytes().unwrap(),
            long.as_bytes()
        );
        assert_eq!(
            kept.read(&dir.path().join("nope"), 0, Ends::Empty).unwrap(),
            Read::Missing
        );
        // Two passes that do not read it close it.
        kept.next_pass();
        kept.next_pass();
        assert_eq!(kept.len(), 1);
        kept.next_pass();
        assert_eq!(kept.len(), 0);
    }

    #[test]
    fn a_mount_table_is_kept_until_it_changes() {
        let path = Path::new("/proc/self/mountinfo");
        let mut kept = Kept::default();
        kept.next_pass();
        // The host's table may change meanwhile (other tests mount): try again then.
        let settled = (0..10u64).any(|tag| {
            let before = std::fs::read(path).unwrap();
            // A new tag opens and reads it; the same tag again polls and keeps it.
            let first = kept.read_mounts(path, tag).unwrap();
            let again = kept.read_mounts(path, tag).unwrap();
            let after = std::fs::read(path).unwrap();
            before == after && first == before && again == before
        });
        assert!(settled);
        assert_eq!(kept.len(), 1);
    }

    /// Root only (skipped otherwise): a thread with a mount namespace of its own mounts a
    /// tmpfs, and the kept table of that thread shows it.
    #[test]
    fn a_kept_mount_table_is_read_again_after_a_mount() {
        use nix::mount::{mount, MsFlags};
        std::thread::spawn(|| {
            if nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).is_err() {
                return; // not root
            }
            let private = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
            mount(None::<&str>, "/", None::<&str>, private, None::<&str>).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let path = Path::new("/proc/thread-self/mountinfo");
            let mut kept = Kept::default();
            kept.next_pass();
            let before = kept.read_mounts(path, 0).unwrap();
            let name = dir.path().to_str().unwrap().as_bytes().to_vec();
            let has = |t: &[u8]| t.windows(name.len()).any(|w| w == name.as_slice());
            assert!(!has(&before));
            mount(
                Some("none"),
                dir.path(),
                Some("tmpfs"),
                MsFlags::empty(),
                None::<&str>,
            )
            .unwrap();
            let after = kept.read_mounts(path, 0).unwrap();
            nix::mount::umount(dir.path()).unwrap();
            assert!(has(&after), "the new mount shows");
        })
        .join()
        .unwrap();
    }

    /// When the passes stop (nothing watched), the janitor closes what they kept.
    #[test]
    fn files_no_pass_uses_are_closed_by_the_janitor() {
        let mut kept = Kept::default();
        kept.next_pass();
        let path = Path::new("/proc/self/status");
        assert!(matches!(
            kept.read(path, 0, Ends::Short).unwrap(),
            Read::Opened(_)
        ));
        assert_eq!(kept.len(), 1);
        let deadline = Instant::now() + IDLE * 3;
        while kept.len() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(kept.len(), 0);
    }

    #[test]
    fn a_gone_process_fails_and_its_pid_is_opened_again() {
        let mut child = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .unwrap();
        let path = PathBuf::from(format!("/proc/{}/status", child.id()));
        let mut kept = Kept::default();
        kept.next_pass();
        assert!(matches!(
            kept.read(&path, 0, Ends::Short).unwrap(),
            Read::Opened(_)
        ));
        assert!(matches!(
            kept.read(&path, 0, Ends::Short).unwrap(),
            Read::Kept(_)
        ));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            kept.read(&path, 0, Ends::Short).is_err(),
            "the kept file of a reaped process"
        );
        assert_eq!(kept.read_again(&path, 0, Ends::Short).unwrap(), None);
    }
}
