//! What only the inside can tell: the hostname (`uname` answers for the caller's UTS
//! namespace) and the network interfaces (netlink answers for the caller's network namespace).
//!
//! One short-lived thread per pass joins each watched container's UTS and network namespaces in
//! turn with `setns` and asks; nothing runs inside the container. Both kinds may be joined by
//! one thread of a multi-threaded process (unlike mnt and user), and the thread's namespaces end
//! with it, so the server's other threads never see them.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::net::IpAddr;

use isolab_shared::protocol::view::{InterfaceView, UtsView};
use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;
use nix::sched::{setns, CloneFlags};
use nix::sys::socket::SockaddrStorage;
use nix::sys::utsname::uname;

/// Hostname and domain name of the calling thread's UTS namespace.
pub fn uts_here() -> io::Result<UtsView> {
    let u = uname()?;
    Ok(UtsView {
        hostname: u.nodename().to_string_lossy().into_owned(),
        domainname: u.domainname().to_string_lossy().into_owned(),
    })
}

/// The kernel release (`uname -r`).
pub fn kernel_release() -> io::Result<String> {
    Ok(uname()?.release().to_string_lossy().into_owned())
}

/// Interfaces of the calling thread's network namespace, by index.
pub fn interfaces_here() -> io::Result<Vec<InterfaceView>> {
    let mut by_name: BTreeMap<String, InterfaceView> = BTreeMap::new();
    let mut v4: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut v6: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in getifaddrs()? {
        let entry = by_name
            .entry(a.interface_name.clone())
            .or_insert_with(|| InterfaceView {
                name: a.interface_name.clone(),
                index: 0,
                up: a.flags.contains(InterfaceFlags::IFF_UP),
                running: a.flags.contains(InterfaceFlags::IFF_RUNNING),
                addresses: Vec::new(),
                peer: None,
                kind: None,
            });
        let Some(addr) = a.address.as_ref() else {
            continue;
        };
        if let Some(link) = addr.as_link_addr() {
            entry.index = link.ifindex() as u32;
        } else if let Some(ip) = ip_of(addr) {
            let prefix = a.netmask.as_ref().and_then(ip_of).map_or(0, prefix_len);
            let list = if ip.is_ipv4() { &mut v4 } else { &mut v6 };
            list.entry(a.interface_name.clone())
                .or_default()
                .push(format!("{ip}/{prefix}"));
        }
    }
    let mut out: Vec<InterfaceView> = by_name
        .into_values()
        .map(|mut i| {
            i.addresses.extend(v4.remove(&i.name).unwrap_or_default());
            i.addresses.extend(v6.remove(&i.name).unwrap_or_default());
            i
        })
        .collect();
    out.sort_by_key(|i| (i.index, i.name.clone()));
    Ok(out)
}

fn ip_of(addr: &SockaddrStorage) -> Option<IpAddr> {
    if let Some(a) = addr.as_sockaddr_in() {
        return Some(IpAddr::V4(a.ip()));
    }
    addr.as_sockaddr_in6().map(|a| IpAddr::V6(a.ip()))
}

fn prefix_len(mask: IpAddr) -> u32 {
    match mask {
        IpAddr::V4(m) => u32::from(m).count_ones(),
        IpAddr::V6(m) => u128::from(m).count_ones(),
    }
}

/// What [`read_inside`] found: the hostname, the interfaces (with veth peers still to name).
pub type Inside = (
    Option<UtsView>,
    Option<Vec<InterfaceView>>,
    Vec<super::links::PendingPeer>,
);

/// What to ask inside one container: the hostname in its UTS namespace (when `uts`), the
/// interfaces in its network namespace (when `net`, with the namespaces a veth's peer may be in).
pub struct Ask<'a> {
    pub uts: Option<&'a File>,
    pub net: Option<&'a File>,
    pub candidates: super::links::Candidates<'a>,
}

/// Ask inside each container in turn, from one thread of its own: it joins each one's UTS and
/// network namespaces before reading what they hold, and its namespaces end with it.
pub fn read_inside(asks: Vec<Ask<'_>>) -> Vec<io::Result<Inside>> {
    if asks.is_empty() {
        return Vec::new();
    }
    let n = asks.len();
    let done = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("isolab-observe".into())
            .spawn_scoped(scope, move || {
                asks.into_iter()
                    .map(|mut ask| ask_one(&mut ask))
                    .collect::<Vec<_>>()
            })
            .map(|worker| worker.join())
    });
    match done {
        Ok(Ok(results)) => results,
        Ok(Err(_)) => (0..n)
            .map(|_| Err(io::Error::other("the observer thread panicked")))
            .collect(),
        Err(e) => {
            let kind = e.kind();
            (0..n).map(|_| Err(io::Error::from(kind))).collect()
        }
    }
}

/// One container's answers, on the thread of [`read_inside`].
fn ask_one(ask: &mut Ask<'_>) -> io::Result<Inside> {
    let hostname = match ask.uts {
        Some(ns) => {
            setns(ns, CloneFlags::CLONE_NEWUTS)?;
            Some(uts_here()?)
        }
        None => None,
    };
    let (interfaces, pending) = match ask.net {
        Some(ns) => {
            setns(ns, CloneFlags::CLONE_NEWNET)?;
            let mut list = interfaces_here()?;
            let pending = super::links::kinds_and_peers(&mut list, &mut ask.candidates, None);
            (Some(list), pending)
        }
        None => (None, Vec::new()),
    };
    Ok((hostname, interfaces, pending))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_count_mask_bits() {
        assert_eq!(prefix_len("255.0.0.0".parse().unwrap()), 8);
        assert_eq!(prefix_len("255.255.255.0".parse().unwrap()), 24);
        assert_eq!(prefix_len("ffff:ffff:ffff:ffff::".parse().unwrap()), 64);
    }

    #[test]
    fn our_own_view_reads() {
        let lo = interfaces_here().unwrap();
        let lo = lo.iter().find(|i| i.name == "lo").expect("lo");
        assert!(lo.index > 0 && lo.up);
        assert!(lo.addresses.contains(&"127.0.0.1/8".to_string()), "{lo:?}");
        assert!(!uts_here().unwrap().hostname.is_empty());
        assert!(!kernel_release().unwrap().is_empty());
    }
}
