//! The host's firewall for session networks: one nf_tables table, `inet isolab`, that keeps
//! session containers off the host's services and out of each other's sessions even when one
//! gains `NET_ADMIN` in its own namespace and adds routes (routing alone keeps them apart only
//! while nobody changes the routes).
//!
//! [`install`] (re)creates the table in one transaction; [`remove`] deletes it. The rules, as
//! `nft list table inet isolab` prints them (bridges are `isl-*`, [`BRIDGE_PREFIX`]):
//!
//! ```text
//! chain input {
//!     type filter hook input priority filter; policy accept;
//!     iifname "isl-*" ct state established,related accept
//!     iifname "isl-*" drop
//! }
//! chain forward {
//!     type filter hook forward priority filter; policy accept;
//!     iifname "isl-*" ct state established,related accept
//!     iifname "isl-*" oifname "isl-*" fib daddr . iif oif != 0 accept
//!     iifname "isl-*" oifname "isl-*" meta pkttype != host accept
//!     iifname "isl-*" drop                          (without egress)
//!     iifname "isl-*" oifname "isl-*" drop          (with egress)
//!     oifname "isl-*" ct state established,related accept
//!     oifname "isl-*" drop
//! }
//! chain postrouting {                               (with egress)
//!     type nat hook postrouting priority srcnat; policy accept;
//!     ip saddr 10.88.0.0/14 oifname != "isl-*" masquerade
//! }
//! ```
//!
//! `input`: a container reaches the host only with replies (to the host's own connections, and
//! to published ports, which portmap DNATs from the host's loopback through OUTPUT and
//! POSTROUTING, so they never cross `forward`). `forward`: nothing leaves a session but replies
//! (or, with egress, anything not bound for another session), and nothing enters one but
//! replies. `postrouting`: with egress, what a session sends out of the host leaves with the
//! host's address (the session subnets, [`super::plan::POOL`], are private ones); one rule for
//! every session, so there is nothing per container to remove.
//!
//! The `fib` and `pkttype` rules are for `br_netfilter`: when it is loaded (and
//! `bridge-nf-call-iptables` is on, its default), frames *bridged* between two containers of one
//! session cross the inet `forward` hook too, with the bridge as both `iif` and `oif`, and the
//! drops would cut a session's containers off from each other. nf_tables cannot compare `iif`
//! with `oif`, so two rules stand for it:
//! - unicast: "the route to the destination leaves through the interface the packet came in
//!   on" holds for traffic within a session (its /24 is routed through its own bridge) and for
//!   no packet going to another session, the host's other networks or the internet;
//! - broadcast and multicast (IPv4 broadcasts to 255.255.255.255, mDNS, IPv6 neighbour
//!   discovery), which no route through the bridge describes: the kernel routes only frames
//!   addressed to the host (`ip_forward` drops any other packet type), so a non-unicast packet
//!   at this hook was bridged, within one bridge.
//!
//! Without `br_netfilter` bridged frames never reach the hook and neither rule matches
//! anything the drops would have caught.
//!
//! Requests are `NETLINK_NETFILTER` messages built by hand, with the codec and socket that
//! [`super::netlink`] uses too (its `wire` module): a `nlmsghdr`, a `nfgenmsg` and attributes
//! padded to 4 bytes (nested ones flagged `NLA_F_NESTED`, numbers big-endian as nf_tables wants
//! them; register contents such as the conntrack state mask are in host order, as the kernel
//! compares them). Changes go in an
//! nfnetlink batch (`NFNL_MSG_BATCH_BEGIN` … `NFNL_MSG_BATCH_END`), which the kernel applies
//! all or nothing; every request in it asks for an ack (`NLM_F_ACK`), and the first refused one
//! becomes [`FirewallError::Kernel`] naming the request, what it was about and the errno (plus
//! the kernel's extended-ack text or offending attribute when it gives one).
//!
//! Everything happens in the calling thread's network namespace (see [`super::netlink::in_netns`]).

use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, SockProtocol};

use super::netlink::wire::{
    self, Message, Messages, Refusal, WireError, NLA_F_NESTED, NLMSG_DONE, NLMSG_ERROR,
    NLMSG_OVERRUN, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
};
use super::plan::{BRIDGE_PREFIX, POOL};

// include/uapi/linux/netfilter/nfnetlink.h, netfilter.h
const NFGENMSG_LEN: usize = 4;
const NFNETLINK_V0: u8 = 0;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const AF_UNSPEC: u8 = 0;
const NFPROTO_INET: u8 = 1;
const NF_INET_LOCAL_IN: u32 = 1;
const NF_INET_FORWARD: u32 = 2;
const NF_INET_POST_ROUTING: u32 = 4;
/// `NF_IP_PRI_NAT_SRC`, nft's `srcnat`.
const PRIORITY_SRCNAT: u32 = 100;
const NFPROTO_IPV4: u8 = 2;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;
// include/uapi/linux/netfilter/nf_tables.h
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
#[cfg(test)]
const NFT_MSG_GETRULE: u16 = 7;
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFT_META_IIFNAME: u32 = 6;
const NFT_META_OIFNAME: u32 = 7;
const NFT_META_NFPROTO: u32 = 15;
const NFT_META_PKTTYPE: u32 = 19;
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
/// Where an IPv4 header keeps the source address.
const IPV4_SADDR_OFFSET: u32 = 12;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;
const NFTA_CT_DREG: u16 = 1;
const NFTA_CT_KEY: u16 = 2;
const NFT_CT_STATE: u32 = 0;
const NFTA_BITWISE_SREG: u16 = 1;
const NFTA_BITWISE_DREG: u16 = 2;
const NFTA_BITWISE_LEN: u16 = 3;
const NFTA_BITWISE_MASK: u16 = 4;
const NFTA_BITWISE_XOR: u16 = 5;
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;
const NFTA_FIB_DREG: u16 = 1;
const NFTA_FIB_RESULT: u16 = 2;
const NFTA_FIB_FLAGS: u16 = 3;
const NFT_FIB_RESULT_OIF: u32 = 1;
const NFTA_FIB_F_DADDR: u32 = 1 << 1;
const NFTA_FIB_F_IIF: u32 = 1 << 3;
const NFT_REG_VERDICT: u32 = 0;
const NFT_REG_1: u32 = 1;
// include/uapi/linux/if_packet.h
const PACKET_HOST: u8 = 0;
// include/uapi/linux/netfilter/nf_conntrack_common.h: NF_CT_STATE_BIT(IP_CT_ESTABLISHED) and
// NF_CT_STATE_BIT(IP_CT_RELATED).
const CT_STATE_ESTABLISHED: u32 = 1 << 1;
const CT_STATE_RELATED: u32 = 1 << 2;

/// The table's family and name.
pub const TABLE: &str = "isolab";
/// The table as `nft` names it, for messages.
const TABLE_TARGET: &str = "inet isolab";

/// What went wrong talking to nf_tables.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// Opening, sending to or reading from the netlink socket.
    #[error("nfnetlink socket: {0}")]
    Io(#[from] std::io::Error),
    /// The kernel refused a request (or, for `NFNL_MSG_BATCH_BEGIN`, the batch as a whole:
    /// `EPERM` without `CAP_NET_ADMIN`, or a failed commit).
    #[error("{op} {target}: {}{}", errno.desc(), detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Kernel {
        /// The request, e.g. `NFT_MSG_NEWRULE`.
        op: &'static str,
        /// What it was about: `inet isolab`, `inet isolab forward`, a rule as nft writes it.
        target: String,
        /// The kernel's answer.
        errno: Errno,
        /// The kernel's extended-ack message or offending attribute, when it gave one.
        detail: Option<String>,
    },
    /// A reply shorter than its own lengths say.
    #[error("truncated nfnetlink reply")]
    Truncated,
    /// A reply that does not parse, or replies missing.
    #[error("malformed nfnetlink reply: {0}")]
    Malformed(String),
}

impl From<WireError> for FirewallError {
    fn from(e: WireError) -> FirewallError {
        match e {
            WireError::Io(e) => FirewallError::Io(e),
            WireError::Truncated => FirewallError::Truncated,
            WireError::Malformed(what) => FirewallError::Malformed(what),
        }
    }
}

impl FirewallError {
    /// The kernel's refusal of request `op` about `target`, with its extended-ack text, else
    /// the offset of the attribute it refused (what nf_tables mostly gives).
    fn refused(op: &'static str, target: &str, refusal: Refusal) -> FirewallError {
        let Refusal { errno, ext } = refusal;
        let offset = ext
            .offset
            .map(|offset| format!("the attribute at byte {offset} of the request"));
        FirewallError::Kernel {
            op,
            target: target.to_owned(),
            errno,
            detail: ext.message.or(offset),
        }
    }
}

type Result<T, E = FirewallError> = std::result::Result<T, E>;

/// (Re)create the table `inet isolab` with its chains and their rules, in one transaction:
/// an existing table (from an earlier run, or with the other `egress` setting) is replaced, and
/// if anything is refused nothing changes.
pub fn install(egress: bool) -> Result<()> {
    let mut batch = Batch::default();
    // Deleting a table that does not exist fails the whole batch, so first "add" it: adding a
    // table that exists changes nothing, and the deletion then always finds one.
    batch.push(table_msg(NFT_MSG_NEWTABLE, NLM_F_CREATE), TABLE_TARGET);
    batch.push(table_msg(NFT_MSG_DELTABLE, 0), TABLE_TARGET);
    batch.push(
        table_msg(NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL),
        TABLE_TARGET,
    );
    for &chain in chains(egress) {
        batch.push(chain_msg(chain), format!("{TABLE_TARGET} {}", chain.name()));
    }
    for rule in rules(egress) {
        batch.push(
            rule_msg(&rule),
            format!("{TABLE_TARGET} {}: {rule}", rule.chain.name()),
        );
    }
    Socket::open()?.commit(batch)
}

/// Delete the table and everything in it; `Ok` when there is none.
pub fn remove() -> Result<()> {
    let mut batch = Batch::default();
    batch.push(table_msg(NFT_MSG_DELTABLE, 0), TABLE_TARGET);
    match Socket::open()?.commit(batch) {
        Err(FirewallError::Kernel {
            errno: Errno::ENOENT,
            ..
        }) => Ok(()),
        other => other,
    }
}

/// Whether the table `inet isolab` exists.
pub fn installed() -> Result<bool> {
    let mut msg = Message::nft(NFT_MSG_GETTABLE, 0);
    msg.attr_str(NFTA_TABLE_NAME, TABLE);
    match Socket::open()?.request(msg, TABLE_TARGET, nft_type(NFT_MSG_NEWTABLE)) {
        Ok(_) => Ok(true),
        Err(FirewallError::Kernel {
            errno: Errno::ENOENT,
            ..
        }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The rules [`install`] puts in, one a line, as `nft` writes them (`chain: rule`).
pub fn describe(egress: bool) -> String {
    rules(egress)
        .iter()
        .map(|r| format!("{}: {r}\n", r.chain.name()))
        .collect()
}

/// The table's base chains, all with policy accept: `input` and `forward` of type filter at
/// priority 0 (`filter`); `postrouting` of type nat at `srcnat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chain {
    Input,
    Forward,
    Postrouting,
}

/// The chains [`install`] makes: the NAT chain only with egress.
fn chains(egress: bool) -> &'static [Chain] {
    if egress {
        &[Chain::Input, Chain::Forward, Chain::Postrouting]
    } else {
        &[Chain::Input, Chain::Forward]
    }
}

impl Chain {
    fn name(self) -> &'static str {
        match self {
            Chain::Input => "input",
            Chain::Forward => "forward",
            Chain::Postrouting => "postrouting",
        }
    }

    fn hook(self) -> u32 {
        match self {
            Chain::Input => NF_INET_LOCAL_IN,
            Chain::Forward => NF_INET_FORWARD,
            Chain::Postrouting => NF_INET_POST_ROUTING,
        }
    }

    /// The chain's type and priority.
    fn kind(self) -> (&'static str, u32) {
        match self {
            Chain::Input | Chain::Forward => ("filter", 0),
            Chain::Postrouting => ("nat", PRIORITY_SRCNAT),
        }
    }
}

/// One condition of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    /// `iifname "isl-*"`: it came in from a session's bridge.
    FromSession,
    /// `oifname "isl-*"`: it goes out to a session's bridge.
    ToSession,
    /// `ct state established,related`: a reply (or an ICMP error about one).
    Reply,
    /// `fib daddr . iif oif != 0`: the destination is routed through the interface the packet
    /// came in on, i.e. it stays within one bridge (see the module's documentation).
    SameBridge,
    /// `meta pkttype != host`: broadcast or multicast, which only bridging brings here.
    Flooded,
    /// `ip saddr 10.88.0.0/14`: sent from a session subnet ([`super::plan::POOL`]). The NAT
    /// chain cannot ask for the input interface (`postrouting` has none).
    FromPool,
    /// `oifname != "isl-*"`: it goes out anywhere but to a session's bridge.
    NotToSession,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accept,
    Drop,
    /// `masquerade`: the source becomes the address of the interface it leaves by.
    Masquerade,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rule {
    chain: Chain,
    matches: &'static [Match],
    verdict: Verdict,
}

/// The rules, in order.
fn rules(egress: bool) -> Vec<Rule> {
    use Chain::{Forward, Input};
    use Match::{Flooded, FromPool, FromSession, NotToSession, Reply, SameBridge, ToSession};
    use Verdict::{Accept, Drop, Masquerade};
    let rule = |chain, matches, verdict| Rule {
        chain,
        matches,
        verdict,
    };
    let mut rules = vec![
        rule(Input, &[FromSession, Reply], Accept),
        rule(Input, &[FromSession], Drop),
        rule(Forward, &[FromSession, Reply], Accept),
        rule(Forward, &[FromSession, ToSession, SameBridge], Accept),
        rule(Forward, &[FromSession, ToSession, Flooded], Accept),
        if egress {
            // Out to anywhere but another session.
            rule(Forward, &[FromSession, ToSession], Drop)
        } else {
            rule(Forward, &[FromSession], Drop)
        },
        rule(Forward, &[ToSession, Reply], Accept),
        rule(Forward, &[ToSession], Drop),
    ];
    if egress {
        rules.push(rule(
            Chain::Postrouting,
            &[FromPool, NotToSession],
            Masquerade,
        ));
    }
    rules
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for m in self.matches {
            match m {
                Match::FromSession => write!(f, "iifname \"{BRIDGE_PREFIX}*\" ")?,
                Match::ToSession => write!(f, "oifname \"{BRIDGE_PREFIX}*\" ")?,
                Match::Reply => write!(f, "ct state established,related ")?,
                Match::SameBridge => write!(f, "fib daddr . iif oif != 0 ")?,
                Match::Flooded => write!(f, "meta pkttype != host ")?,
                Match::FromPool => write!(f, "ip saddr {}/{} ", POOL.0, POOL.1)?,
                Match::NotToSession => write!(f, "oifname != \"{BRIDGE_PREFIX}*\" ")?,
            }
        }
        f.write_str(match self.verdict {
            Verdict::Accept => "accept",
            Verdict::Drop => "drop",
            Verdict::Masquerade => "masquerade",
        })
    }
}

/// `NFT_MSG_NEWTABLE` or `NFT_MSG_DELTABLE` for `inet isolab`.
fn table_msg(ty: u16, flags: u16) -> Message {
    let mut msg = Message::nft(ty, flags);
    msg.attr_str(NFTA_TABLE_NAME, TABLE);
    msg
}

/// `NFT_MSG_NEWCHAIN`: a base chain of its type and priority, policy accept.
fn chain_msg(chain: Chain) -> Message {
    let (kind, priority) = chain.kind();
    let mut msg = Message::nft(NFT_MSG_NEWCHAIN, NLM_F_CREATE);
    msg.attr_str(NFTA_CHAIN_TABLE, TABLE);
    msg.attr_str(NFTA_CHAIN_NAME, chain.name());
    let hook = msg.nest(NFTA_CHAIN_HOOK);
    msg.attr_be32(NFTA_HOOK_HOOKNUM, chain.hook());
    msg.attr_be32(NFTA_HOOK_PRIORITY, priority);
    msg.end(hook);
    msg.attr_be32(NFTA_CHAIN_POLICY, NF_ACCEPT);
    msg.attr_str(NFTA_CHAIN_TYPE, kind);
    msg
}

/// `NFT_MSG_NEWRULE`, appended to its chain: each match as nft compiles it, then the verdict.
fn rule_msg(rule: &Rule) -> Message {
    let mut msg = Message::nft(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
    msg.attr_str(NFTA_RULE_TABLE, TABLE);
    msg.attr_str(NFTA_RULE_CHAIN, rule.chain.name());
    let list = msg.nest(NFTA_RULE_EXPRESSIONS);
    for m in rule.matches {
        match m {
            // A wildcard name: the first bytes only, without the NUL.
            Match::FromSession => {
                meta(&mut msg, NFT_META_IIFNAME);
                cmp(&mut msg, NFT_CMP_EQ, BRIDGE_PREFIX.as_bytes());
            }
            Match::ToSession => {
                meta(&mut msg, NFT_META_OIFNAME);
                cmp(&mut msg, NFT_CMP_EQ, BRIDGE_PREFIX.as_bytes());
            }
            // The state is a bitmask in host order: (state & mask) != 0.
            Match::Reply => {
                expr(&mut msg, "ct", |m| {
                    m.attr_be32(NFTA_CT_DREG, NFT_REG_1);
                    m.attr_be32(NFTA_CT_KEY, NFT_CT_STATE);
                });
                let mask = CT_STATE_ESTABLISHED | CT_STATE_RELATED;
                expr(&mut msg, "bitwise", |m| {
                    m.attr_be32(NFTA_BITWISE_SREG, NFT_REG_1);
                    m.attr_be32(NFTA_BITWISE_DREG, NFT_REG_1);
                    m.attr_be32(NFTA_BITWISE_LEN, 4);
                    m.data_value(NFTA_BITWISE_MASK, &mask.to_ne_bytes());
                    m.data_value(NFTA_BITWISE_XOR, &0u32.to_ne_bytes());
                });
                cmp(&mut msg, NFT_CMP_NEQ, &0u32.to_ne_bytes());
            }
            // The output interface (an index, 0 when none matches) of the route to the
            // destination, looked up among routes through the input interface.
            Match::SameBridge => {
                expr(&mut msg, "fib", |m| {
                    m.attr_be32(NFTA_FIB_DREG, NFT_REG_1);
                    m.attr_be32(NFTA_FIB_RESULT, NFT_FIB_RESULT_OIF);
                    m.attr_be32(NFTA_FIB_FLAGS, NFTA_FIB_F_DADDR | NFTA_FIB_F_IIF);
                });
                cmp(&mut msg, NFT_CMP_NEQ, &0u32.to_ne_bytes());
            }
            // `skb->pkt_type`, one byte.
            Match::Flooded => {
                meta(&mut msg, NFT_META_PKTTYPE);
                cmp(&mut msg, NFT_CMP_NEQ, &[PACKET_HOST]);
            }
            // An inet table sees IPv6 too: IPv4 first (one byte), then the source address
            // under the pool's mask, all in network order.
            Match::FromPool => {
                meta(&mut msg, NFT_META_NFPROTO);
                cmp(&mut msg, NFT_CMP_EQ, &[NFPROTO_IPV4]);
                expr(&mut msg, "payload", |m| {
                    m.attr_be32(NFTA_PAYLOAD_DREG, NFT_REG_1);
                    m.attr_be32(NFTA_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER);
                    m.attr_be32(NFTA_PAYLOAD_OFFSET, IPV4_SADDR_OFFSET);
                    m.attr_be32(NFTA_PAYLOAD_LEN, 4);
                });
                let mask = u32::MAX << (32 - POOL.1);
                expr(&mut msg, "bitwise", |m| {
                    m.attr_be32(NFTA_BITWISE_SREG, NFT_REG_1);
                    m.attr_be32(NFTA_BITWISE_DREG, NFT_REG_1);
                    m.attr_be32(NFTA_BITWISE_LEN, 4);
                    m.data_value(NFTA_BITWISE_MASK, &mask.to_be_bytes());
                    m.data_value(NFTA_BITWISE_XOR, &0u32.to_be_bytes());
                });
                cmp(&mut msg, NFT_CMP_EQ, &POOL.0.octets());
            }
            Match::NotToSession => {
                meta(&mut msg, NFT_META_OIFNAME);
                cmp(&mut msg, NFT_CMP_NEQ, BRIDGE_PREFIX.as_bytes());
            }
        }
    }
    match rule.verdict {
        Verdict::Accept => verdict(&mut msg, NF_ACCEPT),
        Verdict::Drop => verdict(&mut msg, NF_DROP),
        // No attributes: no flags, no port range.
        Verdict::Masquerade => expr(&mut msg, "masq", |_| {}),
    }
    msg.end(list);
    msg
}

/// `immediate reg 0 CODE`: the rule's verdict.
fn verdict(msg: &mut Message, code: u32) {
    expr(msg, "immediate", |m| {
        m.attr_be32(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
        let data = m.nest(NFTA_IMMEDIATE_DATA);
        let verdict = m.nest(NFTA_DATA_VERDICT);
        m.attr_be32(NFTA_VERDICT_CODE, code);
        m.end(verdict);
        m.end(data);
    });
}

/// One expression of a rule's list: its name, then its attributes.
fn expr(msg: &mut Message, name: &str, data: impl FnOnce(&mut Message)) {
    let elem = msg.nest(NFTA_LIST_ELEM);
    msg.attr_str(NFTA_EXPR_NAME, name);
    let body = msg.nest(NFTA_EXPR_DATA);
    data(msg);
    msg.end(body);
    msg.end(elem);
}

/// `meta load KEY => reg 1`.
fn meta(msg: &mut Message, key: u32) {
    expr(msg, "meta", |m| {
        m.attr_be32(NFTA_META_DREG, NFT_REG_1);
        m.attr_be32(NFTA_META_KEY, key);
    });
}

/// `cmp OP reg 1 VALUE`, over as many bytes as `value` has.
fn cmp(msg: &mut Message, op: u32, value: &[u8]) {
    expr(msg, "cmp", |m| {
        m.attr_be32(NFTA_CMP_SREG, NFT_REG_1);
        m.attr_be32(NFTA_CMP_OP, op);
        m.data_value(NFTA_CMP_DATA, value);
    });
}

/// The nfnetlink message type of an nf_tables request.
fn nft_type(msg: u16) -> u16 {
    NFNL_SUBSYS_NFTABLES << 8 | msg
}

fn op_name(ty: u16) -> &'static str {
    match ty {
        NFNL_MSG_BATCH_BEGIN => "NFNL_MSG_BATCH_BEGIN",
        NFNL_MSG_BATCH_END => "NFNL_MSG_BATCH_END",
        t if t >> 8 == NFNL_SUBSYS_NFTABLES => match t & 0xff {
            NFT_MSG_NEWTABLE => "NFT_MSG_NEWTABLE",
            NFT_MSG_GETTABLE => "NFT_MSG_GETTABLE",
            NFT_MSG_DELTABLE => "NFT_MSG_DELTABLE",
            NFT_MSG_NEWCHAIN => "NFT_MSG_NEWCHAIN",
            NFT_MSG_NEWRULE => "NFT_MSG_NEWRULE",
            #[cfg(test)]
            NFT_MSG_GETRULE => "NFT_MSG_GETRULE",
            _ => "nf_tables request",
        },
        _ => "nfnetlink request",
    }
}

/// nf_tables' side of the message builder ([`wire::Message`]): an `nfgenmsg` after the header,
/// nests flagged `NLA_F_NESTED` (which nf_tables requires), register data.
impl Message {
    /// `ty` with `NLM_F_REQUEST` and `flags`, and a `nfgenmsg` (version 0) for `family`.
    fn nfgen(ty: u16, flags: u16, family: u8, res_id: u16) -> Message {
        let mut msg = Message::new(ty, flags);
        let [id_hi, id_lo] = res_id.to_be_bytes();
        let nfgenmsg: [u8; NFGENMSG_LEN] = [family, NFNETLINK_V0, id_hi, id_lo];
        msg.put(&nfgenmsg);
        msg
    }

    /// An nf_tables request about the `inet` family.
    fn nft(msg: u16, flags: u16) -> Message {
        Message::nfgen(nft_type(msg), flags, NFPROTO_INET, 0)
    }

    /// A batch's begin or end: the subsystem it is for goes in `res_id`.
    fn batch(ty: u16) -> Message {
        Message::nfgen(ty, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES)
    }

    /// Open a nested attribute, flagged; what is added until [`Message::end`] goes inside it.
    fn nest(&mut self, ty: u16) -> usize {
        self.begin(ty | NLA_F_NESTED)
    }

    /// Data for a register (`nft_data_attributes`): `ty` holding an `NFTA_DATA_VALUE`.
    fn data_value(&mut self, ty: u16, value: &[u8]) {
        let data = self.nest(ty);
        self.attr(NFTA_DATA_VALUE, value);
        self.end(data);
    }
}

/// Requests to apply together, each with what it is about (for errors).
#[derive(Debug, Default)]
struct Batch {
    requests: Vec<(Message, String)>,
}

impl Batch {
    fn push(&mut self, mut msg: Message, target: impl Into<String>) {
        msg.add_flags(NLM_F_ACK);
        self.requests.push((msg, target.into()));
    }

    /// The bytes to send: begin (sequence number `first`), the requests (`first + 1`, …), end;
    /// and who is waiting for which ack.
    fn encode(self, first: u32) -> (Vec<u8>, BatchAcks) {
        let mut bytes = Message::batch(NFNL_MSG_BATCH_BEGIN).finish(first);
        let mut labels = Vec::with_capacity(self.requests.len());
        let mut seq = first;
        for (msg, target) in self.requests {
            seq += 1;
            labels.push((op_name(msg.ty()), target));
            bytes.extend_from_slice(&msg.finish(seq));
        }
        bytes.extend_from_slice(&Message::batch(NFNL_MSG_BATCH_END).finish(seq + 1));
        let acked = vec![false; labels.len()];
        let acks = BatchAcks {
            begin: first,
            labels,
            acked,
            error: None,
        };
        (bytes, acks)
    }
}

/// The answers to a batch: one ack or error per request (each asked `NLM_F_ACK`; the kernel
/// answers them all even after a refusal, then drops the whole batch), and an error on the
/// begin message's sequence number when the batch as a whole was refused or its commit failed.
#[derive(Debug)]
struct BatchAcks {
    begin: u32,
    /// Each request's name and target, in order.
    labels: Vec<(&'static str, String)>,
    acked: Vec<bool>,
    /// The first refused request, in batch order.
    error: Option<(usize, FirewallError)>,
}

impl BatchAcks {
    /// Take in one datagram; true once every request is answered.
    fn absorb(&mut self, datagram: &[u8]) -> Result<bool> {
        for message in Messages(datagram) {
            let (header, payload) = message?;
            if header.ty != NLMSG_ERROR {
                continue;
            }
            let refusal = wire::error(header, payload)?;
            if header.seq == self.begin {
                if let Some(refusal) = refusal {
                    let op = op_name(NFNL_MSG_BATCH_BEGIN);
                    return Err(FirewallError::refused(op, TABLE_TARGET, refusal));
                }
                continue;
            }
            let Some(index) = header
                .seq
                .checked_sub(self.begin + 1)
                .map(|i| i as usize)
                .filter(|&i| i < self.acked.len())
            else {
                continue;
            };
            self.acked[index] = true;
            if let Some(refusal) = refusal {
                if self.error.as_ref().is_none_or(|(first, _)| index < *first) {
                    let (op, target) = &self.labels[index];
                    self.error = Some((index, FirewallError::refused(op, target, refusal)));
                }
            }
        }
        Ok(self.acked.iter().all(|&a| a))
    }

    fn answered(&self) -> usize {
        self.acked.iter().filter(|&&a| a).count()
    }

    fn result(self) -> Result<()> {
        match self.error {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }
}

/// A `NETLINK_NETFILTER` socket (see [`wire::Socket`]).
struct Socket(wire::Socket);

impl Socket {
    fn open() -> Result<Socket> {
        Ok(Socket(wire::Socket::open(SockProtocol::NetlinkNetFilter)?))
    }

    /// Send a batch and read its acks. The kernel handles a batch while the send is in
    /// progress and queues every answer before the send returns, so the answers are read
    /// without waiting: a missing one is an error, not a hang.
    fn commit(&self, batch: Batch) -> Result<()> {
        let count = batch.requests.len() as u32;
        let first = wire::sequence(count + 2);
        let (bytes, mut acks) = batch.encode(first);
        self.0.send(&bytes)?;
        match self
            .0
            .read_until(MsgFlags::MSG_DONTWAIT, |datagram| acks.absorb(datagram))
        {
            Ok(()) => acks.result(),
            Err(FirewallError::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
                Err(FirewallError::Malformed(format!(
                    "the kernel answered {} of {count} requests of the batch",
                    acks.answered()
                )))
            }
            Err(e) => Err(e),
        }
    }

    /// Send one request outside a batch and read its replies of type `reply`: one, or until
    /// `NLMSG_DONE` for a dump (`NLM_F_DUMP`). Replies for another sequence number are skipped.
    fn request(&self, msg: Message, target: &str, reply: u16) -> Result<Vec<Vec<u8>>> {
        let op = op_name(msg.ty());
        let dump = msg.flags() & NLM_F_DUMP == NLM_F_DUMP;
        let seq = wire::sequence(1);
        self.0.send(&msg.finish(seq))?;
        let mut payloads = Vec::new();
        self.0.read_until(MsgFlags::empty(), |datagram| {
            for message in Messages(datagram) {
                let (header, payload) = message?;
                if header.seq != seq {
                    continue;
                }
                match header.ty {
                    NLMSG_ERROR | NLMSG_DONE => {
                        let code = wire::status_or_ack(payload);
                        if let Some(refusal) = wire::refusal(code, header.flags, payload) {
                            return Err(FirewallError::refused(op, target, refusal));
                        }
                        if header.ty == NLMSG_DONE || !dump {
                            return Ok(true);
                        }
                    }
                    NLMSG_OVERRUN => return Err(FirewallError::Malformed("overrun".into())),
                    ty if ty == reply => {
                        payloads.push(payload.to_vec());
                        if !dump {
                            return Ok(true);
                        }
                    }
                    _ => {}
                }
            }
            Ok(false)
        })?;
        Ok(payloads)
    }
}

#[cfg(test)]
mod tests {
    //! The encoding on bytes (no privileges), and the client against the kernel: each kernel
    //! test runs in a thread that first unshares a fresh network namespace (nf_tables and the
    //! interfaces are per namespace), so the host's ruleset is never touched and whatever a
    //! test makes goes with the namespace. Those need root (and skip, saying so, without it).
    //! `nft` and `ip` are only witnesses and set-up helpers.

    use std::fs::File;
    use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
    use std::os::fd::AsFd;
    use std::process::Command;
    use std::time::Duration;

    use super::*;
    use crate::network::netlink;
    use crate::network::netlink::tests::{in_fresh_netns, scratch_netns};
    use crate::network::netlink::wire::{
        align4, str_of, Attrs, WireError, NLA_HDRLEN, NLMSGERR_ATTR_MSG, NLMSGERR_ATTR_OFFS,
        NLMSG_HDRLEN, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_REQUEST,
    };

    macro_rules! require_root {
        () => {
            if !nix::unistd::geteuid().is_root() {
                eprintln!("skipping: needs root (network namespaces, nf_tables)");
                return;
            }
        };
    }

    // ---- Decoding, for the tests: a rule's expressions as `nft --debug=netlink` shows them ---

    fn be32(data: &[u8]) -> u32 {
        u32::from_be_bytes(data.try_into().expect("a 4-byte attribute"))
    }

    fn attrs(data: &[u8]) -> Vec<(u16, &[u8])> {
        Attrs(data)
            .collect::<Result<Vec<_>, WireError>>()
            .expect("attributes")
    }

    fn attr(data: &[u8], ty: u16) -> &[u8] {
        attrs(data)
            .into_iter()
            .find(|&(t, _)| t == ty)
            .unwrap_or_else(|| panic!("no attribute {ty}"))
            .1
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// `nft_data_attributes`: a value's bytes.
    fn data_value(data: &[u8]) -> String {
        hex(attr(data, NFTA_DATA_VALUE))
    }

    fn render_expr(name: &str, data: &[u8]) -> String {
        let u = |ty| be32(attr(data, ty));
        match name {
            "meta" => {
                let key = match u(NFTA_META_KEY) {
                    NFT_META_IIFNAME => "iifname".to_string(),
                    NFT_META_OIFNAME => "oifname".to_string(),
                    NFT_META_PKTTYPE => "pkttype".to_string(),
                    NFT_META_NFPROTO => "nfproto".to_string(),
                    k => k.to_string(),
                };
                format!("meta load {key} => reg {}", u(NFTA_META_DREG))
            }
            "cmp" => {
                let op = match u(NFTA_CMP_OP) {
                    NFT_CMP_EQ => "eq".to_string(),
                    NFT_CMP_NEQ => "neq".to_string(),
                    o => o.to_string(),
                };
                let value = data_value(attr(data, NFTA_CMP_DATA));
                format!("cmp {op} reg {} 0x{value}", u(NFTA_CMP_SREG))
            }
            "ct" => {
                assert_eq!(u(NFTA_CT_KEY), NFT_CT_STATE);
                format!("ct load state => reg {}", u(NFTA_CT_DREG))
            }
            "bitwise" => format!(
                "bitwise reg {} = (reg {} & 0x{}) ^ 0x{}, {} bytes",
                u(NFTA_BITWISE_DREG),
                u(NFTA_BITWISE_SREG),
                data_value(attr(data, NFTA_BITWISE_MASK)),
                data_value(attr(data, NFTA_BITWISE_XOR)),
                u(NFTA_BITWISE_LEN),
            ),
            "payload" => {
                assert_eq!(u(NFTA_PAYLOAD_BASE), NFT_PAYLOAD_NETWORK_HEADER);
                format!(
                    "payload load {}b @ network header + {} => reg {}",
                    u(NFTA_PAYLOAD_LEN),
                    u(NFTA_PAYLOAD_OFFSET),
                    u(NFTA_PAYLOAD_DREG)
                )
            }
            "masq" => {
                assert!(attrs(data).is_empty(), "masq without flags or ports");
                "masq".to_string()
            }
            "fib" => {
                assert_eq!(u(NFTA_FIB_RESULT), NFT_FIB_RESULT_OIF);
                assert_eq!(u(NFTA_FIB_FLAGS), NFTA_FIB_F_DADDR | NFTA_FIB_F_IIF);
                format!("fib daddr . iif oif => reg {}", u(NFTA_FIB_DREG))
            }
            "immediate" => {
                let verdict = attr(attr(data, NFTA_IMMEDIATE_DATA), NFTA_DATA_VERDICT);
                let code = match be32(attr(verdict, NFTA_VERDICT_CODE)) {
                    NF_ACCEPT => "accept".to_string(),
                    NF_DROP => "drop".to_string(),
                    c => c.to_string(),
                };
                format!("immediate reg {} {code}", u(NFTA_IMMEDIATE_DREG))
            }
            other => format!("{other} ?"),
        }
    }

    /// A rule message's payload (after the `nfgenmsg`): its chain and expressions.
    fn render_rule(attrs_of_rule: &[u8]) -> (String, Vec<String>) {
        let chain = str_of(attr(attrs_of_rule, NFTA_RULE_CHAIN));
        let exprs = attrs(attr(attrs_of_rule, NFTA_RULE_EXPRESSIONS))
            .into_iter()
            .map(|(ty, elem)| {
                assert_eq!(ty, NFTA_LIST_ELEM);
                let name = str_of(attr(elem, NFTA_EXPR_NAME));
                render_expr(&name, attr(elem, NFTA_EXPR_DATA))
            })
            .collect();
        (chain, exprs)
    }

    /// The rules as [`install`] encodes them, rendered.
    fn encoded(egress: bool) -> Vec<(String, Vec<String>)> {
        rules(egress)
            .iter()
            .map(|r| {
                let bytes = rule_msg(r).finish(1);
                render_rule(&bytes[NLMSG_HDRLEN + NFGENMSG_LEN..])
            })
            .collect()
    }

    const IIF: [&str; 2] = ["meta load iifname => reg 1", "cmp eq reg 1 0x69736c2d"];
    const OIF: [&str; 2] = ["meta load oifname => reg 1", "cmp eq reg 1 0x69736c2d"];

    fn reply() -> Vec<String> {
        let mask = hex(&(CT_STATE_ESTABLISHED | CT_STATE_RELATED).to_ne_bytes());
        vec![
            "ct load state => reg 1".into(),
            format!("bitwise reg 1 = (reg 1 & 0x{mask}) ^ 0x00000000, 4 bytes"),
            "cmp neq reg 1 0x00000000".into(),
        ]
    }

    /// What the rules must compile to, written out.
    fn expected(egress: bool) -> Vec<(String, Vec<String>)> {
        let accept = || "immediate reg 0 accept".to_string();
        let drop = || "immediate reg 0 drop".to_string();
        let join = |chain: &str, parts: Vec<Vec<String>>| {
            (chain.to_string(), parts.into_iter().flatten().collect())
        };
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let same_bridge = s(&["fib daddr . iif oif => reg 1", "cmp neq reg 1 0x00000000"]);
        let flooded = s(&["meta load pkttype => reg 1", "cmp neq reg 1 0x00"]);
        let mut rules = vec![
            join("input", vec![s(&IIF), reply(), vec![accept()]]),
            join("input", vec![s(&IIF), vec![drop()]]),
            join("forward", vec![s(&IIF), reply(), vec![accept()]]),
            join(
                "forward",
                vec![s(&IIF), s(&OIF), same_bridge, vec![accept()]],
            ),
            join("forward", vec![s(&IIF), s(&OIF), flooded, vec![accept()]]),
            if egress {
                join("forward", vec![s(&IIF), s(&OIF), vec![drop()]])
            } else {
                join("forward", vec![s(&IIF), vec![drop()]])
            },
            join("forward", vec![s(&OIF), reply(), vec![accept()]]),
            join("forward", vec![s(&OIF), vec![drop()]]),
        ];
        if egress {
            // As `nft --debug=netlink` shows `ip saddr 10.88.0.0/14 oifname != "isl-*"
            // masquerade` (it prints registers as host-order words).
            rules.push(join(
                "postrouting",
                vec![s(&[
                    "meta load nfproto => reg 1",
                    "cmp eq reg 1 0x02",
                    "payload load 4b @ network header + 12 => reg 1",
                    "bitwise reg 1 = (reg 1 & 0xfffc0000) ^ 0x00000000, 4 bytes",
                    "cmp eq reg 1 0x0a580000",
                    "meta load oifname => reg 1",
                    "cmp neq reg 1 0x69736c2d",
                    "masq",
                ])],
            ));
        }
        rules
    }

    // ---- Encoding ----------------------------------------------------------------------------

    #[test]
    fn a_table_request_is_header_nfgenmsg_and_a_padded_name() {
        let bytes = table_msg(NFT_MSG_NEWTABLE, NLM_F_CREATE).finish(7);
        let mut want = Vec::new();
        want.extend_from_slice(&32u32.to_ne_bytes());
        want.extend_from_slice(&0x0a00u16.to_ne_bytes()); // NFNL_SUBSYS_NFTABLES << 8 | NEWTABLE
        want.extend_from_slice(&(NLM_F_REQUEST | NLM_F_CREATE).to_ne_bytes());
        want.extend_from_slice(&7u32.to_ne_bytes());
        want.extend_from_slice(&0u32.to_ne_bytes()); // port id
        want.extend_from_slice(&[NFPROTO_INET, 0, 0, 0]); // family, version, res_id
        want.extend_from_slice(&11u16.to_ne_bytes()); // 4 + "isolab\0"
        want.extend_from_slice(&NFTA_TABLE_NAME.to_ne_bytes());
        want.extend_from_slice(b"isolab\0\0"); // padded to 4
        assert_eq!(bytes, want);
    }

    /// An attribute header, as the kernel lays it out.
    fn nla(buf: &mut Vec<u8>, len: u16, ty: u16) {
        buf.extend_from_slice(&len.to_ne_bytes());
        buf.extend_from_slice(&ty.to_ne_bytes());
    }

    #[test]
    fn a_wildcard_name_compares_the_prefix_without_its_nul() {
        let mut msg = Message::nft(NFT_MSG_NEWRULE, 0);
        cmp(&mut msg, NFT_CMP_EQ, BRIDGE_PREFIX.as_bytes());
        let mut want = Vec::new();
        nla(&mut want, 44, NFTA_LIST_ELEM | NLA_F_NESTED);
        nla(&mut want, 8, NFTA_EXPR_NAME);
        want.extend_from_slice(b"cmp\0");
        nla(&mut want, 32, NFTA_EXPR_DATA | NLA_F_NESTED);
        nla(&mut want, 8, NFTA_CMP_SREG);
        want.extend_from_slice(&[0, 0, 0, 1]); // NFT_REG_1, big-endian
        nla(&mut want, 8, NFTA_CMP_OP);
        want.extend_from_slice(&[0, 0, 0, 0]); // NFT_CMP_EQ
        nla(&mut want, 12, NFTA_CMP_DATA | NLA_F_NESTED);
        nla(&mut want, 8, NFTA_DATA_VALUE);
        want.extend_from_slice(b"isl-"); // 4 bytes, no NUL: a prefix match
        assert_eq!(&msg.buf[NLMSG_HDRLEN + NFGENMSG_LEN..], &want[..]);
    }

    #[test]
    fn a_chain_request_names_its_hook_priority_policy_and_type() {
        let bytes = chain_msg(Chain::Forward).finish(1);
        let payload = &bytes[NLMSG_HDRLEN + NFGENMSG_LEN..];
        assert_eq!(str_of(attr(payload, NFTA_CHAIN_TABLE)), "isolab");
        assert_eq!(str_of(attr(payload, NFTA_CHAIN_NAME)), "forward");
        assert_eq!(str_of(attr(payload, NFTA_CHAIN_TYPE)), "filter");
        let nat = chain_msg(Chain::Postrouting).finish(1);
        let nat = &nat[NLMSG_HDRLEN + NFGENMSG_LEN..];
        assert_eq!(str_of(attr(nat, NFTA_CHAIN_TYPE)), "nat");
        let hook = attr(nat, NFTA_CHAIN_HOOK);
        assert_eq!(be32(attr(hook, NFTA_HOOK_HOOKNUM)), NF_INET_POST_ROUTING);
        assert_eq!(be32(attr(hook, NFTA_HOOK_PRIORITY)), 100);
        assert_eq!(be32(attr(payload, NFTA_CHAIN_POLICY)), NF_ACCEPT);
        let hook = attr(payload, NFTA_CHAIN_HOOK);
        assert_eq!(be32(attr(hook, NFTA_HOOK_HOOKNUM)), NF_INET_FORWARD);
        assert_eq!(be32(attr(hook, NFTA_HOOK_PRIORITY)), 0);
        // "isolab\0" and "forward\0" come first: the hook's header is at 12 + 12.
        let hook_type = u16::from_ne_bytes([payload[26], payload[27]]);
        assert_eq!(hook_type, NFTA_CHAIN_HOOK | NLA_F_NESTED);
    }

    #[test]
    fn rules_compile_as_nft_compiles_them() {
        for egress in [false, true] {
            assert_eq!(encoded(egress), expected(egress), "egress {egress}");
        }
    }

    #[test]
    fn rules_read_as_nft_writes_them() {
        assert_eq!(
            describe(false),
            "input: iifname \"isl-*\" ct state established,related accept\n\
             input: iifname \"isl-*\" drop\n\
             forward: iifname \"isl-*\" ct state established,related accept\n\
             forward: iifname \"isl-*\" oifname \"isl-*\" fib daddr . iif oif != 0 accept\n\
             forward: iifname \"isl-*\" oifname \"isl-*\" meta pkttype != host accept\n\
             forward: iifname \"isl-*\" drop\n\
             forward: oifname \"isl-*\" ct state established,related accept\n\
             forward: oifname \"isl-*\" drop\n"
        );
        let egress = describe(true);
        assert!(egress.contains("forward: iifname \"isl-*\" oifname \"isl-*\" drop\n"));
        assert!(!egress.contains("forward: iifname \"isl-*\" drop\n"));
        assert!(egress
            .ends_with("postrouting: ip saddr 10.88.0.0/14 oifname != \"isl-*\" masquerade\n"));
        assert!(!describe(false).contains("postrouting"));
    }

    #[test]
    fn a_batch_is_framed_by_begin_and_end_with_consecutive_sequence_numbers() {
        let mut batch = Batch::default();
        batch.push(table_msg(NFT_MSG_DELTABLE, 0), TABLE_TARGET);
        batch.push(chain_msg(Chain::Input), "x");
        let (bytes, acks) = batch.encode(100);
        let messages: Vec<_> = Messages(&bytes).map(|m| m.unwrap()).collect();
        let summary: Vec<_> = messages
            .iter()
            .map(|(h, p)| (h.ty, h.flags, h.seq, p[..4].to_vec()))
            .collect();
        let ack = NLM_F_REQUEST | NLM_F_ACK;
        assert_eq!(
            summary,
            [
                (0x10, NLM_F_REQUEST, 100, vec![AF_UNSPEC, 0, 0, 10]),
                (0x0a02, ack, 101, vec![NFPROTO_INET, 0, 0, 0]),
                (0x0a03, ack | NLM_F_CREATE, 102, vec![NFPROTO_INET, 0, 0, 0]),
                (0x11, NLM_F_REQUEST, 103, vec![AF_UNSPEC, 0, 0, 10]),
            ]
        );
        assert_eq!(
            acks.labels,
            [
                ("NFT_MSG_DELTABLE", TABLE_TARGET.to_string()),
                ("NFT_MSG_NEWCHAIN", "x".to_string())
            ]
        );
    }

    // ---- Replies -----------------------------------------------------------------------------

    /// An `NLMSG_ERROR` for `seq`, capped (no echoed payload), with extended-ack attributes.
    fn error_reply(seq: u32, code: i32, tlvs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut payload = code.to_ne_bytes().to_vec();
        payload.extend_from_slice(&[0u8; NLMSG_HDRLEN]); // the request's header
        for (ty, data) in tlvs {
            payload.extend_from_slice(&((NLA_HDRLEN + data.len()) as u16).to_ne_bytes());
            payload.extend_from_slice(&ty.to_ne_bytes());
            payload.extend_from_slice(data);
            payload.resize(align4(payload.len()), 0);
        }
        let flags = if tlvs.is_empty() {
            NLM_F_CAPPED
        } else {
            NLM_F_CAPPED | NLM_F_ACK_TLVS
        };
        let mut msg = Message::new(NLMSG_ERROR, 0);
        msg.buf[6..8].copy_from_slice(&flags.to_ne_bytes());
        msg.buf.extend_from_slice(&payload);
        msg.finish(seq)
    }

    fn three_requests() -> BatchAcks {
        let mut batch = Batch::default();
        batch.push(table_msg(NFT_MSG_NEWTABLE, 0), TABLE_TARGET);
        batch.push(chain_msg(Chain::Input), "inet isolab input");
        batch.push(rule_msg(&rules(false)[1]), "inet isolab input: drop");
        batch.encode(10).1
    }

    #[test]
    fn a_batch_succeeds_once_every_request_is_acked() {
        let mut acks = three_requests();
        let mut datagram = error_reply(11, 0, &[]);
        datagram.extend(error_reply(12, 0, &[]));
        assert!(!acks.absorb(&datagram).unwrap());
        assert_eq!(acks.answered(), 2);
        // Another sequence number is not ours.
        assert!(!acks.absorb(&error_reply(99, -1, &[])).unwrap());
        assert!(acks.absorb(&error_reply(13, 0, &[])).unwrap());
        acks.result().unwrap();
    }

    #[test]
    fn the_first_refused_request_names_the_error() {
        let mut acks = three_requests();
        let mut datagram = error_reply(11, 0, &[]);
        datagram.extend(error_reply(
            12,
            -libc::EOPNOTSUPP,
            &[(NLMSGERR_ATTR_OFFS, &24u32.to_ne_bytes())],
        ));
        // A later error (a consequence of the first) does not hide it.
        datagram.extend(error_reply(
            13,
            -libc::ENOENT,
            &[(NLMSGERR_ATTR_MSG, b"no such chain\0")],
        ));
        assert!(acks.absorb(&datagram).unwrap());
        let e = acks.result().unwrap_err();
        assert!(
            matches!(
                &e,
                FirewallError::Kernel { op: "NFT_MSG_NEWCHAIN", target, errno: Errno::EOPNOTSUPP, .. }
                    if target == "inet isolab input"
            ),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "NFT_MSG_NEWCHAIN inet isolab input: Operation not supported on transport endpoint \
             (the attribute at byte 24 of the request)"
        );
    }

    #[test]
    fn an_error_on_the_batch_itself_ends_the_exchange() {
        let mut acks = three_requests();
        let e = acks
            .absorb(&error_reply(
                10,
                -libc::EPERM,
                &[(NLMSGERR_ATTR_MSG, b"not allowed\0")],
            ))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "NFNL_MSG_BATCH_BEGIN inet isolab: Operation not permitted (not allowed)"
        );
        let mut truncated = error_reply(11, 0, &[]);
        truncated.truncate(20);
        assert!(matches!(
            three_requests().absorb(&truncated),
            Err(FirewallError::Truncated)
        ));
    }

    // ---- Against the kernel ------------------------------------------------------------------

    /// A command run from the calling thread (so in its network namespace); its stdout.
    fn run(program: &str, args: &[&str]) -> String {
        let out = Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"));
        assert!(out.status.success(), "{program} {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn has(program: &str) -> bool {
        Command::new(program).arg("--version").output().is_ok()
    }

    /// The installed rules, read back with an `NFT_MSG_GETRULE` dump.
    fn dumped_rules() -> Vec<(String, Vec<String>)> {
        let mut msg = Message::nft(NFT_MSG_GETRULE, NLM_F_DUMP);
        msg.attr_str(NFTA_RULE_TABLE, TABLE);
        let payloads = Socket::open()
            .unwrap()
            .request(msg, TABLE_TARGET, nft_type(NFT_MSG_NEWRULE))
            .unwrap();
        payloads
            .iter()
            .map(|p| render_rule(&p[NFGENMSG_LEN..]))
            .collect()
    }

    /// Witness: the rules `nft` lists, as `chain: rule`.
    fn nft_rules() -> String {
        let mut out = String::new();
        let mut chain = "";
        let listing = run("nft", &["list", "table", "inet", TABLE]);
        for line in listing.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix("chain ") {
                chain = name.trim_end_matches(" {");
            } else if line.contains(BRIDGE_PREFIX) {
                out.push_str(&format!("{chain}: {line}\n"));
            }
        }
        out
    }

    #[test]
    fn install_replaces_the_table_and_remove_deletes_it() {
        require_root!();
        in_fresh_netns(|| {
            assert!(!installed().unwrap());
            remove().expect("removing an absent table is fine");
            for egress in [false, true, false] {
                install(egress).unwrap();
                assert!(installed().unwrap());
                // Replaced, not added to: exactly the rules of this setting.
                assert_eq!(dumped_rules(), expected(egress), "egress {egress}");
                if has("nft") {
                    assert_eq!(nft_rules(), describe(egress), "egress {egress}");
                }
            }
            remove().unwrap();
            assert!(!installed().unwrap());
            remove().unwrap();
            assert_eq!(dumped_rules(), []);
        });
    }

    #[test]
    fn an_error_names_the_request_and_changes_nothing() {
        require_root!();
        in_fresh_netns(|| {
            install(false).unwrap();
            // The table's deletion, then a rule for a chain that does not exist: the whole
            // batch is refused.
            let mut batch = Batch::default();
            batch.push(table_msg(NFT_MSG_DELTABLE, 0), TABLE_TARGET);
            let mut bad = Message::nft(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
            bad.attr_str(NFTA_RULE_TABLE, TABLE);
            bad.attr_str(NFTA_RULE_CHAIN, "nowhere");
            batch.push(bad, "inet isolab nowhere: nothing");
            let e = Socket::open().unwrap().commit(batch).unwrap_err();
            assert!(
                matches!(
                    &e,
                    FirewallError::Kernel { op: "NFT_MSG_NEWRULE", target, errno: Errno::ENOENT, .. }
                        if target == "inet isolab nowhere: nothing"
                ),
                "{e}"
            );
            // The deletion in the same batch did not happen.
            assert_eq!(dumped_rules(), expected(false));
            remove().unwrap();
        });
    }

    // ---- Traffic ------------------------------------------------------------------------------

    /// A namespace standing for a container or another network: a TCP listener on every
    /// address (port 7 everywhere, so a probe names only the address) and a UDP socket on
    /// port 9 (for broadcasts).
    struct Node {
        netns: File,
        _listener: TcpListener,
        udp: UdpSocket,
    }

    const PORT: u16 = 7;
    const UDP_PORT: u16 = 9;

    fn listen() -> TcpListener {
        run("ip", &["link", "set", "lo", "up"]);
        TcpListener::bind((Ipv4Addr::UNSPECIFIED, PORT)).expect("listen on port 7")
    }

    /// In the host namespace (the caller's): a veth whose far end goes to a new namespace as
    /// `eth0` with `addr/24` and a default route through `gateway`; the near end joins `bridge`,
    /// or gets `gateway/24` itself when there is no bridge.
    fn node(name: &str, bridge: Option<&str>, addr: &str, gateway: &str) -> Node {
        let netns = scratch_netns();
        netlink::add_veth(name, "eth0").unwrap();
        netlink::move_to_netns("eth0", netns.as_fd()).unwrap();
        match bridge {
            Some(b) => run("ip", &["link", "set", name, "master", b]),
            None => run(
                "ip",
                &["addr", "add", &format!("{gateway}/24"), "dev", name],
            ),
        };
        netlink::set_up(name, true).unwrap();
        let (listener, udp) = netlink::in_netns_fd(netns.as_fd(), || {
            run("ip", &["addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
            run("ip", &["link", "set", "eth0", "up"]);
            run("ip", &["route", "add", "default", "via", gateway]);
            let udp = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, UDP_PORT)).expect("udp port 9");
            udp.set_broadcast(true).unwrap();
            udp.set_read_timeout(Some(Duration::from_millis(400)))
                .unwrap();
            (listen(), udp)
        })
        .unwrap();
        Node {
            netns,
            _listener: listener,
            udp,
        }
    }

    /// Whether a TCP connection from `from` (the caller's namespace when `None`) to `to`
    /// port 7 is accepted (a dropped SYN times out).
    fn reaches(from: Option<&Node>, to: &str) -> bool {
        let addr = SocketAddr::new(to.parse().unwrap(), PORT);
        let probe = || TcpStream::connect_timeout(&addr, Duration::from_millis(400)).is_ok();
        match from {
            Some(node) => netlink::in_netns_fd(node.netns.as_fd(), probe).unwrap(),
            None => probe(),
        }
    }

    /// Whether a broadcast (to 255.255.255.255, which no route leads to on the host) from
    /// `from` reaches `to`.
    fn broadcast_reaches(from: &Node, to: &Node) -> bool {
        let mut buf = [0u8; 16];
        while to.udp.recv(&mut buf).is_ok() {}
        from.udp
            .send_to(b"hello", (Ipv4Addr::BROADCAST, UDP_PORT))
            .unwrap();
        matches!(to.udp.recv(&mut buf), Ok(5))
    }

    #[test]
    fn sessions_keep_to_themselves_and_off_the_host() {
        require_root!();
        if !has("ip") {
            eprintln!("skipping: no `ip` to set the namespaces up");
            return;
        }
        in_fresh_netns(|| {
            // The host: two session bridges, an outside network, routing on.
            std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
            let _host_listener = listen();
            for (bridge, gateway) in [("isl-ta", "10.88.0.1/24"), ("isl-tb", "10.88.1.1/24")] {
                netlink::add_bridge(bridge).unwrap();
                run("ip", &["addr", "add", gateway, "dev", bridge]);
                netlink::set_up(bridge, true).unwrap();
            }
            let a1 = node("va1", Some("isl-ta"), "10.88.0.2", "10.88.0.1");
            let a2 = node("va2", Some("isl-ta"), "10.88.0.3", "10.88.0.1");
            let _b1 = node("vb1", Some("isl-tb"), "10.88.1.2", "10.88.1.1");
            let out = node("wan0", None, "172.31.0.2", "172.31.0.1");
            // The outside answers sessions directly, as long as it has this route back.
            let route_back = |op: &str| {
                netlink::in_netns_fd(out.netns.as_fd(), || {
                    run("ip", &["route", op, "10.88.0.0/14", "via", "172.31.0.1"]);
                })
                .unwrap()
            };
            route_back("add");
            netlink::in_netns_fd(out.netns.as_fd(), || {
                run("ip", &["route", "del", "default"]);
            })
            .unwrap();

            // br_netfilter (per namespace), when the kernel has it, on and off: with it,
            // bridged frames cross the forward hook.
            let brnf = std::path::Path::new("/proc/sys/net/bridge");
            let settings: &[Option<&str>] = if brnf.exists() {
                &[Some("1"), Some("0")]
            } else {
                &[None]
            };
            for &setting in settings {
                if let Some(value) = setting {
                    for family in ["iptables", "ip6tables"] {
                        let knob = brnf.join(format!("bridge-nf-call-{family}"));
                        std::fs::write(knob, value).unwrap();
                    }
                }
                let label = format!("bridge-nf-call-iptables {setting:?}");
                // Without rules, routing through the host reaches everything.
                remove().unwrap();
                let open = [
                    ("a1 → a2", reaches(Some(&a1), "10.88.0.3")),
                    ("a1 → host", reaches(Some(&a1), "10.88.0.1")),
                    ("a1 → b1", reaches(Some(&a1), "10.88.1.2")),
                    ("a1 → outside", reaches(Some(&a1), "172.31.0.2")),
                    ("outside → a1", reaches(Some(&out), "10.88.0.2")),
                    ("a1 ⇉ a2", broadcast_reaches(&a1, &a2)),
                ];
                assert!(open.iter().all(|&(_, ok)| ok), "{label}: {open:?}");

                for egress in [false, true] {
                    install(egress).unwrap();
                    let got = [
                        ("a1 → a2", reaches(Some(&a1), "10.88.0.3")),
                        ("a1 ⇉ a2", broadcast_reaches(&a1, &a2)),
                        ("host → a1", reaches(None, "10.88.0.2")),
                        ("a1 → host", reaches(Some(&a1), "10.88.0.1")),
                        (
                            "a1 → host's other address",
                            reaches(Some(&a1), "172.31.0.1"),
                        ),
                        ("a1 → b1", reaches(Some(&a1), "10.88.1.2")),
                        ("a1 → outside", reaches(Some(&a1), "172.31.0.2")),
                        ("outside → a1", reaches(Some(&out), "10.88.0.2")),
                    ];
                    let want = [
                        ("a1 → a2", true),
                        ("a1 ⇉ a2", true),
                        ("host → a1", true),
                        ("a1 → host", false),
                        ("a1 → host's other address", false),
                        ("a1 → b1", false),
                        ("a1 → outside", egress),
                        ("outside → a1", false),
                    ];
                    assert_eq!(got, want, "{label}, egress {egress}");
                    // Without its route back, the outside answers only the host's address:
                    // with egress, the masquerade makes a session's packets the host's.
                    route_back("del");
                    let nat = reaches(Some(&a1), "172.31.0.2");
                    route_back("add");
                    assert_eq!(
                        nat, egress,
                        "{label}, egress {egress}: a1 → outside, NAT only"
                    );
                }
            }
            remove().unwrap();
        });
    }
}
