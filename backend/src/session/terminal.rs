//! One terminal of a session: the pty master (or, without a tty, the stdin/stdout/stderr pipes)
//! of a process, read into binary frames under flow control, and written from input frames.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use isolab_shared::protocol::{FrameKind, Handle};
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::runtime::sys;

/// How much a read takes at once.
const READ_CHUNK: usize = 16 * 1024;

/// Bytes sent and not yet acknowledged by the client. A reader stops above `high` and goes on
/// once acknowledgements bring it down to `low`.
pub struct Flow {
    unacked: watch::Sender<u64>,
    high: u64,
    low: u64,
}

impl Flow {
    pub fn new(high: u64, low: u64) -> Arc<Flow> {
        Arc::new(Flow {
            unacked: watch::Sender::new(0),
            high,
            low,
        })
    }

    async fn admit(&self) {
        if *self.unacked.borrow() > self.high {
            let mut rx = self.unacked.subscribe();
            let _ = rx.wait_for(|u| *u <= self.low).await;
        }
    }

    fn sent(&self, n: u64) {
        self.unacked.send_modify(|u| *u += n);
    }

    pub fn ack(&self, n: u64) {
        self.unacked.send_modify(|u| *u = u.saturating_sub(n));
    }

    /// A new connection starts from what it is sent now (the replayed scrollback).
    pub fn reset(&self, n: u64) {
        self.unacked.send_replace(n);
    }
}

/// The last bytes a terminal wrote, replayed to a connection that reattaches.
pub struct Scrollback {
    bytes: std::collections::VecDeque<u8>,
    cap: usize,
}

impl Scrollback {
    pub fn new(cap: usize) -> Scrollback {
        Scrollback {
            // Grown as output comes: most terminals never write 64 KiB.
            bytes: std::collections::VecDeque::new(),
            cap,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        let data = &data[data.len().saturating_sub(self.cap)..];
        let overflow = (self.bytes.len() + data.len()).saturating_sub(self.cap);
        self.bytes.drain(..overflow);
        self.bytes.extend(data);
    }

    pub fn contents(&self) -> Vec<u8> {
        self.bytes.iter().copied().collect()
    }
}

/// Output read from a terminal, on its way to the session (which keeps the scrollback and
/// forwards it to the connection, if there is one).
pub struct Output {
    pub handle: Handle,
    pub kind: FrameKind,
    pub data: Vec<u8>,
}

/// A descriptor tokio can wait on (set non-blocking).
pub struct AsyncDescriptor(AsyncFd<OwnedFd>);

impl AsyncDescriptor {
    pub fn new(fd: OwnedFd) -> io::Result<AsyncDescriptor> {
        set_nonblocking(&fd)?;
        // SAFETY: `OwnedFd` is an open descriptor that stays open, and always the same one,
        // until the `AsyncFd` that owns it is dropped.
        let registered = unsafe { AsyncFd::register(fd) };
        Ok(AsyncDescriptor(registered.map_err(|e| e.into_parts().1)?))
    }

    pub fn raw(&self) -> i32 {
        self.0.get_ref().as_raw_fd()
    }

    /// Read what is there (at most [`READ_CHUNK`] bytes); empty at the end (a pty reports the
    /// end as EIO). The buffer lives on the stack only while the read runs: an idle terminal
    /// holds none (2000 of them would hold 32 MiB).
    async fn read(&self) -> io::Result<Vec<u8>> {
        loop {
            let mut guard = self.0.readable().await?;
            let read = guard.try_io(|fd| {
                let mut buf = [0u8; READ_CHUNK];
                let n = nix::unistd::read(fd.get_ref(), &mut buf).map_err(io::Error::from)?;
                Ok(buf[..n].to_vec())
            });
            match read {
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(Vec::new()),
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    pub async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let mut guard = self.0.writable().await?;
            match guard.try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(io::Error::from))
            {
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Read a descriptor until its end into [`Output`]s of `kind`, pausing under flow control.
pub fn spawn_reader(
    source: Arc<AsyncDescriptor>,
    kind: FrameKind,
    handle: Handle,
    flow: Arc<Flow>,
    out: mpsc::Sender<Output>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            flow.admit().await;
            let data = match source.read().await {
                Ok(d) if d.is_empty() => break,
                Err(_) => break,
                Ok(d) => d,
            };
            flow.sent(data.len() as u64);
            if out.send(Output { handle, kind, data }).await.is_err() {
                break;
            }
        }
    })
}

/// A terminal's process as the session holds it.
pub struct Terminal {
    /// The container's id.
    pub container: String,
    /// Where input goes (in order, by the terminal's writer task): the pty master, or the
    /// stdin pipe; None once the client said `eof` to a pipe (the writer closed it).
    pub input: Option<mpsc::Sender<Vec<u8>>>,
    /// The pty master, for resizing (none without a tty).
    pub pty: Option<Arc<AsyncDescriptor>>,
    pub flow: Arc<Flow>,
    /// Forwards signals to the process through its helper.
    pub signaller: crate::runtime::container::Signaller,
    pub scrollback: Scrollback,
}

impl Terminal {
    pub fn resize(&self, rows: u16, cols: u16) -> io::Result<()> {
        match &self.pty {
            Some(pty) => sys::set_winsize(pty.raw(), rows, cols),
            None => Ok(()),
        }
    }
}

/// The signals a client may send, by name.
pub fn signal_number(name: &str) -> Option<i32> {
    let name = name.trim_start_matches("SIG");
    Some(match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        "WINCH" => libc::SIGWINCH,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn flow_pauses_above_high_and_resumes_at_low() {
        let flow = Flow::new(100, 10);
        flow.sent(150);
        let waiter = {
            let flow = flow.clone();
            tokio::spawn(async move { flow.admit().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "paused above the high mark");
        flow.ack(100);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "50 is still above the low mark");
        flow.ack(45);
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("resumed at the low mark")
            .unwrap();
    }

    #[test]
    fn scrollback_keeps_the_last_bytes() {
        let mut s = Scrollback::new(4);
        s.push(b"ab");
        s.push(b"cdef");
        assert_eq!(s.contents(), b"cdef");
        s.push(b"123456");
        assert_eq!(s.contents(), b"3456");
        s.push(b"x");
        assert_eq!(s.contents(), b"456x");
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_number("INT"), Some(libc::SIGINT));
        assert_eq!(signal_number("SIGTERM"), Some(libc::SIGTERM));
        assert_eq!(signal_number("STOP"), None);
    }
}
