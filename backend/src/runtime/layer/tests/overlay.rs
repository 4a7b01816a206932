//! Real overlay mounts: unpacked layers used as lowers, and a real upper written back out.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use tar::EntryType;

use super::super::{changes, Change, ChangeKind};
use super::{diff_bytes, list_tar, require_root, snapshot, tempdir, unpack, Mounted, Tar};

/// The base layer both tests start from.
fn base_layer() -> Vec<u8> {
    Tar::new()
        .file("a", 0o644, b"a1")
        .file("b", 0o644, b"b1")
        .dir("d/", 0o755)
        .file("d/x", 0o644, b"x")
        .file("d/y", 0o644, b"y")
        .dir("keep/", 0o755)
        .file("keep/k", 0o644, b"k")
        .finish()
}

#[test]
fn whiteouts_of_a_later_layer_hide_lower_files() {
    require_root!();
    let tmp = tempdir();
    let (l1, _) = unpack(&base_layer(), tmp.path(), "l1");
    let l2_tar = Tar::new()
        .file(".wh.b", 0o644, b"")
        .dir("d/", 0o755)
        .file("d/.wh..wh..opq", 0o644, b"")
        .file("d/z", 0o644, b"z")
        .file("keep/.wh.k", 0o644, b"")
        .file("keep/k2", 0o644, b"k2")
        .finish();
    let (l2, _) = unpack(&l2_tar, tmp.path(), "l2");
    let merged = tmp.path().join("merged");
    fs::create_dir(&merged).unwrap();
    let _mount = Mounted::overlay(&merged, &[&l2, &l1], None);
    let mut top: Vec<_> = fs::read_dir(&merged)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    top.sort();
    assert_eq!(top, ["a", "d", "keep"]);
    assert!(!merged.join("b").exists());
    let d: Vec<_> = fs::read_dir(merged.join("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(d, ["z"], "the opaque folder hides d/x and d/y");
    let keep: Vec<_> = fs::read_dir(merged.join("keep"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(keep, ["k2"]);
    assert_eq!(fs::read(merged.join("a")).unwrap(), b"a1");
}

#[test]
fn a_real_upper_diffs_to_whiteouts_and_replays_identically() {
    require_root!();
    let tmp = tempdir();
    let (l1, _) = unpack(&base_layer(), tmp.path(), "l1");
    let [upper, work, merged, replay] = ["upper", "work", "merged", "replay"].map(|n| {
        let p = tmp.path().join(n);
        fs::create_dir(&p).unwrap();
        p
    });
    let mount = Mounted::overlay(&merged, &[&l1], Some((&upper, &work)));
    fs::write(merged.join("new"), "new").unwrap();
    fs::hard_link(merged.join("new"), merged.join("new2")).unwrap();
    fs::write(merged.join("a"), "a2").unwrap();
    fs::remove_file(merged.join("b")).unwrap();
    fs::remove_dir_all(merged.join("d")).unwrap();
    fs::create_dir(merged.join("d")).unwrap();
    fs::write(merged.join("d/z"), "z").unwrap();
    fs::set_permissions(merged.join("keep"), fs::Permissions::from_mode(0o700)).unwrap();
    let seen = snapshot(&merged);
    mount.unmount();

    let tar = diff_bytes(&upper);
    let entries = list_tar(&tar);
    let want = [
        ("a", EntryType::Regular),
        (".wh.b", EntryType::Regular),
        ("d", EntryType::Directory),
        ("d/.wh..wh..opq", EntryType::Regular),
        ("d/z", EntryType::Regular),
        ("keep", EntryType::Directory),
        ("new", EntryType::Regular),
        ("new2", EntryType::Link),
    ];
    let got: Vec<_> = entries.iter().map(|(p, t)| (p.as_str(), *t)).collect();
    assert_eq!(got, want);

    // `docker diff` of the same container.
    let list = changes(&upper, std::slice::from_ref(&l1)).unwrap();
    let shown: Vec<String> = list.iter().map(Change::to_string).collect();
    assert_eq!(
        shown,
        ["C /a", "D /b", "C /d", "A /d/z", "C /keep", "A /new", "A /new2"]
    );
    assert_eq!(
        list[1],
        Change {
            kind: ChangeKind::Deleted,
            path: "/b".into()
        }
    );

    // The diff as a second layer gives the very view the container had.
    let (l2, _) = unpack(&tar, tmp.path(), "l2");
    let _replay = Mounted::overlay(&replay, &[&l2, &l1], None);
    let again = snapshot(&replay);
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        again.keys().collect::<Vec<_>>()
    );
    for (path, node) in &seen {
        assert_eq!(node, &again[path], "{path}");
    }
    assert!(!again.contains_key("/b") && !again.contains_key("/d/x"));
}
