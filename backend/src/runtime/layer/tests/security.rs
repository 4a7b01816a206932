//! Malicious layers: each is refused with an error naming the entry, and nothing is written
//! outside the layer's folder. The "outside" here is a `victim` folder beside `dest` in the same
//! temp dir (never the host's `/etc`, so that even a broken `apply` harms nothing real).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use tar::EntryType;

use super::super::{apply, LayerError, OPAQUE_XATTR};
use super::{message, require_root, tempdir, xattr, Tar};

struct Sandbox {
    tmp: tempfile::TempDir,
    dest: PathBuf,
    victim: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        let tmp = tempdir();
        let dest = tmp.path().join("dest");
        let victim = tmp.path().join("victim");
        fs::create_dir(&dest).unwrap();
        fs::create_dir(&victim).unwrap();
        fs::write(victim.join("secret"), "secret").unwrap();
        Sandbox { tmp, dest, victim }
    }

    /// The victim, spelled from `/` without its leading slash (for `up -> ../../..` paths).
    fn victim_from_root(&self) -> String {
        self.victim
            .to_str()
            .unwrap()
            .trim_start_matches('/')
            .to_string()
    }

    /// Applies `tar`, expects a refusal, and checks that nothing outside `dest` changed.
    fn refuse(&self, tar: &[u8]) -> (LayerError, String) {
        let refused = message(apply(tar, &self.dest));
        let mut top: Vec<_> = fs::read_dir(self.tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        top.sort();
        assert_eq!(top, ["dest", "victim"], "{}", refused.1);
        let names: Vec<_> = fs::read_dir(&self.victim)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["secret"], "{}", refused.1);
        let secret = self.victim.join("secret");
        assert_eq!(fs::read(&secret).unwrap(), b"secret", "{}", refused.1);
        assert_eq!(fs::metadata(&secret).unwrap().nlink(), 1, "{}", refused.1);
        assert_eq!(
            xattr::get(&self.victim, OPAQUE_XATTR.as_bytes()).unwrap(),
            None
        );
        refused
    }
}

#[test]
fn dot_dot_climbing_out_is_refused() {
    require_root!();
    for name in [
        &b"../victim/pwned"[..],
        b"a/../../victim/pwned",
        b"/../victim/pwned",
        b"./../victim/pwned",
    ] {
        let sb = Sandbox::new();
        let tar = Tar::new()
            .raw(name, EntryType::Regular, b"", b"pwned")
            .finish();
        let (err, msg) = sb.refuse(&tar);
        assert!(matches!(err, LayerError::Escapes { .. }), "{msg}");
        assert!(msg.contains(&*String::from_utf8_lossy(name)), "{msg}");
    }
    // A folder, a symlink and a device climbing out are refused alike.
    for ty in [EntryType::Directory, EntryType::Symlink, EntryType::Fifo] {
        let sb = Sandbox::new();
        let tar = Tar::new().raw(b"../victim/pwned", ty, b"x", b"").finish();
        let (err, msg) = sb.refuse(&tar);
        assert!(matches!(err, LayerError::Escapes { .. }), "{msg}");
    }
}

#[test]
fn writing_through_an_absolute_symlink_is_refused() {
    require_root!();
    let sb = Sandbox::new();
    let tar = Tar::new()
        .symlink("etc", sb.victim.to_str().unwrap())
        .file("etc/passwd", 0o644, b"pwned")
        .finish();
    let (err, msg) = sb.refuse(&tar);
    match err {
        LayerError::ThroughSymlink { entry, symlink } => {
            assert_eq!((entry.as_str(), symlink.as_str()), ("etc/passwd", "etc"));
        }
        other => panic!("{other}"),
    }
    assert!(
        msg.contains("etc/passwd") && msg.contains("symlink"),
        "{msg}"
    );
}

#[test]
fn writing_through_a_climbing_relative_symlink_is_refused() {
    require_root!();
    let sb = Sandbox::new();
    let through = format!("up/{}/pwned", sb.victim_from_root());
    let tar = Tar::new()
        .symlink("up", "../../..")
        .file(&through, 0o644, b"pwned")
        .finish();
    let (err, msg) = sb.refuse(&tar);
    assert!(matches!(err, LayerError::ThroughSymlink { .. }), "{msg}");
    // Deeper: a symlink in the middle of a path, with folders to make beyond it.
    let sb = Sandbox::new();
    let tar = Tar::new()
        .dir("a/", 0o755)
        .symlink("a/b", "../../victim")
        .file("a/b/c/d", 0o644, b"pwned")
        .finish();
    let (err, msg) = sb.refuse(&tar);
    match err {
        LayerError::ThroughSymlink { symlink, .. } => assert_eq!(symlink, "a/b"),
        other => panic!("{other}"),
    }
    assert!(msg.contains("a/b/c/d"), "{msg}");
}

#[test]
fn every_kind_of_entry_is_refused_through_a_symlink() {
    require_root!();
    for kind in ["dir", "symlink", "fifo", "hard link", "whiteout", "opaque"] {
        let sb = Sandbox::new();
        let mut tar = Tar::new();
        tar.symlink("s", sb.victim.to_str().unwrap())
            .file("real", 0o644, b"x");
        match kind {
            "dir" => tar.dir("s/newdir/", 0o755),
            "symlink" => tar.symlink("s/link", "/"),
            "fifo" => tar.node("s/fifo", EntryType::Fifo, 0, 0),
            "hard link" => tar.hard_link("s/hard", "real"),
            "whiteout" => tar.file("s/.wh.secret", 0o644, b""),
            _ => tar.file("s/.wh..wh..opq", 0o644, b""),
        };
        let (err, msg) = sb.refuse(&tar.finish());
        assert!(
            matches!(err, LayerError::ThroughSymlink { .. }),
            "{kind}: {msg}"
        );
    }
}

#[test]
fn hard_links_out_of_the_layer_are_refused() {
    require_root!();
    // Climbing out with `..`.
    let sb = Sandbox::new();
    let tar = Tar::new()
        .raw(b"h", EntryType::Link, b"../victim/secret", b"")
        .finish();
    let (err, msg) = sb.refuse(&tar);
    match err {
        LayerError::LinkEscapes { entry, target } => {
            assert_eq!((entry.as_str(), target.as_str()), ("h", "../victim/secret"));
        }
        other => panic!("{other}"),
    }
    assert!(msg.contains("../victim/secret"), "{msg}");
    // An absolute target is inside the layer (made relative), where it does not exist.
    let sb = Sandbox::new();
    let target = sb.victim.join("secret");
    let tar = Tar::new().hard_link("h", target.to_str().unwrap()).finish();
    let (err, msg) = sb.refuse(&tar);
    assert!(matches!(err, LayerError::Invalid { .. }), "{msg}");
    assert!(msg.contains("not in the layer"), "{msg}");
    // Through a symlink in the layer.
    let sb = Sandbox::new();
    let tar = Tar::new()
        .symlink("s", sb.victim.to_str().unwrap())
        .hard_link("h", "s/secret")
        .finish();
    let (err, msg) = sb.refuse(&tar);
    match err {
        LayerError::ThroughSymlink { entry, symlink } => {
            assert_eq!((entry.as_str(), symlink.as_str()), ("h", "s"));
        }
        other => panic!("{other}"),
    }
    assert!(msg.contains('h'), "{msg}");
    // To a target not unpacked yet, and to a folder.
    let sb = Sandbox::new();
    let tar = Tar::new()
        .hard_link("h", "later")
        .file("later", 0o644, b"")
        .finish();
    let (err, msg) = sb.refuse(&tar);
    assert!(matches!(err, LayerError::Invalid { .. }), "{msg}");
    let sb = Sandbox::new();
    let tar = Tar::new().dir("d/", 0o755).hard_link("h", "d").finish();
    let (err, msg) = sb.refuse(&tar);
    assert!(matches!(err, LayerError::Invalid { .. }), "{msg}");
    assert!(msg.contains("folder"), "{msg}");
}

#[test]
fn whiteouts_of_dot_dot_are_refused() {
    require_root!();
    for name in [&b".wh.."[..], b"sub/.wh..", b".wh..", b".wh."] {
        let sb = Sandbox::new();
        let tar = Tar::new().raw(name, EntryType::Regular, b"", b"").finish();
        let (err, msg) = sb.refuse(&tar);
        assert!(matches!(err, LayerError::Invalid { .. }), "{msg}");
        assert!(msg.contains("whiteout"), "{msg}");
    }
    // `.wh...` is the whiteout of `..`.
    let sb = Sandbox::new();
    let tar = Tar::new()
        .raw(b"sub/.wh...", EntryType::Regular, b"", b"")
        .finish();
    let (err, msg) = sb.refuse(&tar);
    assert!(matches!(err, LayerError::Invalid { .. }), "{msg}");
    assert!(msg.contains("\"..\""), "{msg}");
}

#[test]
fn symlinks_themselves_may_point_anywhere() {
    require_root!();
    let sb = Sandbox::new();
    let tar = Tar::new()
        .symlink("abs", "/etc/passwd")
        .symlink("climb", "../../../../etc")
        .symlink("victim-link", sb.victim.to_str().unwrap())
        // Replacing a symlink with a file or folder unlinks the symlink, never follows it.
        .file("victim-link", 0o644, b"mine")
        .symlink("d", sb.victim.to_str().unwrap())
        .dir("d/", 0o755)
        .file("d/secret", 0o644, b"mine too")
        .finish();
    apply(&tar[..], &sb.dest).unwrap();
    assert_eq!(
        fs::read_link(sb.dest.join("abs")).unwrap().to_str(),
        Some("/etc/passwd")
    );
    assert_eq!(
        fs::read_link(sb.dest.join("climb")).unwrap().to_str(),
        Some("../../../../etc")
    );
    assert_eq!(fs::read(sb.dest.join("victim-link")).unwrap(), b"mine");
    assert_eq!(fs::read(sb.dest.join("d/secret")).unwrap(), b"mine too");
    assert_eq!(fs::read(sb.victim.join("secret")).unwrap(), b"secret");
}

#[test]
fn a_folder_replaced_by_a_symlink_is_not_written_into_afterwards() {
    require_root!();
    // `d/x` is unpacked, then `d` becomes a symlink out: `d/y` must not follow it, nor land
    // in the folder `d` was.
    let sb = Sandbox::new();
    let tar = Tar::new()
        .file("d/x", 0o644, b"x")
        .symlink("d", sb.victim.to_str().unwrap())
        .file("d/y", 0o644, b"pwned")
        .finish();
    let (err, msg) = sb.refuse(&tar);
    assert!(matches!(err, LayerError::ThroughSymlink { .. }), "{msg}");
    // And replaced by a file: no folder to write into any more.
    let sb = Sandbox::new();
    let tar = Tar::new()
        .file("d/x", 0o644, b"x")
        .file("d", 0o644, b"a file now")
        .file("d/y", 0o644, b"y")
        .finish();
    let (err, msg) = sb.refuse(&tar);
    assert!(matches!(err, LayerError::Invalid { .. }), "{msg}");
    assert!(msg.contains("not a folder"), "{msg}");
}
