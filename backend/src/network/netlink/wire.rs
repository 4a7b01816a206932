//! The netlink wire format and socket that both clients speak: [`super`] (rtnetlink,
//! `NETLINK_ROUTE`) and [`crate::network::firewall`] (nf_tables, `NETLINK_NETFILTER`).
//!
//! A message is a `nlmsghdr` (length, type, flags, sequence number, port id), a fixed header of
//! its protocol's (`ifinfomsg`, `nfgenmsg`, …) and attributes (length, type, payload), each
//! padded to 4 bytes; a nested attribute holds its children. [`Message`] builds one,
//! [`Messages`] and [`Attrs`] take a datagram apart, [`status`] and [`ExtAck`] read the
//! kernel's acks and refusals, and [`Socket`] carries the bytes. What a request means, which
//! replies end it and how a refusal is named stay with each client: a [`WireError`] converts
//! into the client's own error, and a [`Refusal`] becomes one once the client adds the request's
//! name and what it was about.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{
    connect, recv, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr,
    SockFlag, SockProtocol, SockType,
};
use nix::sys::time::TimeVal;

// include/uapi/linux/netlink.h
pub const NLMSG_HDRLEN: usize = 16;
pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;
pub const NLM_F_REQUEST: u16 = 0x01;
pub const NLM_F_ACK: u16 = 0x04;
pub const NLM_F_DUMP_INTR: u16 = 0x10;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
pub const NLM_F_APPEND: u16 = 0x800;
/// On an `NLMSG_ERROR`: the request's payload is not echoed.
pub const NLM_F_CAPPED: u16 = 0x100;
/// On an `NLMSG_ERROR`: extended-ack attributes follow.
pub const NLM_F_ACK_TLVS: u16 = 0x200;
pub const NLMSGERR_ATTR_MSG: u16 = 1;
pub const NLMSGERR_ATTR_OFFS: u16 = 2;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;
pub const NLA_HDRLEN: usize = 4;
pub const NLA_F_NESTED: u16 = 1 << 15;
const NLA_TYPE_MASK: u16 = !(1 << 15 | 1 << 14);

/// How long to wait for the kernel's reply (it answers while handling the send, so this only
/// bounds a bug).
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// What went wrong below the protocol: the socket, or bytes that do not parse. Each client
/// converts it into its own error (`Io`, `Truncated`, `Malformed` alike).
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Opening, sending to or reading from the socket.
    #[error("netlink socket: {0}")]
    Io(#[from] io::Error),
    /// A reply shorter than its own lengths say.
    #[error("truncated netlink reply")]
    Truncated,
    /// A reply that does not parse.
    #[error("malformed netlink reply: {0}")]
    Malformed(String),
}

type Result<T, E = WireError> = std::result::Result<T, E>;

/// The kernel refused a request (an `NLMSG_ERROR`, or a dump's `NLMSG_DONE`, with a negative
/// status): what the client names with the request and its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub errno: Errno,
    pub ext: ExtAck,
}

/// What an extended ack adds to an error, best effort: anything odd just leaves it out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtAck {
    /// The kernel's text (`NLMSGERR_ATTR_MSG`), when not empty.
    pub message: Option<String>,
    /// Where in the request the attribute it refused starts (`NLMSGERR_ATTR_OFFS`).
    pub offset: Option<u32>,
}

impl ExtAck {
    /// The extended-ack attributes of an `NLMSG_ERROR` with these header flags and payload.
    pub fn parse(flags: u16, payload: &[u8]) -> ExtAck {
        if flags & NLM_F_ACK_TLVS == 0 || payload.len() < 4 + NLMSG_HDRLEN {
            return ExtAck::default();
        }
        // The error code, the request's header, and its payload unless capped.
        let request_len = u32::from_ne_bytes(payload[4..8].try_into().expect("4 bytes")) as usize;
        let skip = if flags & NLM_F_CAPPED != 0 {
            4 + NLMSG_HDRLEN
        } else {
            4 + align4(request_len)
        };
        let Some(tlvs) = payload.get(skip..) else {
            return ExtAck::default();
        };
        let attrs: Vec<(u16, &[u8])> = Attrs(tlvs).map_while(|a| a.ok()).collect();
        let first = |ty: u16| attrs.iter().find(|&&(t, _)| t == ty).map(|&(_, data)| data);
        ExtAck {
            message: first(NLMSGERR_ATTR_MSG)
                .map(str_of)
                .filter(|s| !s.is_empty()),
            offset: first(NLMSGERR_ATTR_OFFS)
                .and_then(|data| Some(u32::from_ne_bytes(data.try_into().ok()?))),
        }
    }
}

/// The status an `NLMSG_ERROR` (or a dump's `NLMSG_DONE`) payload starts with: 0 for an ack,
/// else a negative errno.
pub fn status(payload: &[u8]) -> Result<i32> {
    let bytes = payload.get(..4).ok_or(WireError::Truncated)?;
    Ok(i32::from_ne_bytes(bytes.try_into().expect("4 bytes")))
}

/// [`status`], 0 when the payload holds none (a dump's `NLMSG_DONE` may be empty).
pub fn status_or_ack(payload: &[u8]) -> i32 {
    status(payload).unwrap_or(0)
}

/// A status as [`Refusal`]: `None` for 0 or more.
pub fn refusal(code: i32, flags: u16, payload: &[u8]) -> Option<Refusal> {
    (code < 0).then(|| Refusal {
        errno: Errno::from_raw(-code),
        ext: ExtAck::parse(flags, payload),
    })
}

/// An `NLMSG_ERROR`: `None` for an ack, the refusal otherwise; a positive status is malformed.
pub fn error(header: Header, payload: &[u8]) -> Result<Option<Refusal>> {
    let code = status(payload)?;
    if code > 0 {
        return Err(WireError::Malformed(format!("error code {code}")));
    }
    Ok(refusal(code, header.flags, payload))
}

pub fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// A request being built: header, fixed part and attributes, each padded to 4 bytes.
#[derive(Debug, Clone)]
pub struct Message {
    pub buf: Vec<u8>,
}

impl Message {
    /// A `nlmsghdr` of type `ty` with `NLM_F_REQUEST` and `flags`; the length and sequence
    /// number are written by [`Message::finish`].
    pub fn new(ty: u16, flags: u16) -> Message {
        let mut buf = vec![0u8; NLMSG_HDRLEN];
        buf[4..6].copy_from_slice(&ty.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        Message { buf }
    }

    pub fn ty(&self) -> u16 {
        u16::from_ne_bytes([self.buf[4], self.buf[5]])
    }

    pub fn flags(&self) -> u16 {
        u16::from_ne_bytes([self.buf[6], self.buf[7]])
    }

    pub fn add_flags(&mut self, flags: u16) {
        let now = self.flags();
        self.buf[6..8].copy_from_slice(&(now | flags).to_ne_bytes());
    }

    /// A fixed header (`ifinfomsg`, `nfgenmsg`), padded.
    pub fn put(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.buf.resize(align4(self.buf.len()), 0);
    }

    pub fn attr(&mut self, ty: u16, data: &[u8]) {
        let len = u16::try_from(NLA_HDRLEN + data.len()).expect("a netlink attribute under 64 KiB");
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.put(data);
    }

    /// A number, big-endian (`NLA_BE32`).
    pub fn attr_be32(&mut self, ty: u16, value: u32) {
        self.attr(ty, &value.to_be_bytes());
    }

    /// A string attribute, NUL-terminated as the kernel's `NLA_STRING` policies accept.
    pub fn attr_str(&mut self, ty: u16, s: &str) {
        let mut data = Vec::with_capacity(s.len() + 1);
        data.extend_from_slice(s.as_bytes());
        data.push(0);
        self.attr(ty, &data);
    }

    /// Open a nested attribute of type `ty` as given (a protocol that wants `NLA_F_NESTED`
    /// adds it); what is added until [`Message::end`] goes inside it.
    pub fn begin(&mut self, ty: u16) -> usize {
        let start = self.buf.len();
        self.attr(ty, &[]);
        start
    }

    pub fn end(&mut self, start: usize) {
        let len = u16::try_from(self.buf.len() - start).expect("a netlink attribute under 64 KiB");
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// The bytes to send: the length and `seq` written in.
    pub fn finish(mut self, seq: u32) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

/// A message's `nlmsghdr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
}

/// The messages of one datagram: each header with its payload.
pub struct Messages<'a>(pub &'a [u8]);

impl<'a> Iterator for Messages<'a> {
    type Item = Result<(Header, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let buf = std::mem::take(&mut self.0);
        if buf.len() < NLMSG_HDRLEN {
            return Some(Err(WireError::Truncated));
        }
        let len = u32::from_ne_bytes(buf[0..4].try_into().expect("4 bytes")) as usize;
        if len < NLMSG_HDRLEN {
            return Some(Err(WireError::Malformed(format!("message length {len}"))));
        }
        if len > buf.len() {
            return Some(Err(WireError::Truncated));
        }
        let header = Header {
            ty: u16::from_ne_bytes([buf[4], buf[5]]),
            flags: u16::from_ne_bytes([buf[6], buf[7]]),
            seq: u32::from_ne_bytes(buf[8..12].try_into().expect("4 bytes")),
        };
        self.0 = &buf[align4(len).min(buf.len())..];
        Some(Ok((header, &buf[NLMSG_HDRLEN..len])))
    }
}

/// The attributes in a buffer: type (flags masked off) and payload.
pub struct Attrs<'a>(pub &'a [u8]);

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<(u16, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let buf = std::mem::take(&mut self.0);
        if buf.len() < NLA_HDRLEN {
            return Some(Err(WireError::Truncated));
        }
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let ty = u16::from_ne_bytes([buf[2], buf[3]]) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN {
            return Some(Err(WireError::Malformed(format!(
                "attribute {ty} of length {len}"
            ))));
        }
        if len > buf.len() {
            return Some(Err(WireError::Truncated));
        }
        self.0 = &buf[align4(len).min(buf.len())..];
        Some(Ok((ty, &buf[NLA_HDRLEN..len])))
    }
}

/// A `u32` attribute in host order (`NLA_U32`).
pub fn u32_of(ty: u16, data: &[u8]) -> Result<u32> {
    let bytes: [u8; 4] = data.try_into().map_err(|_| {
        WireError::Malformed(format!("attribute {ty}: {} bytes, not 4", data.len()))
    })?;
    Ok(u32::from_ne_bytes(bytes))
}

/// A string attribute, up to its NUL if it has one.
pub fn str_of(data: &[u8]) -> String {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end]).into_owned()
}

/// Sequence numbers, unique in the process so a stray reply can never pass for ours.
static NEXT_SEQ: AtomicU32 = AtomicU32::new(1);

/// The first of `count` consecutive sequence numbers no other request of the process uses.
pub fn sequence(count: u32) -> u32 {
    NEXT_SEQ.fetch_add(count, Ordering::Relaxed)
}

/// A netlink socket connected to the kernel (so nothing but the kernel can send to it), in the
/// calling thread's network namespace.
pub struct Socket {
    fd: OwnedFd,
}

impl Socket {
    /// A socket of `protocol` (`NETLINK_ROUTE`, `NETLINK_NETFILTER`, …), with shorter error
    /// replies and the kernel's text for an error when the kernel offers them, and a receive
    /// timeout.
    pub fn open(protocol: SockProtocol) -> Result<Socket> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            protocol,
        )
        .map_err(io::Error::from)?;
        enable(fd.as_fd(), NETLINK_CAP_ACK);
        enable(fd.as_fd(), NETLINK_EXT_ACK);
        let timeout = TimeVal::new(REPLY_TIMEOUT.as_secs() as _, 0);
        setsockopt(&fd, sockopt::ReceiveTimeout, &timeout).map_err(io::Error::from)?;
        connect(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(io::Error::from)?;
        Ok(Socket { fd })
    }

    /// Send `bytes` whole, as one datagram.
    pub fn send(&self, bytes: &[u8]) -> Result<()> {
        let sent = retry(|| send(self.fd.as_raw_fd(), bytes, MsgFlags::empty()))?;
        if sent != bytes.len() {
            return Err(io::Error::other(format!("sent {sent} of {} bytes", bytes.len())).into());
        }
        Ok(())
    }

    /// One datagram into `buf`, grown first if the datagram is bigger. With
    /// `MSG_DONTWAIT`, nothing queued is a timeout.
    pub fn recv(&self, buf: &mut Vec<u8>, flags: MsgFlags) -> Result<usize> {
        let fd = self.fd.as_raw_fd();
        let size = retry(|| recv(fd, buf, flags | MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC))?;
        if size > buf.len() {
            buf.resize(size, 0);
        }
        let n = retry(|| recv(fd, buf, flags))?;
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        Ok(n)
    }

    /// Read datagrams (with `flags`), each handed to `absorb`, until it says the exchange is
    /// complete.
    pub fn read_until<E: From<WireError>>(
        &self,
        flags: MsgFlags,
        mut absorb: impl FnMut(&[u8]) -> Result<bool, E>,
    ) -> Result<(), E> {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = self.recv(&mut buf, flags)?;
            if absorb(&buf[..n])? {
                return Ok(());
            }
        }
    }
}

/// A socket call, again after `EINTR`; `EAGAIN` means the reply timeout passed (or, without
/// waiting, that nothing is queued).
fn retry(mut call: impl FnMut() -> nix::Result<usize>) -> Result<usize> {
    loop {
        match call() {
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => {
                return Err(
                    io::Error::new(io::ErrorKind::TimedOut, "no reply from the kernel").into(),
                )
            }
            other => return other.map_err(|e| io::Error::from(e).into()),
        }
    }
}

/// Set a boolean `SOL_NETLINK` option; failure (an older kernel) is ignored.
fn enable(fd: BorrowedFd<'_>, option: libc::c_int) {
    let one: libc::c_int = 1;
    // SAFETY: `fd` is an open socket for the duration of the call; the value pointer and length
    // describe `one`, a live c_int the kernel only reads.
    let _ = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_NETLINK,
            option,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

#[cfg(test)]
mod tests {
    //! The shared codec's error replies; messages and attributes are exercised through both
    //! clients' tests.

    use super::*;

    /// An `NLMSG_ERROR` payload: the status, the request (its header only when `capped`), and
    /// extended-ack attributes.
    fn error_payload(code: i32, capped: bool, tlvs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut request = Message::new(16, 0);
        request.attr_str(3, "eth0");
        let request = request.finish(7);
        let mut m = Message { buf: Vec::new() };
        m.buf.extend_from_slice(&code.to_ne_bytes());
        m.put(if capped {
            &request[..NLMSG_HDRLEN]
        } else {
            &request
        });
        for (ty, data) in tlvs {
            m.attr(*ty, data);
        }
        m.buf
    }

    #[test]
    fn an_extended_ack_is_found_past_the_echoed_request() {
        let tlvs: &[(u16, &[u8])] = &[
            (NLMSGERR_ATTR_OFFS, &20u32.to_ne_bytes()),
            (NLMSGERR_ATTR_MSG, b"bad name\0"),
        ];
        let want = ExtAck {
            message: Some("bad name".into()),
            offset: Some(20),
        };
        let capped = error_payload(-22, true, tlvs);
        assert_eq!(ExtAck::parse(NLM_F_CAPPED | NLM_F_ACK_TLVS, &capped), want);
        let whole = error_payload(-22, false, tlvs);
        assert_eq!(ExtAck::parse(NLM_F_ACK_TLVS, &whole), want);
        // Without NLM_F_ACK_TLVS there is nothing to read; an empty text is no text.
        assert_eq!(ExtAck::parse(NLM_F_CAPPED, &capped), ExtAck::default());
        let empty = error_payload(-22, true, &[(NLMSGERR_ATTR_MSG, b"\0")]);
        assert_eq!(
            ExtAck::parse(NLM_F_CAPPED | NLM_F_ACK_TLVS, &empty),
            ExtAck::default()
        );
    }

    #[test]
    fn a_status_is_an_ack_a_refusal_or_malformed() {
        let header = |flags| Header {
            ty: NLMSG_ERROR,
            flags,
            seq: 1,
        };
        assert_eq!(error(header(0), &0i32.to_ne_bytes()).unwrap(), None);
        let payload = error_payload(-17, true, &[(NLMSGERR_ATTR_MSG, b"exists\0")]);
        let refusal = error(header(NLM_F_CAPPED | NLM_F_ACK_TLVS), &payload)
            .unwrap()
            .unwrap();
        assert_eq!(refusal.errno, Errno::EEXIST);
        assert_eq!(refusal.ext.message.as_deref(), Some("exists"));
        assert!(matches!(
            error(header(0), &3i32.to_ne_bytes()),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            error(header(0), &[0; 2]),
            Err(WireError::Truncated)
        ));
        assert_eq!(status_or_ack(&[]), 0);
    }
}
