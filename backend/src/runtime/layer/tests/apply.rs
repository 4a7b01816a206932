//! `apply`: what each kind of entry becomes on disk.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use tar::EntryType;

use super::super::{apply, LayerError, OPAQUE_XATTR};
use super::{gzip, message, require_root, snapshot, tempdir, unpack, xattr, Tar, MTIME};

/// Every entry kind, with modes (setuid included), owners and mtimes.
pub(super) fn rich_layer() -> Vec<u8> {
    rich_entries(&mut Tar::new()).finish()
}

pub(super) fn rich_entries(tar: &mut Tar) -> &mut Tar {
    tar.dir("bin/", 0o755)
        .file("bin/busybox", 0o755, b"#!busybox\n")
        .hard_link("bin/ls", "bin/busybox")
        .symlink("bin/sh", "busybox")
        .file("bin/su", 0o4755, b"su")
        .file("bin/wall", 0o2755, b"wall")
        .dir("etc/", 0o755)
        .file("etc/passwd", 0o644, b"root:x:0:0::/root:/bin/sh\n")
        .file("etc/shadow", 0o640, b"root:*:1::::::\n")
        .symlink("etc/mtab", "/proc/self/mounts")
        .dir_owned("home/u/", 0o700, 1000, 1001)
        .file_owned("home/u/notes", 0o600, 1000, 1001, b"hello")
        .dir("tmp/", 0o1777)
        .dir("dev/", 0o755)
        .node("dev/null", EntryType::Char, 1, 3)
        .node("dev/loop9", EntryType::Block, 7, 9)
        .node("run/initctl", EntryType::Fifo, 0, 0)
        .file("empty", 0o444, b"")
}

#[test]
fn unpacks_every_entry_kind_with_its_metadata() {
    require_root!();
    let tmp = tempdir();
    let tar = rich_layer();
    let (dest, stats) = unpack(&tar, tmp.path(), "layer");
    assert_eq!(stats.entries, 18);
    let data_len = 10 + 2 + 4 + 26 + 15 + 5;
    assert_eq!(stats.bytes, data_len);

    let tree = snapshot(&dest);
    let kinds: Vec<_> = tree.iter().map(|(p, n)| (p.as_str(), n.kind)).collect();
    assert_eq!(
        kinds,
        [
            ("/bin", "dir"),
            ("/bin/busybox", "file"),
            ("/bin/ls", "file"),
            ("/bin/sh", "symlink"),
            ("/bin/su", "file"),
            ("/bin/wall", "file"),
            ("/dev", "dir"),
            ("/dev/loop9", "block"),
            ("/dev/null", "char"),
            ("/empty", "file"),
            ("/etc", "dir"),
            ("/etc/mtab", "symlink"),
            ("/etc/passwd", "file"),
            ("/etc/shadow", "file"),
            ("/home", "dir"),
            ("/home/u", "dir"),
            ("/home/u/notes", "file"),
            ("/run", "dir"),
            ("/run/initctl", "fifo"),
            ("/tmp", "dir"),
        ]
    );
    assert_eq!(tree["/bin/su"].mode, 0o4755);
    assert_eq!(tree["/bin/wall"].mode, 0o2755);
    assert_eq!(tree["/tmp"].mode, 0o1777);
    assert_eq!(tree["/etc/shadow"].mode, 0o640);
    assert_eq!(tree["/etc/passwd"].data, b"root:x:0:0::/root:/bin/sh\n");
    assert_eq!(tree["/bin/sh"].data, b"busybox");
    assert_eq!(tree["/etc/mtab"].data, b"/proc/self/mounts");
    assert_eq!(tree["/bin/ls"].link_of.as_deref(), Some("/bin/busybox"));
    let home = &tree["/home/u"];
    assert_eq!((home.uid, home.gid, home.mode), (1000, 1001, 0o700));
    let notes = &tree["/home/u/notes"];
    assert_eq!((notes.uid, notes.gid, notes.mode), (1000, 1001, 0o600));
    assert_eq!(tree["/dev/null"].rdev, nix::sys::stat::makedev(1, 3));
    assert_eq!(tree["/dev/loop9"].rdev, nix::sys::stat::makedev(7, 9));
    // Every listed entry keeps its mtime, folders too (written into after their header); the
    // symlinks' own mtime is set without following them.
    for (path, node) in &tree {
        if path != "/run" && path != "/home" {
            assert_eq!(node.mtime, MTIME as i64, "{path}");
        }
    }
    // `run/` and `home/` are not listed: made as docker makes missing parents.
    assert_eq!((tree["/run"].mode, tree["/home"].mode), (0o755, 0o755));
}

#[test]
fn gzip_input_is_detected() {
    require_root!();
    let tmp = tempdir();
    let tar = rich_layer();
    let (plain, plain_stats) = unpack(&tar, tmp.path(), "plain");
    let (gz, gz_stats) = unpack(&gzip(&tar), tmp.path(), "gz");
    assert_eq!(plain_stats, gz_stats);
    // Missing parents (`run/`, `home/`) are made with the time of the unpacking, which may
    // differ by a second between the two.
    let stamped = |dir| {
        let mut tree = snapshot(dir);
        for p in ["/run", "/home"] {
            tree.get_mut(p).expect("made").mtime = 0;
        }
        tree
    };
    assert_eq!(stamped(&plain), stamped(&gz));
}

#[test]
fn long_names_and_targets_gnu_and_pax() {
    require_root!();
    let tmp = tempdir();
    let deep = format!("{}/{}", "d".repeat(120), "f".repeat(150));
    let target = format!("/{}", "t".repeat(200));
    let pax_name = format!("{}/pax-file", "p".repeat(110));
    let mut tar = Tar::new();
    tar.file(&deep, 0o644, b"gnu long name")
        .symlink("long-link", &target)
        .hard_link("hard", &deep)
        .pax(&[("path", pax_name.as_bytes())])
        .file("short-name-in-header", 0o600, b"pax long name");
    let (dest, _) = unpack(&tar.finish(), tmp.path(), "layer");
    assert_eq!(fs::read(dest.join(&deep)).unwrap(), b"gnu long name");
    assert_eq!(
        fs::read_link(dest.join("long-link")).unwrap().to_str(),
        Some(target.as_str())
    );
    assert_eq!(
        fs::metadata(dest.join("hard")).unwrap().ino(),
        fs::metadata(dest.join(&deep)).unwrap().ino()
    );
    assert_eq!(fs::read(dest.join(&pax_name)).unwrap(), b"pax long name");
    assert!(!dest.join("short-name-in-header").exists());
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    require_root!();
    let tmp = tempdir();
    let tar = Tar::new()
        .dir("etc/", 0o755)
        .file("etc/.wh.motd", 0o644, b"")
        .file(".wh.gone", 0o644, b"")
        .file("var/lib/.wh..wh..opq", 0o644, b"")
        .file("opt/.wh..wh..opq", 0o644, b"")
        .file("opt/kept", 0o644, b"new")
        .file("x/.wh..wh.plnk", 0o644, b"")
        .finish();
    let (dest, stats) = unpack(&tar, tmp.path(), "layer");
    assert_eq!(stats.entries, 7);
    for wh in ["etc/motd", "gone"] {
        let meta = fs::symlink_metadata(dest.join(wh)).unwrap();
        assert!(meta.file_type().is_char_device(), "{wh}");
        assert_eq!(meta.rdev(), 0, "{wh}");
    }
    for opaque in ["var/lib", "opt"] {
        let value = xattr::get(&dest.join(opaque), OPAQUE_XATTR.as_bytes()).unwrap();
        assert_eq!(value.as_deref(), Some(&b"y"[..]), "{opaque}");
    }
    assert_eq!(fs::read(dest.join("opt/kept")).unwrap(), b"new");
    assert!(!dest.join("etc/.wh.motd").exists());
    assert!(!dest.join("var/lib/.wh..wh..opq").exists());
    // aufs's own metadata is skipped (before its folder is even made).
    assert!(!dest.join("x").exists());
    // Folders made for a marker but not listed themselves are 0755, as docker makes them.
    assert_eq!(
        fs::metadata(dest.join("var/lib")).unwrap().mode() & 0o7777,
        0o755
    );
}

#[test]
fn later_entries_replace_earlier_ones() {
    require_root!();
    let tmp = tempdir();
    let tar = Tar::new()
        .file("a", 0o644, b"first")
        .file("a", 0o600, b"second")
        // A file replaces a folder and everything in it, and a folder a file.
        .file("b/inner", 0o644, b"x")
        .file("b", 0o644, b"now a file")
        .file("c", 0o644, b"was a file")
        .dir("c/", 0o750)
        // A folder over a folder merges, and takes the later metadata.
        .dir_owned("d/", 0o755, 0, 0)
        .file("d/one", 0o644, b"1")
        .dir_owned("d/", 0o700, 7, 8)
        .file("d/two", 0o644, b"2")
        // Replacing a hard-linked file leaves its other name alone.
        .file("orig", 0o644, b"shared")
        .hard_link("twin", "orig")
        .file("orig", 0o644, b"replaced")
        // A file replaces a symlink (never writes through it).
        .symlink("s", "orig")
        .file("s", 0o644, b"not through")
        .finish();
    let (dest, _) = unpack(&tar, tmp.path(), "layer");
    let tree = snapshot(&dest);
    assert_eq!(
        (tree["/a"].data.as_slice(), tree["/a"].mode),
        (&b"second"[..], 0o600)
    );
    assert_eq!(tree["/b"].kind, "file");
    assert!(!tree.contains_key("/b/inner"));
    assert_eq!((tree["/c"].kind, tree["/c"].mode), ("dir", 0o750));
    let d = &tree["/d"];
    assert_eq!((d.mode, d.uid, d.gid), (0o700, 7, 8));
    assert!(tree.contains_key("/d/one") && tree.contains_key("/d/two"));
    assert_eq!(tree["/orig"].data, b"replaced");
    assert_eq!(tree["/twin"].data, b"shared");
    assert_eq!(
        (tree["/s"].kind, tree["/s"].data.as_slice()),
        ("file", &b"not through"[..])
    );
    assert_eq!(tree["/orig"].data, b"replaced");
}

#[test]
fn paths_are_cleaned_as_docker_does() {
    require_root!();
    let tmp = tempdir();
    let tar = Tar::new()
        .raw(b"/abs/file", EntryType::Regular, b"", b"absolute")
        .raw(b"./dot/./file", EntryType::Regular, b"", b"dots")
        .raw(b"up/../down", EntryType::Regular, b"", b"down")
        .raw(b"link", EntryType::Link, b"/abs/file", b"")
        .raw(b"./", EntryType::Directory, b"", b"")
        .finish();
    let (dest, _) = unpack(&tar, tmp.path(), "layer");
    assert_eq!(fs::read(dest.join("abs/file")).unwrap(), b"absolute");
    assert_eq!(fs::read(dest.join("dot/file")).unwrap(), b"dots");
    assert_eq!(fs::read(dest.join("down")).unwrap(), b"down");
    assert_eq!(fs::read(dest.join("link")).unwrap(), b"absolute");
    // `./` gave the root its mode and mtime.
    let root = fs::metadata(&dest).unwrap();
    assert_eq!((root.mode() & 0o7777, root.mtime()), (0o644, MTIME as i64));
}

#[test]
fn pax_xattrs_are_kept_but_never_overlay_ones() {
    require_root!();
    let tmp = tempdir();
    let tar = Tar::new()
        .pax(&[
            ("SCHILY.xattr.user.comment", b"hi"),
            (
                "SCHILY.xattr.security.capability",
                b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
            ),
            ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
            ("mtime", b"1600000000.25"),
        ])
        .file("ping", 0o755, b"elf")
        .pax(&[("SCHILY.xattr.trusted.overlay.opaque", b"y")])
        .dir("forged/", 0o755)
        .finish();
    let (dest, _) = unpack(&tar, tmp.path(), "layer");
    let ping = dest.join("ping");
    assert_eq!(
        xattr::get(&ping, b"user.comment").unwrap().as_deref(),
        Some(&b"hi"[..])
    );
    assert!(xattr::get(&ping, b"security.capability").unwrap().is_some());
    assert_eq!(
        xattr::get(&ping, b"trusted.overlay.redirect").unwrap(),
        None
    );
    let meta = fs::metadata(&ping).unwrap();
    assert_eq!(
        (meta.mtime(), meta.mtime_nsec()),
        (1_600_000_000, 250_000_000)
    );
    assert_eq!(
        xattr::get(&dest.join("forged"), OPAQUE_XATTR.as_bytes()).unwrap(),
        None
    );
}

#[test]
fn truncated_or_corrupt_streams_are_refused() {
    require_root!();
    let tmp = tempdir();
    let tar = Tar::new()
        .file("big", 0o644, &[7u8; 5000])
        .file("after", 0o644, b"x")
        .finish();
    // Cut inside the first file's data.
    let dest = tmp.path().join("cut");
    fs::create_dir(&dest).unwrap();
    let (err, msg) = message(apply(&tar[..2048], &dest));
    assert!(
        matches!(err, LayerError::Entry { .. } | LayerError::Read(_)),
        "{msg}"
    );
    // A gzip stream cut short.
    let gz = gzip(&tar);
    let dest = tmp.path().join("gz");
    fs::create_dir(&dest).unwrap();
    let (err, msg) = message(apply(&gz[..gz.len() - 10], &dest));
    assert!(
        matches!(err, LayerError::Read(_) | LayerError::Entry { .. }),
        "{msg}"
    );
    // A header whose checksum is wrong.
    let mut bad = tar.clone();
    bad[0] ^= 0x20;
    let dest = tmp.path().join("cksum");
    fs::create_dir(&dest).unwrap();
    let (err, msg) = message(apply(&bad[..], &dest));
    assert!(matches!(err, LayerError::Read(_)), "{msg}");
    assert!(msg.contains("checksum"), "{msg}");
}

#[test]
fn unsupported_entry_types_are_named() {
    require_root!();
    let tmp = tempdir();
    let tar = Tar::new()
        .raw(b"weird", EntryType::new(b'V'), b"", b"")
        .finish();
    let dest = tmp.path().join("layer");
    fs::create_dir(&dest).unwrap();
    let (err, msg) = message(apply(&tar[..], &dest));
    assert!(matches!(err, LayerError::Invalid { .. }), "{msg}");
    assert!(msg.contains("\"weird\""), "{msg}");
}
