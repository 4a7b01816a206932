//! A mount table (`/proc/PID/mountinfo`) summarised for the view: the root's layers, the
//! notable mounts, and what is masked or read-only under `/proc` and `/sys`.

use isolab_shared::protocol::view::{MountView, MountsView};

/// Mount points worth a line of their own.
const NOTABLE: [&str; 7] = [
    "/proc",
    "/dev",
    "/dev/pts",
    "/dev/shm",
    "/dev/mqueue",
    "/sys",
    "/sys/fs/cgroup",
];

/// One line of mountinfo: the fields the view uses.
struct Entry {
    /// Path within the filesystem that is mounted (`/null` for a bind of `/dev/null`).
    root: String,
    target: String,
    options: String,
    fstype: String,
    super_options: String,
}

/// `man 5 proc`: `ID PARENT MAJ:MIN ROOT TARGET OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPER`.
fn parse_line(line: &str) -> Option<Entry> {
    let (head, tail) = line.split_once(" - ")?;
    let mut h = head.split(' ');
    let root = unescape(h.nth(3)?);
    let target = unescape(h.next()?);
    let options = h.next()?.to_string();
    let mut t = tail.split(' ');
    let fstype = t.next()?.to_string();
    let super_options = t.nth(1).unwrap_or_default().to_string();
    Some(Entry {
        root,
        target,
        options,
        fstype,
        super_options,
    })
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn has_option(options: &str, name: &str) -> bool {
    options.split(',').any(|o| o == name)
}

fn super_option<'a>(options: &'a str, key: &str) -> Option<&'a str> {
    options
        .split(',')
        .find_map(|o| o.strip_prefix(key)?.strip_prefix('='))
}

fn strictly_under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// Summarise a mountinfo text. When a mount point is mounted over, the last line wins.
pub fn summarize(mountinfo: &str) -> MountsView {
    let entries: Vec<Entry> = mountinfo.lines().filter_map(parse_line).collect();
    let mut view = MountsView {
        count: entries.len() as u32,
        ..MountsView::default()
    };
    if let Some(root) = entries.iter().rev().find(|e| e.target == "/") {
        view.root_fstype = root.fstype.clone();
        if root.fstype == "overlay" {
            if let Some(lower) = super_option(&root.super_options, "lowerdir") {
                view.root_layers = lower.split(':').map(str::to_string).collect();
            }
            view.root_upper = super_option(&root.super_options, "upperdir").map(str::to_string);
        }
    }
    for want in NOTABLE {
        if let Some(e) = entries.iter().rev().find(|e| e.target == want) {
            view.notable.push(MountView {
                target: e.target.clone(),
                fstype: e.fstype.clone(),
                read_only: has_option(&e.options, "ro"),
            });
        }
    }
    for e in &entries {
        let inside = strictly_under(&e.target, "/proc") || strictly_under(&e.target, "/sys");
        if !inside || NOTABLE.contains(&e.target.as_str()) {
            continue;
        }
        // Hidden: /dev/null bound over a file, or an empty read-only tmpfs over a folder.
        let masked = e.root == "/null"
            || (e.fstype == "tmpfs" && has_option(&e.options, "ro") && e.root == "/");
        if masked {
            view.masked.push(e.target.clone());
        } else if has_option(&e.options, "ro") && e.fstype != "cgroup" && e.fstype != "cgroup2" {
            view.read_only.push(e.target.clone());
        }
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A busybox container's table, as read from the host (trimmed).
    const CONTAINER: &str = "\
68 45 0:39 / / rw,nodev,relatime - overlay overlay rw,lowerdir=/var/lib/isolab/images/busybox/rootfs,upperdir=/var/lib/isolab/containers/c15c/upper,workdir=/var/lib/isolab/containers/c15c/work,uuid=on
69 68 0:42 / /proc rw,nodev,relatime - proc proc rw
70 68 0:43 / /dev rw,nosuid,nodev - tmpfs tmpfs rw,size=65536k,mode=755
71 70 0:44 / /dev/pts rw,nosuid,noexec,relatime - devpts devpts rw,gid=5,mode=620,ptmxmode=666
74 68 0:46 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
75 74 0:47 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - tmpfs tmpfs ro,mode=755
76 75 0:32 /isolab/c15c /sys/fs/cgroup/memory ro,relatime - cgroup cgroup rw,memory
81 70 0:6 /null /dev/null rw,relatime - devtmpfs devtmpfs rw,mode=755
46 69 0:48 / /proc/acpi ro,relatime - tmpfs tmpfs ro
47 69 0:6 /null /proc/keys rw,relatime - devtmpfs devtmpfs rw,mode=755
49 74 0:49 / /sys/firmware ro,relatime - tmpfs tmpfs ro
54 69 0:42 /sys /proc/sys ro,nodev,relatime - proc proc rw
90 68 0:50 / /my\\040dir rw - tmpfs tmpfs rw
";

    #[test]
    fn a_container_table_is_summarised() {
        let v = summarize(CONTAINER);
        assert_eq!(v.count, 13);
        assert_eq!(v.root_fstype, "overlay");
        assert_eq!(v.root_layers, ["/var/lib/isolab/images/busybox/rootfs"]);
        assert_eq!(
            v.root_upper.as_deref(),
            Some("/var/lib/isolab/containers/c15c/upper")
        );
        let notable: Vec<(&str, bool)> = v
            .notable
            .iter()
            .map(|m| (m.target.as_str(), m.read_only))
            .collect();
        assert_eq!(
            notable,
            [
                ("/proc", false),
                ("/dev", false),
                ("/dev/pts", false),
                ("/sys", true),
                ("/sys/fs/cgroup", true)
            ]
        );
        assert_eq!(v.masked, ["/proc/acpi", "/proc/keys", "/sys/firmware"]);
        assert_eq!(v.read_only, ["/proc/sys"]);
    }

    #[test]
    fn escapes_and_layers() {
        assert_eq!(unescape("/my\\040dir"), "/my dir");
        assert_eq!(unescape("/a\\b"), "/a\\b");
        let v = summarize(
            "1 0 0:1 / / rw - overlay overlay rw,lowerdir=/l/top:/l/base,upperdir=/u,workdir=/w\n",
        );
        assert_eq!(v.root_layers, ["/l/top", "/l/base"]);
        let host = summarize("22 1 8:1 / / rw,relatime - ext4 /dev/vda1 rw\n");
        assert_eq!(
            (host.root_fstype.as_str(), host.root_layers.len()),
            ("ext4", 0)
        );
        assert_eq!(summarize("garbage\n").count, 0);
    }
}
