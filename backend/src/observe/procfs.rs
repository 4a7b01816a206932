//! What `/proc` tells about a process from the host: its namespaces, its status line by line,
//! its command line, its user namespace's id maps.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use isolab_shared::protocol::view::{IdMapsView, IdRange};
use isolab_shared::spec::NsKind;

use super::kept::{utf8, Ends, Kept};

/// The inode of a process's namespace of `kind`: what `readlink /proc/PID/ns/KIND` says
/// between the brackets (`uts:[4026531838]`). `pid` may be `"self"`.
pub fn ns_inode(pid: &str, kind: NsKind) -> io::Result<u64> {
    let link = fs::read_link(format!("/proc/{pid}/ns/{}", kind.proc_name()))?;
    parse_ns_link(&link.to_string_lossy())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{link:?}")))
}

fn parse_ns_link(link: &str) -> Option<u64> {
    let (_, rest) = link.split_once(":[")?;
    rest.strip_suffix(']')?.parse().ok()
}

/// A process's namespaces, in [`NsKind::ALL`] order (0 where the kernel has no such kind).
#[cfg(test)]
pub fn ns_inodes(pid: &str) -> io::Result<[u64; 8]> {
    ns_inodes_with(|kind| ns_inode(pid, kind))
}

/// [`ns_inodes`] through `/proc/PID/ns` kept open: each link is then a step from there rather
/// than a walk from `/`. A kept folder of a process that is gone fails (even when its pid has
/// been given to another since): it is then opened again.
pub fn ns_inodes_kept(kept: &mut Kept, pid: &str) -> io::Result<[u64; 8]> {
    in_ns_dir(kept, pid, |dir| {
        ns_inodes_with(|kind| ns_inode_at(dir, kind))
    })
}

/// [`ns_inode`] through `/proc/PID/ns` kept open (see [`ns_inodes_kept`]).
pub fn ns_inode_kept(kept: &mut Kept, pid: &str, kind: NsKind) -> io::Result<u64> {
    in_ns_dir(kept, pid, |dir| ns_inode_at(dir, kind))
}

fn in_ns_dir<T>(
    kept: &mut Kept,
    pid: &str,
    read: impl Fn(&fs::File) -> io::Result<T>,
) -> io::Result<T> {
    let path = PathBuf::from(format!("/proc/{pid}/ns"));
    if let Ok(found) = read(&*kept.handle(&path, 0)?) {
        return Ok(found);
    }
    kept.forget(&path);
    read(&*kept.handle(&path, 0)?)
}

fn ns_inode_at(dir: &fs::File, kind: NsKind) -> io::Result<u64> {
    let link = nix::fcntl::readlinkat(dir, kind.proc_name())?;
    parse_ns_link(&link.to_string_lossy())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{link:?}")))
}

fn ns_inodes_with(mut inode: impl FnMut(NsKind) -> io::Result<u64>) -> io::Result<[u64; 8]> {
    let mut out = [0; 8];
    for (slot, kind) in out.iter_mut().zip(NsKind::ALL) {
        match inode(kind) {
            Ok(ino) => *slot = ino,
            // A kernel without time namespaces has no ns/time.
            Err(e) if e.kind() == io::ErrorKind::NotFound && kind == NsKind::Time => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The lines of `/proc/PID/status` the view uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub name: String,
    pub ppid: i32,
    /// Real uid, as the host numbers it.
    pub uid: u32,
    /// The pid in each pid namespace it is in, outermost first.
    pub nspid: Vec<i32>,
}

/// A process's status lines and its command line (joined by spaces, at most [`MAX_CMD`]
/// bytes; `[name]` when empty: a kernel thread, or a zombie), through files kept open.
pub fn status_and_cmdline(kept: &mut Kept, pid: i32) -> io::Result<(Status, String)> {
    let path = PathBuf::from(format!("/proc/{pid}/status"));
    let text = kept
        .read_again(&path, 0, Ends::Short)?
        .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
    let st = parse_status(&utf8(text)?)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("/proc/{pid}/status")))?;
    let raw = kept
        .read_again(Path::new(&format!("/proc/{pid}/cmdline")), 0, Ends::Short)
        .ok()
        .flatten()
        .unwrap_or_default();
    let cmd = format_cmdline(&raw, &st.name);
    Ok((st, cmd))
}

fn parse_status(text: &str) -> Option<Status> {
    let mut st = Status {
        name: String::new(),
        ppid: 0,
        uid: 0,
        nspid: Vec::new(),
    };
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Name" => st.name = value.to_string(),
            "PPid" => st.ppid = value.parse().ok()?,
            "Uid" => st.uid = value.split_whitespace().next()?.parse().ok()?,
            "NSpid" => {
                st.nspid = value
                    .split_whitespace()
                    .map(|p| p.parse())
                    .collect::<Result<_, _>>()
                    .ok()?
            }
            _ => {}
        }
    }
    (!st.nspid.is_empty()).then_some(st)
}

/// Longest command line the view carries.
pub const MAX_CMD: usize = 200;

fn format_cmdline(raw: &[u8], name: &str) -> String {
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if args.is_empty() {
        return format!("[{name}]");
    }
    let mut cmd = args.join(" ");
    if cmd.len() > MAX_CMD {
        let mut end = MAX_CMD;
        while !cmd.is_char_boundary(end) {
            end -= 1;
        }
        cmd.truncate(end);
        cmd.push('…');
    }
    cmd
}

/// Every pid in `/proc` (processes, not threads).
pub fn all_pids() -> io::Result<Vec<i32>> {
    let mut pids: Vec<i32> = fs::read_dir("/proc")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// A process's user namespace's uid and gid maps.
pub fn id_maps(pid: &str) -> io::Result<IdMapsView> {
    Ok(IdMapsView {
        uid: parse_id_map(&fs::read_to_string(format!("/proc/{pid}/uid_map"))?),
        gid: parse_id_map(&fs::read_to_string(format!("/proc/{pid}/gid_map"))?),
    })
}

/// [`id_maps`] through files kept open. A map file shows the user namespace the process was in
/// when it was opened: `user_ns` (that namespace's inode) reopens them when it changes.
pub fn id_maps_kept(kept: &mut Kept, pid: i32, user_ns: u64) -> io::Result<IdMapsView> {
    let mut map = |name: &str| -> io::Result<Vec<IdRange>> {
        let path = PathBuf::from(format!("/proc/{pid}/{name}"));
        let text = kept
            .read_again(&path, user_ns, Ends::Empty)?
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(parse_id_map(&utf8(text)?))
    };
    Ok(IdMapsView {
        uid: map("uid_map")?,
        gid: map("gid_map")?,
    })
}

fn parse_id_map(text: &str) -> Vec<IdRange> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace().map(|v| v.parse::<u32>());
            Some(IdRange {
                inside: f.next()?.ok()?,
                outside: f.next()?.ok()?,
                count: f.next()?.ok()?,
            })
        })
        .collect()
}

/// The id a host id has inside a user namespace with these maps; the overflow id (65534,
/// `nobody`) when it is not mapped, as the kernel shows it.
pub fn id_inside(ranges: &[IdRange], host: u32) -> u32 {
    ranges
        .iter()
        .find(|r| host >= r.outside && host - r.outside < r.count)
        .map_or(65534, |r| r.inside + (host - r.outside))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ns_links_parse() {
        assert_eq!(parse_ns_link("uts:[4026531838]"), Some(4026531838));
        assert_eq!(
            parse_ns_link("pid_for_children:[4026531836]"),
            Some(4026531836)
        );
        assert_eq!(parse_ns_link("uts:4026531838"), None);
    }

    #[test]
    fn status_lines_parse() {
        let text = "Name:\tsh\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nNgid:\t0\n\
                    Pid:\t4242\nPPid:\t4240\nTracerPid:\t0\nUid:\t100000\t100000\t100000\t100000\n\
                    Gid:\t100000\t100000\t100000\t100000\nNSpid:\t4242\t1\nNSpgid:\t4242\t1\n";
        let st = parse_status(text).unwrap();
        assert_eq!(
            st,
            Status {
                name: "sh".into(),
                ppid: 4240,
                uid: 100000,
                nspid: vec![4242, 1],
            }
        );
        assert_eq!(parse_status("Name:\tx\n"), None, "no NSpid: not a status");
    }

    #[test]
    fn command_lines_are_joined_and_bounded() {
        assert_eq!(format_cmdline(b"sh\0-c\0echo hi\0", "sh"), "sh -c echo hi");
        assert_eq!(format_cmdline(b"", "kworker/0:1"), "[kworker/0:1]");
        let long = vec![b'x'; 500];
        let cmd = format_cmdline(&long, "x");
        assert_eq!(cmd.len(), MAX_CMD + '…'.len_utf8());
    }

    #[test]
    fn ids_map_inside() {
        let map = parse_id_map("         0     100000      65536\n");
        assert_eq!(
            map,
            vec![IdRange {
                inside: 0,
                outside: 100000,
                count: 65536
            }]
        );
        assert_eq!(id_inside(&map, 100000), 0);
        assert_eq!(id_inside(&map, 101000), 1000);
        assert_eq!(id_inside(&map, 0), 65534, "host root is nobody inside");
        let identity = parse_id_map("0 0 4294967295\n");
        assert_eq!(id_inside(&identity, 1000), 1000);
    }

    #[test]
    fn our_own_namespaces_read() {
        let ours = ns_inodes("self").unwrap();
        assert!(ours[..7].iter().all(|&i| i > 0), "{ours:?}");
        assert_eq!(ns_inode("self", NsKind::Uts).unwrap(), ours[1]);
        let mut kept = Kept::default();
        assert_eq!(ns_inodes_kept(&mut kept, "self").unwrap(), ours);
        assert_eq!(
            ns_inode_kept(&mut kept, "self", NsKind::Pid).unwrap(),
            ours[3]
        );
        let mut kept = Kept::default();
        let (me, cmd) = status_and_cmdline(&mut kept, std::process::id() as i32).unwrap();
        assert_eq!(me.nspid.last().copied(), Some(std::process::id() as i32));
        assert!(!cmd.is_empty());
        // Read again through the kept files.
        assert_eq!(
            status_and_cmdline(&mut kept, std::process::id() as i32)
                .unwrap()
                .1,
            cmd
        );
    }
}
