//! `changes`: A/C/D as `docker diff` reports them, with lookups through several lowers.

use std::fs;

use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use super::super::{changes, ChangeKind, OPAQUE_XATTR};
use super::{require_root, tempdir, unpack, xattr, Tar};

fn whiteout(path: &std::path::Path) {
    mknod(path, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)).unwrap();
}

#[test]
fn added_changed_deleted_like_docker_diff() {
    require_root!();
    let tmp = tempdir();
    let (l1, _) = unpack(
        &Tar::new()
            .file("etc/hostname", 0o644, b"old")
            .file("etc/passwd", 0o644, b"root")
            .file("usr/bin/x", 0o755, b"x")
            .finish(),
        tmp.path(),
        "l1",
    );
    // What an upper looks like after `echo > /etc/foo; echo > /etc/hostname; rm /usr/bin/x;
    // mkdir -p /srv/www`.
    let upper = tmp.path().join("upper");
    fs::create_dir_all(upper.join("etc")).unwrap();
    fs::write(upper.join("etc/foo"), "").unwrap();
    fs::write(upper.join("etc/hostname"), "new").unwrap();
    fs::create_dir_all(upper.join("usr/bin")).unwrap();
    whiteout(&upper.join("usr/bin/x"));
    fs::create_dir_all(upper.join("srv/www")).unwrap();
    let list: Vec<String> = changes(&upper, &[l1])
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        list,
        [
            "C /etc",
            "A /etc/foo",
            "C /etc/hostname",
            "A /srv",
            "A /srv/www",
            "C /usr",
            "C /usr/bin",
            "D /usr/bin/x",
        ]
    );
}

#[test]
fn lookups_stop_at_whiteouts_opaque_folders_and_files() {
    require_root!();
    let tmp = tempdir();
    let (l1, _) = unpack(
        &Tar::new()
            .file("gone", 0o644, b"")
            .file("opq/old", 0o644, b"")
            .file("plain/f", 0o644, b"")
            .file("fdir/child", 0o644, b"")
            .file("deep/a/b", 0o644, b"")
            .finish(),
        tmp.path(),
        "l1",
    );
    let (l2, _) = unpack(
        &Tar::new()
            .file(".wh.gone", 0o644, b"")
            .file("opq/.wh..wh..opq", 0o644, b"")
            .file("fdir", 0o644, b"now a file")
            .file("deep/.wh.a", 0o644, b"")
            .finish(),
        tmp.path(),
        "l2",
    );
    let upper = tmp.path().join("upper");
    for dir in ["opq", "plain", "fdir", "deep/a"] {
        fs::create_dir_all(upper.join(dir)).unwrap();
    }
    xattr::lset(&upper.join("fdir"), OPAQUE_XATTR.as_bytes(), b"y").unwrap();
    xattr::lset(&upper.join("deep/a"), OPAQUE_XATTR.as_bytes(), b"y").unwrap();
    for file in ["gone", "opq/old", "plain/f", "fdir/child", "deep/a/b"] {
        fs::write(upper.join(file), "").unwrap();
    }
    let list = changes(&upper, &[l2, l1]).unwrap();
    let got: Vec<(char, &str)> = list
        .iter()
        .map(|c| (c.kind.letter(), c.path.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ('C', "/deep"),
            ('A', "/deep/a"),     // whited out in l2
            ('A', "/deep/a/b"),   // under a whiteout
            ('C', "/fdir"),       // a file in l2: the image had a /fdir
            ('A', "/fdir/child"), // l2's file hides l1's folder
            ('A', "/gone"),       // whited out in l2
            ('C', "/opq"),
            ('A', "/opq/old"), // hidden by l2's opaque folder
            ('C', "/plain"),
            ('C', "/plain/f"),
        ]
    );
    assert!(list.iter().all(|c| c.kind != ChangeKind::Deleted));
}
