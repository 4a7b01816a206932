//! Tests for the image store (they build a real busybox image in a temp dir).

use super::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::Arc;

/// The host's static busybox, or `None` (with a note) when it is not installed.
fn host_busybox() -> Option<&'static Path> {
    let path = Path::new(HOST_BUSYBOX);
    if path.is_file() && is_static_elf(path).unwrap_or(false) {
        Some(path)
    } else {
        eprintln!("skipping: no static {HOST_BUSYBOX} (apt-get install busybox-static)");
        None
    }
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn missing_image_says_how_to_create_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::new(dir.path().to_path_buf());
    let err = store.open("busybox").unwrap_err();
    assert!(matches!(err, ImageError::NotFound(_)));
    assert!(err.to_string().contains("isolab image init"), "{err}");
    assert_eq!(store.list().unwrap(), Vec::<String>::new());
    for bad in ["../etc", "a/../b", ".hidden", "x/.y", "", "UP"] {
        assert!(
            matches!(store.open(bad), Err(ImageError::InvalidName { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn missing_or_dynamic_busybox_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::new(dir.path().to_path_buf());
    let err = store
        .init_busybox_from(Path::new("/nonexistent/busybox"))
        .unwrap_err();
    assert!(
        err.to_string().contains("apt-get install busybox-static"),
        "{err}"
    );
    // This test binary is dynamically linked.
    let me = std::env::current_exe().unwrap();
    assert!(!is_static_elf(&me).unwrap());
    let err = store.init_busybox_from(&me).unwrap_err();
    assert!(matches!(err, ImageError::BusyboxNotStatic { .. }), "{err}");
    assert!(err.to_string().contains("apt-get install busybox-static"));
    assert!(
        is_static_elf(Path::new("/etc/hostname")).is_err(),
        "not ELF"
    );
    assert!(!dir.path().join("images").exists() || store.list().unwrap().is_empty());
}

#[test]
fn builds_busybox_image() {
    let Some(busybox) = host_busybox() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::new(dir.path().to_path_buf());
    let image = store.init_busybox_from(busybox).unwrap();
    assert_eq!(image.layers.len(), 1, "one layer");
    let rootfs = image.layers[0].clone();
    assert!(
        rootfs.starts_with(dir.path().join("layers")),
        "{}",
        rootfs.display()
    );
    assert_eq!(store.open("busybox").unwrap().layers, image.layers);
    assert_eq!(store.open("busybox:latest").unwrap().layers, image.layers);
    assert_eq!(store.list().unwrap(), ["busybox"]);
    assert_eq!(image.settings.cmd, Some(vec!["sh".to_string()]));
    // Its blob is the layer's tar: the digests check out.
    let record = &image.record.layers[0];
    let blob = store.blobs().path(&Digest::parse(&record.digest).unwrap());
    assert_eq!(fs::metadata(&blob).unwrap().len(), record.size);

    assert_eq!(mode(&rootfs.join("bin/busybox")), 0o755);
    assert!(is_static_elf(&rootfs.join("bin/busybox")).unwrap());
    assert_eq!(
        fs::read_link(rootfs.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(
        fs::read_link(rootfs.join("usr/bin/env")).unwrap(),
        Path::new("../../bin/busybox")
    );
    // Followed from the host, the relative links land on the image's own busybox.
    assert_eq!(
        fs::canonicalize(rootfs.join("usr/bin/env")).unwrap(),
        fs::canonicalize(rootfs.join("bin/busybox")).unwrap()
    );
    assert_eq!(mode(&rootfs.join("tmp")), 0o1777);
    assert_eq!(mode(&rootfs.join("root")), 0o700);
    for d in ["proc", "sys", "dev", "var", "home", "etc"] {
        assert!(rootfs.join(d).is_dir(), "{d}");
    }
    let passwd = fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(passwd.starts_with("root:x:0:0:root:/root:/bin/sh\n"));
    assert!(passwd.contains(":65534:"));
    let group = fs::read_to_string(rootfs.join("etc/group")).unwrap();
    assert!(group.contains("tty:x:5:") && group.contains("nogroup:x:65534:"));
    assert!(fs::read_to_string(rootfs.join("etc/hosts"))
        .unwrap()
        .contains("localhost"));
    assert_eq!(fs::read(rootfs.join("etc/resolv.conf")).unwrap(), b"");

    // Running the image's shell works (no chroot: just the static binary).
    let out = Command::new(rootfs.join("bin/sh"))
        .args(["-c", "echo hi"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"hi\n");

    // Idempotent: a second init returns the same image and changes nothing.
    let again = store.init_busybox_from(busybox).unwrap();
    assert_eq!(again.record, image.record);
}

#[test]
fn concurrent_inits_agree() {
    let Some(busybox) = host_busybox() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ImageStore::new(dir.path().to_path_buf()));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || store.init_busybox_from(busybox).unwrap())
        })
        .collect();
    let images: Vec<Image> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    // The layer's tar is reproducible, so all four made the same layer.
    assert!(images.iter().all(|i| i.layers == images[0].layers));
    let left: Vec<_> = fs::read_dir(store.images_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["busybox"]);
    let layers: Vec<_> = fs::read_dir(store.layers_dir()).unwrap().collect();
    assert_eq!(layers.len(), 1, "one layer folder");
    let tmp: Vec<_> = fs::read_dir(dir.path().join("tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "temporary folders are removed");
}

#[test]
fn removing_an_image_with_its_layers_keeps_what_another_image_uses() {
    let Some(busybox) = host_busybox() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::new(dir.path().to_path_buf());
    store.init_busybox_from(busybox).unwrap();
    let mut copy = store.record("busybox").unwrap();
    copy.name = "session-ab12cd34/copy".into();
    store.save_record(&copy).unwrap();
    let got = store
        .remove_with_layers("session-ab12cd34/copy", BTreeSet::new)
        .unwrap();
    assert_eq!((got.layers, got.blobs), (0, 0), "busybox still names them");
    assert!(store.open("busybox").is_ok());
    assert!(!dir.path().join("images/session-ab12cd34").exists());
    // A live container's layer folder stays even when no image names it.
    let layer = store.layer_dir(&Digest::parse(&copy.layers[0].diff_id).unwrap());
    let in_use = BTreeSet::from([layer.clone()]);
    let got = store.remove_with_layers("busybox", || in_use).unwrap();
    assert_eq!(got.layers, 0);
    assert!(
        got.blobs >= 3,
        "manifest, config and the layer's blob: {got:?}"
    );
    assert!(layer.is_dir());
    assert!(store.blobs().list().unwrap().is_empty());
}

/// A layer made from a folder holding one file.
fn layer_of(store: &ImageStore, dir: &Path, file: &str) -> LayerRecord {
    let src = dir.join(file);
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join(file), file).unwrap();
    store.add_layer_from_dir(&src, file).unwrap()
}

#[test]
fn a_blob_cannot_borrow_the_folder_of_a_layer_of_other_content() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::new(dir.path().join("data"));
    let layer = layer_of(&store, dir.path(), "kept");
    let diff_id = Digest::parse(&layer.diff_id).unwrap();
    // A valid plain tar of other content, named by the existing layer's diff_id.
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(5);
    h.set_mode(0o644);
    tar.append_data(&mut h, "other", &b"other"[..]).unwrap();
    let (other, _) = store
        .blobs()
        .write_bytes(&tar.into_inner().unwrap())
        .unwrap();
    let media = "application/vnd.oci.image.layer.v1.tar".to_string();
    let err = store
        .unpack_blob(&other, media.clone(), Some(&diff_id))
        .unwrap_err();
    assert!(matches!(err, ImageError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains(&layer.diff_id), "{err}");
    // Gzip too: the blob of another layer made here.
    let gz = layer_of(&store, dir.path(), "gz");
    let gz_digest = Digest::parse(&gz.digest).unwrap();
    let err = store
        .unpack_blob(&gz_digest, gz.media_type.clone(), Some(&diff_id))
        .unwrap_err();
    assert!(err.to_string().contains("diff_id"), "{err}");
    // The layer's own blob still pairs with it, and its folder is untouched.
    let again = store
        .unpack_blob(
            &Digest::parse(&layer.digest).unwrap(),
            layer.media_type.clone(),
            Some(&diff_id),
        )
        .unwrap();
    assert_eq!(again.diff_id, layer.diff_id);
    assert_eq!(
        fs::read_to_string(store.layer_dir(&diff_id).join("kept")).unwrap(),
        "kept"
    );
}

#[test]
fn a_failed_import_keeps_what_a_concurrent_one_recorded_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::new(dir.path().join("data"));
    let shared = layer_of(&store, dir.path(), "shared");
    let own = layer_of(&store, dir.path(), "own");
    let digest = |s: &str| Digest::parse(s).unwrap();
    // The failed import made both; a concurrent one reuses `shared`.
    let added = import::Added {
        blobs: vec![digest(&shared.digest), digest(&own.digest)],
        layers: vec![digest(&shared.diff_id), digest(&own.diff_id)],
    };
    let other = store.lock(false).unwrap();
    std::thread::scope(|s| {
        let undo = s.spawn(|| store.roll_back(&added));
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(
            !undo.is_finished(),
            "the rollback waits for the running import"
        );
        assert!(store.layer_dir(&digest(&own.diff_id)).is_dir());
        // The concurrent import saves its record, then lets go of the lock.
        let record = store.commit(
            "other",
            &ImageSettings::default(),
            vec![shared.clone()],
            vec![],
        );
        store.save_record(&record.unwrap()).unwrap();
        drop(other);
        undo.join().unwrap().unwrap();
    });
    assert!(
        store.layer_dir(&digest(&shared.diff_id)).is_dir(),
        "named: kept"
    );
    assert!(store.blobs().has(&digest(&shared.digest)));
    assert!(store.open("other").is_ok());
    assert!(
        !store.layer_dir(&digest(&own.diff_id)).exists(),
        "unnamed: removed"
    );
    assert!(!store.blobs().has(&digest(&own.digest)));
}
