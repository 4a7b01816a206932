//! Typed messages between the launcher and the init helper (and inside the helper, between its
//! stages) over a `SOCK_SEQPACKET` socket pair: one JSON message per packet, with descriptors
//! (stdio, the pty master) carried alongside as `SCM_RIGHTS`.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::{de::DeserializeOwned, Serialize};

/// The largest message we accept (an OCI spec is a few KiB).
const MAX_MESSAGE: usize = 256 * 1024;
/// The most descriptors one message carries.
const MAX_FDS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("socket {op}: {source}")]
    Sys {
        op: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("message does not parse: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("message was cut short (more than {MAX_MESSAGE} bytes)")]
    Truncated,
}

/// One end of a message channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

impl Channel {
    /// A connected pair. Both ends are close-on-exec; the caller clears that on the end it hands
    /// to a child.
    pub fn pair() -> Result<(Channel, Channel), ChannelError> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|source| ChannelError::Sys {
            op: "socketpair",
            source,
        })?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    pub fn from_fd(fd: OwnedFd) -> Channel {
        Channel { fd }
    }

    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Send a message with descriptors.
    pub fn send_with<T: Serialize>(&self, msg: &T, fds: &[RawFd]) -> Result<(), ChannelError> {
        let bytes = serde_json::to_vec(msg)?;
        if bytes.len() > MAX_MESSAGE {
            return Err(ChannelError::Truncated);
        }
        let iov = [IoSlice::new(&bytes)];
        let cmsg = [ControlMessage::ScmRights(fds)];
        let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
        loop {
            match sendmsg::<()>(
                self.fd.as_raw_fd(),
                &iov,
                cmsgs,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Err(nix::Error::EINTR) => continue,
                Err(source) => return Err(ChannelError::Sys { op: "send", source }),
                Ok(_) => return Ok(()),
            }
        }
    }

    pub fn send<T: Serialize>(&self, msg: &T) -> Result<(), ChannelError> {
        self.send_with(msg, &[])
    }

    /// Receive one message and its descriptors; `None` when the other end has closed.
    pub fn recv_with<T: DeserializeOwned>(
        &self,
    ) -> Result<Option<(T, Vec<OwnedFd>)>, ChannelError> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let mut cmsg_space = nix::cmsg_space!([RawFd; MAX_FDS]);
        let (len, fds, truncated) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg_space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Err(nix::Error::EINTR) => continue,
                Err(nix::Error::ECONNRESET) => return Ok(None),
                Err(source) => return Err(ChannelError::Sys { op: "recv", source }),
                Ok(msg) => {
                    let mut fds = Vec::new();
                    for c in msg.cmsgs().map_err(|source| ChannelError::Sys {
                        op: "recv control",
                        source,
                    })? {
                        if let ControlMessageOwned::ScmRights(raw) = c {
                            for fd in raw {
                                // SAFETY: SCM_RIGHTS just installed this descriptor in our
                                // table; we are its only owner.
                                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                            }
                        }
                    }
                    let truncated = msg.flags.contains(MsgFlags::MSG_TRUNC);
                    break (msg.bytes, fds, truncated);
                }
            }
        };
        if truncated {
            return Err(ChannelError::Truncated);
        }
        if len == 0 && fds.is_empty() {
            return Ok(None);
        }
        Ok(Some((serde_json::from_slice(&buf[..len])?, fds)))
    }

    pub fn recv<T: DeserializeOwned>(&self) -> Result<Option<T>, ChannelError> {
        Ok(self.recv_with()?.map(|(m, _)| m))
    }
}

impl AsRawFd for Channel {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl std::os::fd::AsFd for Channel {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.fd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_descriptors_round_trip() {
        let (a, b) = Channel::pair().unwrap();
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        a.send_with(&vec!["hello".to_string()], &[file.as_raw_fd()])
            .unwrap();
        let (msg, fds): (Vec<String>, _) = b.recv_with().unwrap().unwrap();
        assert_eq!(msg, ["hello"]);
        assert_eq!(fds.len(), 1);
        drop(a);
        assert!(
            b.recv::<Vec<String>>().unwrap().is_none(),
            "EOF after close"
        );
    }
}
