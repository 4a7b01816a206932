//! The codec on crafted bytes, and the client against the kernel. Each kernel test runs in a
//! thread of its own that first unshares a fresh, empty network namespace (only `lo`), so
//! nothing touches the host's interfaces; whatever a test makes goes with its namespaces when
//! the thread ends and the descriptors close, even when an assertion fails. Those tests need
//! root (and skip, saying so, without it). `ip` and `nsenter` are only witnesses. The firewall's
//! tests use the same namespace helpers ([`in_fresh_netns`], [`scratch_netns`]).

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;

use nix::errno::Errno;
use nix::sched::{unshare, CloneFlags};

use super::wire::{WireError, NLMSGERR_ATTR_MSG, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_REQUEST};
use super::*;

macro_rules! require_root {
    () => {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping: needs root (network namespaces, links)");
            return;
        }
    };
}

/// Runs `f` in a new thread inside a fresh network namespace of its own; the namespace ends
/// with the thread (unless a descriptor still holds it). A panic in `f` fails the test.
pub(crate) fn in_fresh_netns<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
                f()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Another fresh network namespace, held only by the returned descriptor: dropping it destroys
/// the namespace and the interfaces in it.
pub(crate) fn scratch_netns() -> File {
    std::thread::spawn(|| {
        unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        File::open("/proc/thread-self/ns/net").expect("open /proc/thread-self/ns/net")
    })
    .join()
    .expect("the namespace thread")
}

/// The calling thread's network namespace, as a path another process can open.
fn own_netns_path() -> String {
    format!(
        "/proc/{}/task/{}/ns/net",
        std::process::id(),
        nix::unistd::gettid()
    )
}

/// Witness: the interface names `ip` sees in the namespace at `path`.
fn ip_names(path: &str) -> Vec<String> {
    let out = Command::new("nsenter")
        .arg(format!("--net={path}"))
        .args(["ip", "-o", "link", "show"])
        .output()
        .expect("run nsenter ip");
    assert!(out.status.success(), "nsenter ip: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .collect()
}

/// A process in a network namespace of its own (`unshare -n sleep 30`), killed on drop.
struct NetnsProcess(Child);

impl NetnsProcess {
    fn start() -> NetnsProcess {
        let child = Command::new("unshare")
            .args(["-n", "sleep", "30"])
            .stdin(Stdio::null())
            .spawn()
            .expect("run unshare -n sleep 30");
        let p = NetnsProcess(child);
        // unshare execs sleep once the namespace is made: wait for the namespace to differ.
        let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
        for _ in 0..200 {
            let comm =
                std::fs::read_to_string(format!("/proc/{}/comm", p.pid())).unwrap_or_default();
            let ns = std::fs::read_link(format!("/proc/{}/ns/net", p.pid())).ok();
            if comm.trim() == "sleep" && ns.is_some_and(|ns| ns != ours) {
                return p;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("unshare -n sleep 30 did not start");
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for NetnsProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn names(links: &[Link]) -> Vec<&str> {
    links.iter().map(|l| l.name.as_str()).collect()
}

fn find<'a>(links: &'a [Link], name: &str) -> &'a Link {
    links
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("{name} not in {:?}", names(links)))
}

fn kernel_errno(e: &NetlinkError) -> (&'static str, Errno) {
    match e {
        NetlinkError::Kernel { op, errno, .. } => (op, *errno),
        other => panic!("not a kernel error: {other:?}"),
    }
}

// ---- the codec, no kernel ----

#[test]
fn attributes_are_padded_to_four_bytes() {
    let mut m = Message::new(RTM_NEWLINK, NLM_F_CREATE);
    m.put(&ifinfomsg(7, IFF_UP, IFF_UP));
    m.attr_str(IFLA_IFNAME, "ab"); // 4 + 3 bytes, padded to 8
    m.attr(IFLA_MASTER, &3u32.to_ne_bytes());
    let bytes = m.finish(42);
    assert_eq!(bytes.len(), 16 + 16 + 8 + 8);
    assert_eq!(u32::from_ne_bytes(bytes[0..4].try_into().unwrap()), 48);
    assert_eq!(u16::from_ne_bytes([bytes[4], bytes[5]]), RTM_NEWLINK);
    assert_eq!(
        u16::from_ne_bytes([bytes[6], bytes[7]]),
        NLM_F_REQUEST | NLM_F_CREATE
    );
    assert_eq!(u32::from_ne_bytes(bytes[8..12].try_into().unwrap()), 42);
    // IFLA_IFNAME: length 7 (header, "ab", NUL), then one byte of padding.
    assert_eq!(&bytes[32..40], &[7, 0, 3, 0, b'a', b'b', 0, 0]);
    let attrs: Vec<_> = Attrs(&bytes[32..]).map(|a| a.unwrap()).collect();
    assert_eq!(
        attrs,
        [
            (IFLA_IFNAME, &b"ab\0"[..]),
            (IFLA_MASTER, &3u32.to_ne_bytes()[..])
        ]
    );
}

#[test]
fn nested_attributes_hold_their_children() {
    let mut m = Message::new(RTM_NEWLINK, 0);
    let info = m.begin(IFLA_LINKINFO);
    m.attr_str(IFLA_INFO_KIND, "veth");
    let data = m.begin(IFLA_INFO_DATA);
    let peer = m.begin(VETH_INFO_PEER);
    m.put(&ifinfomsg(0, 0, 0));
    m.attr_str(IFLA_IFNAME, "peer0");
    m.end(peer);
    m.end(data);
    m.end(info);
    let bytes = m.finish(1);
    let (ty, linkinfo) = Attrs(&bytes[16..]).next().unwrap().unwrap();
    assert_eq!(ty, IFLA_LINKINFO);
    assert_eq!(
        linkinfo.len() + 4,
        bytes.len() - 16,
        "the nest spans the rest"
    );
    let inner: Vec<_> = Attrs(linkinfo).map(|a| a.unwrap()).collect();
    assert_eq!(inner[0], (IFLA_INFO_KIND, &b"veth\0"[..]));
    assert_eq!(inner[1].0, IFLA_INFO_DATA);
    let (ty, peer) = Attrs(inner[1].1).next().unwrap().unwrap();
    assert_eq!(ty, VETH_INFO_PEER);
    assert_eq!(&peer[..IFINFOMSG_LEN], &[0; IFINFOMSG_LEN]);
    let name: Vec<_> = Attrs(&peer[IFINFOMSG_LEN..]).map(|a| a.unwrap()).collect();
    assert_eq!(name, [(IFLA_IFNAME, &b"peer0\0"[..])]);
}

/// An RTM_NEWLINK payload as the kernel would send it.
fn crafted_link() -> Vec<u8> {
    let mut m = Message::new(RTM_NEWLINK, 0);
    m.put(&ifinfomsg(5, IFF_UP | 0x40, 0));
    m.attr_str(IFLA_IFNAME, "veth0");
    m.attr(IFLA_ADDRESS, &[2, 0, 0, 0, 0, 9]);
    m.attr(IFLA_LINK, &6u32.to_ne_bytes());
    m.attr(IFLA_MASTER, &3u32.to_ne_bytes());
    m.attr(IFLA_LINK_NETNSID, &1i32.to_ne_bytes());
    m.attr(99, b"ignored");
    // Nested, flagged as the kernel flags some nests.
    let info = m.begin(IFLA_LINKINFO | 1 << 15);
    m.attr(IFLA_INFO_KIND, b"veth"); // without a NUL, as iproute2 sends it
    m.end(info);
    m.finish(1)[16..].to_vec()
}

#[test]
fn a_link_is_decoded_from_its_attributes() {
    let link = parse_link(&crafted_link()).unwrap();
    assert_eq!(
        link,
        Link {
            index: 5,
            name: "veth0".into(),
            kind: Some("veth".into()),
            up: true,
            master: Some(3),
            link: Some(6),
            link_netnsid: Some(1),
            mac: Some([2, 0, 0, 0, 0, 9]),
        }
    );
}

#[test]
fn bad_lengths_are_truncated_or_malformed() {
    let full = crafted_link();
    // Cut inside an attribute: its length points past the end.
    assert!(matches!(
        parse_link(&full[..IFINFOMSG_LEN + 6]),
        Err(NetlinkError::Truncated)
    ));
    assert!(matches!(
        parse_link(&full[..10]),
        Err(NetlinkError::Truncated)
    ));
    // An attribute claiming less than its own header.
    let mut bad = full.clone();
    bad[IFINFOMSG_LEN..IFINFOMSG_LEN + 2].copy_from_slice(&2u16.to_ne_bytes());
    assert!(matches!(parse_link(&bad), Err(NetlinkError::Malformed(_))));
    // A u32 attribute of the wrong size.
    let mut m = Message::new(RTM_NEWLINK, 0);
    m.put(&ifinfomsg(1, 0, 0));
    m.attr_str(IFLA_IFNAME, "x");
    m.attr(IFLA_MASTER, &[1, 2]);
    let e = parse_link(&m.finish(1)[16..]).unwrap_err();
    assert!(e.to_string().contains("not 4"), "{e}");
    // No name.
    assert!(matches!(
        parse_link(&ifinfomsg(1, 0, 0)),
        Err(NetlinkError::Malformed(_))
    ));
    // Messages: a length below the header, and one past the datagram.
    let mut msg = Message::new(NLMSG_DONE, 0).finish(1);
    msg[0..4].copy_from_slice(&8u32.to_ne_bytes());
    assert!(matches!(
        Messages(&msg).next(),
        Some(Err(WireError::Malformed(_)))
    ));
    msg[0..4].copy_from_slice(&64u32.to_ne_bytes());
    assert!(matches!(
        Messages(&msg).next(),
        Some(Err(WireError::Truncated))
    ));
}

/// A reply message: header fields, then the payload.
fn reply(ty: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut m = Message::new(ty, 0);
    m.buf[6..8].copy_from_slice(&flags.to_ne_bytes());
    m.put(payload);
    m.finish(seq)
}

/// An NLMSG_ERROR payload: the code, the request's header (capped), an extended-ack message.
fn error_payload(code: i32, text: &str) -> Vec<u8> {
    let mut m = Message::new(RTM_NEWLINK, 0);
    m.buf.clear();
    m.buf.extend_from_slice(&code.to_ne_bytes());
    m.buf
        .extend_from_slice(&Message::new(RTM_NEWLINK, 0).finish(9));
    m.attr_str(NLMSGERR_ATTR_MSG, text);
    m.buf
}

fn pending(seq: u32, expect: Expect) -> Pending<'static> {
    Pending {
        op: "RTM_NEWLINK",
        target: "dummy0",
        seq,
        expect,
        payloads: Vec::new(),
        interrupted: false,
    }
}

#[test]
fn replies_for_another_sequence_number_are_skipped() {
    let mut datagram = reply(RTM_NEWLINK, 0, 8, &crafted_link());
    datagram.extend(reply(NLMSG_ERROR, 0, 8, &error_payload(-17, "")));
    datagram.extend(reply(NLMSG_ERROR, 0, 9, &0i32.to_ne_bytes()));
    let mut p = pending(9, Expect::Ack);
    assert!(p.absorb(&datagram).unwrap(), "the ack for 9 completes it");
    assert!(p.payloads.is_empty());
    // Only someone else's traffic: not complete yet.
    let mut p = pending(10, Expect::Ack);
    assert!(!p.absorb(&datagram).unwrap());
}

#[test]
fn a_dump_ends_at_done_and_notes_interruptions() {
    let mut first = reply(RTM_NEWLINK, 0x2, 3, &crafted_link());
    first.extend(reply(
        RTM_NEWLINK,
        0x2 | NLM_F_DUMP_INTR,
        3,
        &crafted_link(),
    ));
    let mut p = pending(3, Expect::Dump(RTM_NEWLINK));
    assert!(!p.absorb(&first).unwrap());
    assert!(p
        .absorb(&reply(NLMSG_DONE, 0x2, 3, &0i32.to_ne_bytes()))
        .unwrap());
    assert_eq!(p.payloads.len(), 2);
    assert!(p.interrupted);
    // A done carrying an error, and an unexpected type.
    let mut p = pending(4, Expect::Dump(RTM_NEWLINK));
    let e = p
        .absorb(&reply(NLMSG_DONE, 0x2, 4, &(-105i32).to_ne_bytes()))
        .unwrap_err();
    assert_eq!(kernel_errno(&e).1, Errno::ENOBUFS);
    let mut p = pending(5, Expect::Dump(RTM_NEWLINK));
    assert!(matches!(
        p.absorb(&reply(RTM_NEWNSID, 0, 5, &[0; 4])),
        Err(NetlinkError::Malformed(_))
    ));
}

#[test]
fn kernel_errors_name_the_request_the_target_and_the_errno() {
    let flags = NLM_F_CAPPED | NLM_F_ACK_TLVS;
    let mut p = pending(9, Expect::Ack);
    let e = p
        .absorb(&reply(NLMSG_ERROR, flags, 9, &error_payload(-17, "")))
        .unwrap_err();
    assert_eq!(kernel_errno(&e), ("RTM_NEWLINK", Errno::EEXIST));
    assert_eq!(e.to_string(), "RTM_NEWLINK dummy0: File exists");
    let mut p = pending(9, Expect::Ack);
    let e = p
        .absorb(&reply(
            NLMSG_ERROR,
            flags,
            9,
            &error_payload(-22, "Unknown device type"),
        ))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "RTM_NEWLINK dummy0: Invalid argument (Unknown device type)"
    );
}

#[test]
fn names_the_kernel_would_refuse_are_refused_first() {
    for bad in [
        "",
        "sixteen-bytes-xx",
        "a/b",
        "a b",
        "a:b",
        ".",
        "..",
        "a\0b",
    ] {
        assert!(
            matches!(check_name(bad), Err(NetlinkError::InvalidName(_))),
            "{bad:?}"
        );
        assert!(matches!(
            delete_link(bad),
            Err(NetlinkError::InvalidName(_))
        ));
    }
    assert_eq!(check_name("fifteen-bytes-x").unwrap(), "fifteen-bytes-x");
}

// ---- against the kernel, each in a fresh namespace ----

#[test]
fn a_fresh_namespace_has_only_lo() {
    require_root!();
    in_fresh_netns(|| {
        let links = links().unwrap();
        assert_eq!(names(&links), ["lo"]);
        let lo = &links[0];
        assert_eq!((lo.index, lo.kind.as_deref(), lo.up), (1, None, false));
        assert_eq!((lo.link, lo.link_netnsid, lo.master), (None, None, None));
        assert_eq!(lo.mac, Some([0; 6]));
        assert_eq!(link("lo").unwrap().as_ref(), Some(lo));
        assert_eq!(link("nothere0").unwrap(), None);
    });
}

/// A link just made (`kind`, down) goes up, shows in `links()` and to `ip`, goes down, and is
/// deleted.
fn check_lifecycle(name: &str, kind: &str) {
    let l = find(&links().unwrap(), name).clone();
    assert_eq!((l.kind.as_deref(), l.up), (Some(kind), false));
    assert!(l.mac.is_some_and(|m| m != [0; 6]), "{l:?}");
    assert_eq!((l.link, l.link_netnsid, l.master), (None, None, None));
    set_up(name, true).unwrap();
    assert!(find(&links().unwrap(), name).up);
    assert_eq!(ip_names(&own_netns_path()), ["lo", name]);
    set_up(name, false).unwrap();
    assert!(!link(name).unwrap().unwrap().up);
    assert!(delete_link(name).unwrap());
    assert_eq!(names(&links().unwrap()), ["lo"]);
    assert_eq!(ip_names(&own_netns_path()), ["lo"]);
}

#[test]
fn a_dummy_is_added_brought_up_listed_and_deleted() {
    require_root!();
    in_fresh_netns(|| match add_dummy("dummy0") {
        Ok(()) => check_lifecycle("dummy0", "dummy"),
        Err(e) => {
            // Some kernels (this one included, at the time of writing) lack CONFIG_DUMMY.
            assert_eq!(kernel_errno(&e), ("RTM_NEWLINK", Errno::EOPNOTSUPP), "{e}");
            eprintln!("no dummy driver in this kernel ({e}); only the refusal was checked");
        }
    });
}

#[test]
fn a_bridge_is_added_brought_up_listed_and_deleted() {
    require_root!();
    in_fresh_netns(|| {
        add_bridge("br0").unwrap();
        check_lifecycle("br0", "bridge");
    });
}

#[test]
fn veth_ends_point_at_each_other() {
    require_root!();
    in_fresh_netns(|| {
        add_veth("va", "vb").unwrap();
        let links = links().unwrap();
        let (a, b) = (find(&links, "va"), find(&links, "vb"));
        assert_eq!(a.kind.as_deref(), Some("veth"));
        assert_eq!(b.kind.as_deref(), Some("veth"));
        assert_eq!(a.link, Some(b.index));
        assert_eq!(b.link, Some(a.index));
        assert_eq!((a.link_netnsid, b.link_netnsid), (None, None));
        // Deleting one end takes the pair.
        assert!(delete_link("vb").unwrap());
        assert_eq!(names(&super::links().unwrap()), ["lo"]);
    });
}

#[test]
fn a_veth_end_moves_to_another_namespace() {
    require_root!();
    let other = scratch_netns();
    let other_path = format!("/proc/{}/fd/{}", std::process::id(), other.as_raw_fd());
    in_fresh_netns(|| {
        add_veth("va", "vb").unwrap();
        assert_eq!(netns_id(other.as_fd()).unwrap(), None, "no id given yet");
        move_to_netns("vb", other.as_fd()).unwrap();

        let here = links().unwrap();
        assert_eq!(names(&here), ["lo", "va"]);
        let va = find(&here, "va").clone();
        let id = netns_id(other.as_fd())
            .unwrap()
            .expect("an id once a link points there");
        assert_eq!(va.link_netnsid, Some(id));

        let there = in_netns_fd(other.as_fd(), || links().unwrap()).unwrap();
        assert_eq!(names(&there), ["lo", "vb"], "same name over there");
        let vb = find(&there, "vb");
        assert_eq!(va.link, Some(vb.index));
        assert!(
            vb.link_netnsid.is_some(),
            "vb's peer is in another namespace"
        );
        assert_eq!(ip_names(&other_path), ["lo", "vb"]);
        assert_eq!(ip_names(&own_netns_path()), ["lo", "va"]);

        // Bring it back by its own namespace's descriptor.
        let home = File::open("/proc/thread-self/ns/net").unwrap();
        let back = in_netns_fd(other.as_fd(), || move_to_netns("vb", home.as_fd())).unwrap();
        back.unwrap();
        let links = links().unwrap();
        let mut back_here = names(&links);
        back_here.sort();
        assert_eq!(back_here, ["lo", "va", "vb"]);
        assert_eq!(ip_names(&other_path), ["lo"]);
        assert!(delete_link("va").unwrap());
    });
}

#[test]
fn errors_carry_the_request_and_errno() {
    require_root!();
    in_fresh_netns(|| {
        assert!(
            !delete_link("missing0").unwrap(),
            "a missing link is Ok(false)"
        );
        add_bridge("br0").unwrap();
        let e = add_bridge("br0").unwrap_err();
        assert_eq!(kernel_errno(&e), ("RTM_NEWLINK", Errno::EEXIST));
        assert!(
            e.to_string().starts_with("RTM_NEWLINK br0: File exists"),
            "{e}"
        );
        let e = add_veth("br0", "peer0").unwrap_err();
        assert_eq!(kernel_errno(&e), ("RTM_NEWLINK", Errno::EEXIST));
        let e = set_up("missing0", true).unwrap_err();
        assert_eq!(kernel_errno(&e), ("RTM_NEWLINK", Errno::ENODEV));
        assert!(
            e.to_string()
                .starts_with("RTM_NEWLINK missing0: No such device"),
            "{e}"
        );
        // Not a namespace descriptor.
        let file = File::open("/proc/self/status").unwrap();
        let e = move_to_netns("br0", file.as_fd()).unwrap_err();
        assert_eq!(kernel_errno(&e).0, "RTM_NEWLINK");
        let e = netns_id(file.as_fd()).unwrap_err();
        assert_eq!(kernel_errno(&e).0, "RTM_GETNSID");
        assert!(e.to_string().starts_with("RTM_GETNSID netns fd "), "{e}");
        // The failures changed nothing.
        assert_eq!(names(&links().unwrap()), ["lo", "br0"]);
    });
}

#[test]
fn in_netns_acts_in_a_process_namespace_and_leaves_the_caller_alone() {
    require_root!();
    let process = NetnsProcess::start();
    let pid = process.pid();
    in_fresh_netns(|| {
        add_bridge("here0").unwrap();
        let inside = in_netns(pid, || {
            add_bridge("inside0")?;
            links()
        })
        .unwrap()
        .unwrap();
        assert_eq!(names(&inside), ["lo", "inside0"]);
        assert_eq!(
            names(&links().unwrap()),
            ["lo", "here0"],
            "the caller did not move"
        );
        assert_eq!(ip_names(&format!("/proc/{pid}/ns/net")), ["lo", "inside0"]);
        assert!(in_netns(pid, || delete_link("inside0")).unwrap().unwrap());
        assert_eq!(ip_names(&format!("/proc/{pid}/ns/net")), ["lo"]);
    });
}

#[test]
fn in_netns_reports_missing_processes_and_passes_panics_on() {
    require_root!();
    let e = in_netns(i32::MAX, || ()).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    // Not a namespace: setns refuses, and `f` never runs.
    let file = File::open("/proc/self/status").unwrap();
    let ran = std::sync::atomic::AtomicBool::new(false);
    assert!(in_netns_fd(file.as_fd(), || ran.store(true, Ordering::SeqCst)).is_err());
    assert!(!ran.load(Ordering::SeqCst));
    let other = scratch_netns();
    let panic = std::panic::catch_unwind(|| {
        in_netns_fd(other.as_fd(), || panic!("inside")).unwrap();
    })
    .unwrap_err();
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"inside"));
}
