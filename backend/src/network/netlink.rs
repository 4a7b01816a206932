//! A minimal rtnetlink client: list, add, bring up, move and delete links, and ask a namespace's
//! id, in the calling thread's network namespace (a netlink socket belongs to the namespace of
//! the thread that opened it, and every call here opens its own).
//!
//! Requests are `NETLINK_ROUTE` messages built by hand (with [`wire`], the codec and socket
//! this client shares with [`super::firewall`]): a `nlmsghdr`, a fixed header
//! (`ifinfomsg`, `rtgenmsg`) and attributes, each padded to 4 bytes, nested ones
//! (`IFLA_LINKINFO` → `IFLA_INFO_DATA` → `VETH_INFO_PEER`) holding their children. A change asks
//! for an ack (`NLM_F_ACK`), and the kernel's `NLMSG_ERROR` becomes [`NetlinkError::Kernel`]
//! with the request's name, the interface and the errno (plus the kernel's extended-ack text
//! when it gives one). A dump (`NLM_F_DUMP`) is read until `NLMSG_DONE`. Replies for another
//! sequence number are skipped.
//!
//! [`in_netns`] runs a closure in another process's network namespace from a short-lived thread,
//! which is how the server (a tokio process) acts inside a container.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{MsgFlags, SockProtocol};

use wire::{
    str_of, u32_of, Attrs, Message, Messages, Refusal, WireError, NLMSG_DONE, NLMSG_ERROR,
    NLMSG_NOOP, NLMSG_OVERRUN, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_EXCL,
};

pub(super) mod wire;

// include/uapi/linux/rtnetlink.h, if_link.h, veth.h, net_namespace.h
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWNSID: u16 = 88;
const RTM_GETNSID: u16 = 90;
const IFINFOMSG_LEN: usize = 16;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINK: u16 = 5;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_LINK_NETNSID: u16 = 37;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const NETNSA_NSID: u16 = 1;
const NETNSA_FD: u16 = 3;
const NETNSA_NSID_NOT_ASSIGNED: i32 = -1;
const IFF_UP: u32 = 1;
const IFNAMSIZ: usize = 16;

/// How many times a dump that the kernel marks interrupted (the table changed) is asked again.
const DUMP_ATTEMPTS: usize = 5;

/// What went wrong talking to the kernel.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// Opening, sending to or reading from the netlink socket.
    #[error("netlink socket: {0}")]
    Io(#[from] io::Error),
    /// The kernel refused the request.
    #[error("{op} {target}: {}{}", errno.desc(), detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Kernel {
        /// The request, e.g. `RTM_NEWLINK`.
        op: &'static str,
        /// What it was about: an interface name, `netns fd 7`, `dump`.
        target: String,
        /// The kernel's answer.
        errno: Errno,
        /// The kernel's extended-ack message, when it gave one.
        detail: Option<String>,
    },
    /// Not a name the kernel accepts for an interface.
    #[error("invalid interface name {0:?}: 1 to 15 bytes, no '/', ':' or whitespace")]
    InvalidName(String),
    /// A reply shorter than its own lengths say.
    #[error("truncated netlink reply")]
    Truncated,
    /// A reply that does not parse.
    #[error("malformed netlink reply: {0}")]
    Malformed(String),
}

impl From<WireError> for NetlinkError {
    fn from(e: WireError) -> NetlinkError {
        match e {
            WireError::Io(e) => NetlinkError::Io(e),
            WireError::Truncated => NetlinkError::Truncated,
            WireError::Malformed(what) => NetlinkError::Malformed(what),
        }
    }
}

type Result<T, E = NetlinkError> = std::result::Result<T, E>;

/// A network interface, as `RTM_GETLINK` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The interface index in this namespace.
    pub index: u32,
    /// `IFLA_IFNAME`.
    pub name: String,
    /// `IFLA_INFO_KIND`: `veth`, `bridge`, `dummy`; `None` for `lo` and physical devices.
    pub kind: Option<String>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// The bridge (or bond) this interface is enslaved to.
    pub master: Option<u32>,
    /// `IFLA_LINK`: for a veth, its peer's index (in the peer's namespace). The kernel leaves it
    /// out when it equals our own index, which happens only across namespaces.
    pub link: Option<u32>,
    /// `IFLA_LINK_NETNSID`: the namespace of `link`, as this namespace numbers it (compare with
    /// [`netns_id`]); `None` when it is this namespace.
    pub link_netnsid: Option<i32>,
    /// `IFLA_ADDRESS`, when it is an Ethernet address (`lo` has all zeroes).
    pub mac: Option<[u8; 6]>,
}

/// Every link of the calling thread's network namespace, by index.
pub fn links() -> Result<Vec<Link>> {
    let mut sock = Socket::open()?;
    for _ in 0..DUMP_ATTEMPTS {
        let mut msg = Message::new(RTM_GETLINK, NLM_F_DUMP);
        msg.put(&ifinfomsg(0, 0, 0));
        let replies = sock.exchange(msg, "dump", Expect::Dump(RTM_NEWLINK))?;
        if !replies.interrupted {
            let mut links = replies
                .payloads
                .iter()
                .map(|p| parse_link(p))
                .collect::<Result<Vec<_>>>()?;
            links.sort_by_key(|l| l.index);
            return Ok(links);
        }
    }
    Err(NetlinkError::Kernel {
        op: "RTM_GETLINK",
        target: "dump".into(),
        errno: Errno::EINTR,
        detail: Some("the link table kept changing during the dump".into()),
    })
}

/// One link by name; `None` when there is none (`ENODEV`).
pub fn link(name: &str) -> Result<Option<Link>> {
    let mut msg = Message::new(RTM_GETLINK, 0);
    msg.put(&ifinfomsg(0, 0, 0));
    msg.attr_str(IFLA_IFNAME, check_name(name)?);
    match Socket::open()?.exchange(msg, name, Expect::One(RTM_NEWLINK)) {
        Ok(replies) => replies.payloads.first().map(|p| parse_link(p)).transpose(),
        Err(NetlinkError::Kernel {
            errno: Errno::ENODEV,
            ..
        }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Delete a link by name (a veth takes its peer with it); `Ok(false)` when there is no such link.
pub fn delete_link(name: &str) -> Result<bool> {
    let mut msg = Message::new(RTM_DELLINK, 0);
    msg.put(&ifinfomsg(0, 0, 0));
    msg.attr_str(IFLA_IFNAME, check_name(name)?);
    match Socket::open()?.exchange(msg, name, Expect::Ack) {
        Ok(_) => Ok(true),
        Err(NetlinkError::Kernel {
            errno: Errno::ENODEV,
            ..
        }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Create a dummy interface (down). A kernel built without `CONFIG_DUMMY` answers
/// `EOPNOTSUPP` ("Unknown device type").
pub fn add_dummy(name: &str) -> Result<()> {
    add_plain(name, "dummy")
}

/// Create a bridge (down, no ports).
pub fn add_bridge(name: &str) -> Result<()> {
    add_plain(name, "bridge")
}

/// `RTM_NEWLINK` for a kind that needs no `IFLA_INFO_DATA`.
fn add_plain(name: &str, kind: &str) -> Result<()> {
    let mut msg = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    msg.put(&ifinfomsg(0, 0, 0));
    msg.attr_str(IFLA_IFNAME, check_name(name)?);
    let info = msg.begin(IFLA_LINKINFO);
    msg.attr_str(IFLA_INFO_KIND, kind);
    msg.end(info);
    Socket::open()?.exchange(msg, name, Expect::Ack).map(drop)
}

/// Create a veth pair `name` ↔ `peer` (both down, both here).
pub fn add_veth(name: &str, peer: &str) -> Result<()> {
    let mut msg = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    msg.put(&ifinfomsg(0, 0, 0));
    msg.attr_str(IFLA_IFNAME, check_name(name)?);
    let info = msg.begin(IFLA_LINKINFO);
    msg.attr_str(IFLA_INFO_KIND, "veth");
    let data = msg.begin(IFLA_INFO_DATA);
    // The peer is described as a link of its own: an ifinfomsg, then its attributes.
    let peer_info = msg.begin(VETH_INFO_PEER);
    msg.put(&ifinfomsg(0, 0, 0));
    msg.attr_str(IFLA_IFNAME, check_name(peer)?);
    msg.end(peer_info);
    msg.end(data);
    msg.end(info);
    Socket::open()?.exchange(msg, name, Expect::Ack).map(drop)
}

/// Bring a link up or down.
pub fn set_up(name: &str, up: bool) -> Result<()> {
    let mut msg = Message::new(RTM_NEWLINK, 0);
    msg.put(&ifinfomsg(0, if up { IFF_UP } else { 0 }, IFF_UP));
    msg.attr_str(IFLA_IFNAME, check_name(name)?);
    Socket::open()?.exchange(msg, name, Expect::Ack).map(drop)
}

/// Move a link into the network namespace `netns` (an open `/proc/PID/ns/net` or the like);
/// it keeps its name, and goes down.
pub fn move_to_netns(name: &str, netns: BorrowedFd<'_>) -> Result<()> {
    let mut msg = Message::new(RTM_NEWLINK, 0);
    msg.put(&ifinfomsg(0, 0, 0));
    msg.attr_str(IFLA_IFNAME, check_name(name)?);
    msg.attr(IFLA_NET_NS_FD, &fd_u32(netns).to_ne_bytes());
    Socket::open()?.exchange(msg, name, Expect::Ack).map(drop)
}

/// The id the calling thread's namespace gives `netns` (what [`Link::link_netnsid`] holds);
/// `None` when it has given none yet (the kernel assigns one when a link first needs it).
pub fn netns_id(netns: BorrowedFd<'_>) -> Result<Option<i32>> {
    let mut msg = Message::new(RTM_GETNSID, 0);
    msg.put(&rtgenmsg());
    msg.attr(NETNSA_FD, &fd_u32(netns).to_ne_bytes());
    let target = format!("netns fd {}", netns.as_raw_fd());
    let replies = Socket::open()?.exchange(msg, &target, Expect::One(RTM_NEWNSID))?;
    let payload = replies.payloads.first().ok_or(NetlinkError::Truncated)?;
    let attrs = payload.get(4..).ok_or(NetlinkError::Truncated)?;
    for attr in Attrs(attrs) {
        let (ty, data) = attr?;
        if ty == NETNSA_NSID {
            let id = u32_of(ty, data)? as i32;
            return Ok((id != NETNSA_NSID_NOT_ASSIGNED).then_some(id));
        }
    }
    Err(NetlinkError::Malformed(
        "RTM_NEWNSID without NETNSA_NSID".into(),
    ))
}

/// Run `f` in the network namespace of process `pid`, on a short-lived thread of its own (a
/// thread of a multi-threaded process may join another network namespace, and leaves it when it
/// ends, so the caller's threads never change namespace). A panic in `f` reaches the caller.
pub fn in_netns<T: Send>(pid: i32, f: impl FnOnce() -> T + Send) -> io::Result<T> {
    let netns = File::open(format!("/proc/{pid}/ns/net"))?;
    in_netns_fd(netns.as_fd(), f)
}

/// [`in_netns`] for a namespace already open (`/proc/PID/ns/net`, `/proc/thread-self/ns/net`,
/// a bind mount under `/run/netns`).
pub fn in_netns_fd<T: Send>(netns: BorrowedFd<'_>, f: impl FnOnce() -> T + Send) -> io::Result<T> {
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("isolab-netns".into())
            .spawn_scoped(scope, move || -> io::Result<T> {
                setns(netns, CloneFlags::CLONE_NEWNET)?;
                Ok(f())
            })?;
        worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn fd_u32(fd: BorrowedFd<'_>) -> u32 {
    // A descriptor is never negative.
    fd.as_raw_fd() as u32
}

fn check_name(name: &str) -> Result<&str> {
    // The kernel's dev_valid_name.
    let bad = name.is_empty()
        || name.len() >= IFNAMSIZ
        || name == "."
        || name == ".."
        || name
            .bytes()
            .any(|b| b == 0 || b == b'/' || b == b':' || b.is_ascii_whitespace());
    if bad {
        return Err(NetlinkError::InvalidName(name.to_owned()));
    }
    Ok(name)
}

fn ifinfomsg(index: i32, flags: u32, change: u32) -> [u8; IFINFOMSG_LEN] {
    // family (AF_UNSPEC), pad, type, then index, flags and change.
    let mut b = [0u8; IFINFOMSG_LEN];
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

fn rtgenmsg() -> [u8; 4] {
    // rtgen_family (AF_UNSPEC), padded to 4.
    [0; 4]
}

fn op_name(ty: u16) -> &'static str {
    match ty {
        RTM_NEWLINK => "RTM_NEWLINK",
        RTM_DELLINK => "RTM_DELLINK",
        RTM_GETLINK => "RTM_GETLINK",
        RTM_GETNSID => "RTM_GETNSID",
        _ => "netlink request",
    }
}

/// An `RTM_NEWLINK` payload (ifinfomsg and attributes) as a [`Link`].
fn parse_link(payload: &[u8]) -> Result<Link> {
    if payload.len() < IFINFOMSG_LEN {
        return Err(NetlinkError::Truncated);
    }
    let index = u32::from_ne_bytes(payload[4..8].try_into().expect("4 bytes"));
    let flags = u32::from_ne_bytes(payload[8..12].try_into().expect("4 bytes"));
    let mut link = Link {
        index,
        name: String::new(),
        kind: None,
        up: flags & IFF_UP != 0,
        master: None,
        link: None,
        link_netnsid: None,
        mac: None,
    };
    let mut named = false;
    for attr in Attrs(&payload[IFINFOMSG_LEN..]) {
        let (ty, data) = attr?;
        match ty {
            IFLA_IFNAME => {
                link.name = str_of(data);
                named = true;
            }
            IFLA_ADDRESS => link.mac = data.try_into().ok(),
            IFLA_LINK => link.link = Some(u32_of(ty, data)?),
            IFLA_MASTER => link.master = Some(u32_of(ty, data)?),
            IFLA_LINK_NETNSID => link.link_netnsid = Some(u32_of(ty, data)? as i32),
            IFLA_LINKINFO => {
                for inner in Attrs(data) {
                    let (ty, data) = inner?;
                    if ty == IFLA_INFO_KIND {
                        link.kind = Some(str_of(data));
                    }
                }
            }
            _ => {}
        }
    }
    if !named {
        return Err(NetlinkError::Malformed(format!(
            "link {index} without IFLA_IFNAME"
        )));
    }
    Ok(link)
}

/// What ends an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// An ack (`NLMSG_ERROR` with 0); `NLM_F_ACK` is added to the request.
    Ack,
    /// One message of this type.
    One(u16),
    /// Messages of this type until `NLMSG_DONE`.
    Dump(u16),
}

/// The request an exchange is waiting on, and what came back so far.
struct Pending<'a> {
    op: &'static str,
    target: &'a str,
    seq: u32,
    expect: Expect,
    payloads: Vec<Vec<u8>>,
    /// A dump message carried `NLM_F_DUMP_INTR`: the table changed while it was read.
    interrupted: bool,
}

impl Pending<'_> {
    /// Take in one datagram; true once the exchange is complete. Messages for another sequence
    /// number are skipped.
    fn absorb(&mut self, datagram: &[u8]) -> Result<bool> {
        let mut done = false;
        for message in Messages(datagram) {
            let (header, payload) = message?;
            if header.seq != self.seq || done {
                continue;
            }
            match header.ty {
                NLMSG_NOOP => {}
                NLMSG_ERROR => {
                    if let Some(refusal) = wire::error(header, payload)? {
                        return Err(self.refused(refusal));
                    }
                    done = self.expect == Expect::Ack;
                }
                NLMSG_DONE => {
                    // A dump's end may carry the error that cut it short (its extended ack is
                    // not read).
                    if let Some(refusal) = wire::refusal(wire::status_or_ack(payload), 0, &[]) {
                        return Err(self.refused(refusal));
                    }
                    done = true;
                }
                NLMSG_OVERRUN => return Err(NetlinkError::Malformed("overrun".into())),
                ty if matches!(self.expect, Expect::One(t) | Expect::Dump(t) if t == ty) => {
                    self.interrupted |= header.flags & NLM_F_DUMP_INTR != 0;
                    self.payloads.push(payload.to_vec());
                    done = matches!(self.expect, Expect::One(_));
                }
                ty => {
                    return Err(NetlinkError::Malformed(format!(
                        "unexpected message type {ty} in reply to {}",
                        self.op
                    )))
                }
            }
        }
        Ok(done)
    }

    /// The kernel's refusal, named with the request and its target.
    fn refused(&self, refusal: Refusal) -> NetlinkError {
        NetlinkError::Kernel {
            op: self.op,
            target: self.target.to_owned(),
            errno: refusal.errno,
            detail: refusal.ext.message,
        }
    }
}

/// The replies to one request.
struct Replies {
    payloads: Vec<Vec<u8>>,
    interrupted: bool,
}

/// A `NETLINK_ROUTE` socket (see [`wire::Socket`]).
struct Socket(wire::Socket);

impl Socket {
    fn open() -> Result<Socket> {
        Ok(Socket(wire::Socket::open(SockProtocol::NetlinkRoute)?))
    }

    /// Send `msg` and read replies until `expect` is met.
    fn exchange(&mut self, mut msg: Message, target: &str, expect: Expect) -> Result<Replies> {
        if expect == Expect::Ack {
            msg.add_flags(NLM_F_ACK);
        }
        let op = op_name(msg.ty());
        let seq = wire::sequence(1);
        self.0.send(&msg.finish(seq))?;
        let mut pending = Pending {
            op,
            target,
            seq,
            expect,
            payloads: Vec::new(),
            interrupted: false,
        };
        self.0
            .read_until(MsgFlags::empty(), |datagram| pending.absorb(datagram))?;
        Ok(Replies {
            payloads: pending.payloads,
            interrupted: pending.interrupted,
        })
    }
}

#[cfg(test)]
pub(super) mod tests;
