//! `diff`: a folder back to a tar, reproducibly, and round trips through `apply`.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use tar::EntryType;

use super::super::{diff, diff_shifted, IdShift, LayerError, OPAQUE_XATTR};
use super::apply::rich_entries;
use super::{diff_bytes, list_tar, require_root, snapshot, tempdir, unpack, xattr, Tar, MTIME};

/// The rich layer plus whiteouts, an opaque folder, xattrs and long names.
fn richer_layer() -> Vec<u8> {
    let mut tar = Tar::new();
    rich_entries(&mut tar);
    let long = format!("{}/{}", "l".repeat(99), "n".repeat(101));
    tar.file(".wh.removed", 0o644, b"")
        .file("etc/.wh.motd", 0o644, b"")
        .dir("var/", 0o755)
        .file("var/.wh..wh..opq", 0o644, b"")
        .file("var/fresh", 0o644, b"fresh")
        .pax(&[("SCHILY.xattr.user.note", b"kept")])
        .file("noted", 0o640, b"noted")
        .file(&long, 0o644, b"long")
        .symlink("long-target", &format!("/{}", "t".repeat(180)));
    tar.finish()
}

#[test]
fn apply_diff_apply_round_trips_exactly() {
    require_root!();
    let tmp = tempdir();
    let (a, _) = unpack(&richer_layer(), tmp.path(), "a");
    let first = diff_bytes(&a);
    let (b, _) = unpack(&first, tmp.path(), "b");
    let (sa, sb) = (snapshot(&a), snapshot(&b));
    assert_eq!(sa.keys().collect::<Vec<_>>(), sb.keys().collect::<Vec<_>>());
    for (path, node) in &sa {
        assert_eq!(node, &sb[path], "{path}");
    }
    assert_eq!(sa["/bin/ls"].link_of.as_deref(), Some("/bin/busybox"));
    assert_eq!(sa["/bin/su"].mode, 0o4755);
    assert!(sa["/var"]
        .xattrs
        .iter()
        .any(|(k, v)| k == OPAQUE_XATTR.as_bytes() && v == b"y"));
    assert!(sa["/noted"]
        .xattrs
        .iter()
        .any(|(k, v)| k == b"user.note" && v == b"kept"));
    // The second diff is byte for byte the first.
    assert_eq!(diff_bytes(&b), first);
}

#[test]
fn output_is_sorted_with_overlay_markers_converted() {
    require_root!();
    let tmp = tempdir();
    let (a, _) = unpack(&richer_layer(), tmp.path(), "a");
    let tar = diff_bytes(&a);
    let entries = list_tar(&tar);
    let names: Vec<_> = entries.iter().map(|(p, _)| p.as_str()).collect();
    let long = format!("{}/{}", "l".repeat(99), "n".repeat(101));
    let l99 = "l".repeat(99);
    let want = [
        "bin",
        "bin/busybox",
        "bin/ls",
        "bin/sh",
        "bin/su",
        "bin/wall",
        "dev",
        "dev/loop9",
        "dev/null",
        "empty",
        "etc",
        "etc/.wh.motd",
        "etc/mtab",
        "etc/passwd",
        "etc/shadow",
        "home",
        "home/u",
        "home/u/notes",
        l99.as_str(),
        long.as_str(),
        "long-target",
        "noted",
        ".wh.removed",
        "run",
        "run/initctl",
        "tmp",
        "var",
        "var/.wh..wh..opq",
        "var/fresh",
    ];
    // Names sorted bytewise, folders before their contents, a whiteout where its name sorts,
    // an opaque marker right after its folder.
    assert_eq!(names, want);
    let types: std::collections::BTreeMap<_, _> = entries.into_iter().collect();
    assert_eq!(types["bin/ls"], EntryType::Link);
    assert_eq!(types["etc/.wh.motd"], EntryType::Regular);
    assert_eq!(types["var/.wh..wh..opq"], EntryType::Regular);
    assert_eq!(types["dev/null"], EntryType::Char);
    assert_eq!(types["run/initctl"], EntryType::Fifo);
}

#[test]
fn headers_carry_no_names_atimes_or_overlay_xattrs() {
    require_root!();
    let tmp = tempdir();
    let dir = tmp.path().join("upper");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("f"), "x").unwrap();
    xattr::lset(&dir.join("f"), b"trusted.overlay.origin", b"\0\xfb\x21").unwrap();
    xattr::lset(&dir.join("f"), b"user.kept", b"1").unwrap();
    let out = diff_bytes(&dir);
    // Reading the file (its atime) or waiting changes nothing.
    let _ = fs::read(dir.join("f")).unwrap();
    assert_eq!(diff_bytes(&dir), out);
    let mut archive = tar::Archive::new(&out[..]);
    let mut seen = 0;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        seen += 1;
        let h = entry.header();
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        assert_eq!(h.groupname_bytes(), Some(&b""[..]));
        let gnu = h.as_gnu().expect("GNU headers");
        assert_eq!(
            (gnu.atime, gnu.ctime),
            ([0; 12], [0; 12]),
            "GNU atime and ctime left blank"
        );
        let keys: Vec<String> = entry
            .pax_extensions()
            .unwrap()
            .map(|records| {
                records
                    .map(|r| r.unwrap().key().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(keys, ["SCHILY.xattr.user.kept"]);
    }
    assert_eq!(seen, 1);
}

#[test]
fn hard_links_devices_and_stats() {
    require_root!();
    let tmp = tempdir();
    let dir = tmp.path().join("upper");
    fs::create_dir_all(dir.join("d")).unwrap();
    fs::write(dir.join("d/data"), "12345").unwrap();
    fs::hard_link(dir.join("d/data"), dir.join("a-link")).unwrap();
    mknod(
        &dir.join("tty"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o620),
        makedev(5, 0),
    )
    .unwrap();
    // A whiteout: written as `.wh.gone`, not as a device.
    mknod(
        &dir.join("gone"),
        SFlag::S_IFCHR,
        Mode::empty(),
        makedev(0, 0),
    )
    .unwrap();
    fs::set_permissions(dir.join("tty"), fs::Permissions::from_mode(0o620)).unwrap();
    let mut out = Vec::new();
    let stats = diff(&dir, &mut out).unwrap();
    let entries = list_tar(&out);
    assert_eq!(
        entries,
        [
            ("a-link".to_string(), EntryType::Regular),
            ("d".to_string(), EntryType::Directory),
            ("d/data".to_string(), EntryType::Link),
            (".wh.gone".to_string(), EntryType::Regular),
            ("tty".to_string(), EntryType::Char),
        ]
    );
    assert_eq!((stats.entries, stats.bytes), (5, 5));
    let (b, _) = unpack(&out, tmp.path(), "b");
    let tree = snapshot(&b);
    assert_eq!(tree["/d/data"].link_of.as_deref(), Some("/a-link"));
    assert_eq!(
        (tree["/tty"].rdev, tree["/tty"].mode),
        (makedev(5, 0), 0o620)
    );
    assert_eq!(tree["/gone"].kind, "char");
    assert_eq!(tree["/gone"].rdev, 0);
    assert!(tree.values().all(|n| n.mtime > MTIME as i64));
}

#[test]
fn redirects_and_metacopy_are_refused() {
    require_root!();
    for (name, what) in [
        (&b"trusted.overlay.redirect"[..], "redirect_dir"),
        (b"trusted.overlay.metacopy", "metacopy"),
    ] {
        let tmp = tempdir();
        let dir = tmp.path().join("upper");
        fs::create_dir_all(dir.join("moved")).unwrap();
        xattr::lset(&dir.join("moved"), name, b"/old").unwrap();
        let err = diff(&dir, Vec::new()).unwrap_err();
        assert!(matches!(err, LayerError::OverlayFeature { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(what) && msg.contains("moved"), "{msg}");
    }
}

#[test]
fn owners_of_a_user_namespace_s_upper_folder_are_shifted_back() {
    require_root!();
    let tmp = tempdir();
    let dir = tmp.path().join("upper");
    fs::create_dir(&dir).unwrap();
    let base = 1_000_000_000;
    fs::write(dir.join("root-file"), "r").unwrap();
    fs::write(dir.join("user-file"), "u").unwrap();
    fs::write(dir.join("stranger"), "s").unwrap();
    let own = |name: &str, uid: u32, gid: u32| {
        std::os::unix::fs::lchown(dir.join(name), Some(uid), Some(gid)).unwrap()
    };
    own("root-file", base, base);
    own("user-file", base + 1000, base + 100);
    own("stranger", 5, 6); // outside the range: kept as it is
    std::os::unix::fs::lchown(&dir, Some(base), Some(base)).unwrap();
    let shift = IdShift::of_upper(&dir).unwrap();
    assert_eq!(
        shift,
        IdShift {
            uid: base,
            gid: base
        }
    );
    let mut out = Vec::new();
    diff_shifted(&dir, &mut out, shift).unwrap();
    let mut owners = Vec::new();
    for entry in tar::Archive::new(&out[..]).entries().unwrap() {
        let entry = entry.unwrap();
        let h = entry.header();
        let path = entry.path().unwrap().display().to_string();
        owners.push((path, h.uid().unwrap(), h.gid().unwrap()));
    }
    assert_eq!(
        owners,
        [
            ("root-file".to_string(), 0, 0),
            ("stranger".to_string(), 5, 6),
            ("user-file".to_string(), 1000, 100)
        ]
    );
    // Without a user namespace (root-owned upper) nothing moves.
    assert_eq!(IdShift::of_upper(tmp.path()).unwrap(), IdShift::default());
}
