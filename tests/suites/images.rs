//! Images end to end, with real tools from Debian as witnesses: builds where each RUN is a
//! layer, export read by `skopeo` and `umoci`, an `umoci`-made image imported and run, a
//! `docker save` archive imported (with the layer symlinks older Docker writes), ENTRYPOINT and
//! CMD as docker combines them, `isolab diff`, corrupt inputs refused with the store unchanged,
//! and a server collecting what its sessions' builds leave. Each test has a store of its own.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use isolab_shared::protocol::{ClientMsg, LayerInfo, ServerMsg};
use isolab_tests::server::{Client, Server};
use isolab_tests::{eventually, stderr, stdout, Isolab};

const BIN: &str = env!("CARGO_BIN_EXE_isolab");

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

fn context(dockerfile: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    for (name, text) in files {
        fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn inspect(t: &Isolab, name: &str) -> serde_json::Value {
    serde_json::from_str(&t.ok(&["image", "inspect", name])).unwrap()
}

fn layer_count(t: &Isolab, name: &str) -> usize {
    inspect(t, name)["layers"].as_array().unwrap().len()
}

/// Everything in the store, to check that a refused input changed nothing.
fn store_listing(t: &Isolab) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for sub in ["images", "layers", "blobs/sha256", "tmp"] {
        let dir = t.data_root.join(sub);
        if let Ok(entries) = fs::read_dir(&dir) {
            for e in entries.flatten() {
                out.insert(format!("{sub}/{}", e.file_name().to_string_lossy()));
            }
        }
    }
    out
}

#[test]
fn each_run_is_a_layer_and_a_later_layer_hides_a_deleted_file() {
    let t = Isolab::with_own_store(BIN);
    let base = layer_count(&t, "busybox");
    let ctx = context(
        "FROM busybox\n\
         RUN echo one > /one\n\
         RUN echo two > /two && echo three > /three\n\
         RUN rm /one\n\
         CMD [\"cat\", \"/two\", \"/three\"]\n",
        &[],
    );
    let log = t.ok(&["build", "-t", "layered", ctx.path().to_str().unwrap()]);
    assert!(log.contains("STEP 4/5: RUN rm /one"), "{log}");
    let image = inspect(&t, "layered");
    let layers = image["layers"].as_array().unwrap();
    assert_eq!(layers.len(), base + 3, "three RUNs, three new layers");
    let made: Vec<&str> = layers[base..]
        .iter()
        .map(|l| l["created_by"].as_str().unwrap())
        .collect();
    assert_eq!(
        made,
        [
            "RUN echo one > /one",
            "RUN echo two > /two && echo three > /three",
            "RUN rm /one"
        ]
    );
    // The default command, and the deleted file is absent though its layer is still there.
    assert_eq!(t.ok(&["run", "layered"]), "two\nthree\n");
    let out = t.run(&["run", "layered", "cat", "/one"]);
    assert!(!out.status.success(), "/one is gone: {}", stdout(&out));
    assert_eq!(t.ok(&["run", "layered", "ls", "/two"]), "/two\n");

    // `a && b` is one layer, two RUNs are two.
    let one = context("FROM busybox\nRUN touch /a && touch /b\n", &[]);
    let two = context("FROM busybox\nRUN touch /a\nRUN touch /b\n", &[]);
    t.ok(&["build", "-t", "one-run", one.path().to_str().unwrap()]);
    t.ok(&["build", "-t", "two-runs", two.path().to_str().unwrap()]);
    assert_eq!(layer_count(&t, "one-run"), base + 1);
    assert_eq!(layer_count(&t, "two-runs"), base + 2);

    // A failing RUN fails the build with its code, and makes no image.
    let bad = context("FROM busybox\nRUN exit 3\n", &[]);
    let out = t.run(&["build", "-t", "broken", bad.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("non-zero code: 3"),
        "{}",
        stderr(&out)
    );
    assert!(t.run(&["image", "inspect", "broken"]).status.code() != Some(0));

    // Removing the images collects their layers, and keeps busybox's.
    t.ok(&["image", "rm", "layered", "one-run", "two-runs"]);
    assert_eq!(
        t.ok(&["image", "ls"]).lines().count(),
        2,
        "header and busybox"
    );
    assert_eq!(t.ok(&["run", "busybox", "echo", "ok"]), "ok\n");
    t.assert_no_leaks();
}

#[test]
fn entrypoint_and_cmd_combine_as_docker_documents() {
    let t = Isolab::with_own_store(BIN);
    let build = |name: &str, file: &str| {
        let ctx = context(file, &[]);
        t.ok(&["build", "-t", name, ctx.path().to_str().unwrap()]);
    };
    build(
        "exec-both",
        "FROM busybox\nENTRYPOINT [\"echo\", \"entry\"]\nCMD [\"from-cmd\"]\n",
    );
    build(
        "shell-entry",
        "FROM busybox\nENTRYPOINT echo shell-entry $0\nCMD [\"ignored\"]\n",
    );
    build("cmd-only", "FROM busybox\nCMD echo from $0 shell\n");
    // Exec-form ENTRYPOINT + CMD: CMD gives the default arguments; run's replace them.
    assert_eq!(t.ok(&["run", "exec-both"]), "entry from-cmd\n");
    assert_eq!(t.ok(&["run", "exec-both", "given"]), "entry given\n");
    // --entrypoint replaces the ENTRYPOINT and drops the image's CMD.
    assert_eq!(t.ok(&["run", "--entrypoint", "echo", "exec-both"]), "\n");
    assert_eq!(
        t.ok(&["run", "--entrypoint", "echo", "exec-both", "x"]),
        "x\n"
    );
    // Shell-form ENTRYPOINT: /bin/sh -c runs it; CMD and run's arguments only reach it as $0.
    assert_eq!(t.ok(&["run", "shell-entry"]), "shell-entry ignored\n");
    assert_eq!(t.ok(&["run", "shell-entry", "a"]), "shell-entry a\n");
    // Shell-form CMD alone; run's arguments replace it whole.
    assert_eq!(t.ok(&["run", "cmd-only"]), "from /bin/sh shell\n");
    assert_eq!(t.ok(&["run", "cmd-only", "echo", "replaced"]), "replaced\n");
    t.ok(&["image", "rm", "exec-both", "shell-entry", "cmd-only"]);
    t.assert_no_leaks();
}

#[test]
fn copy_env_workdir_and_user_shape_the_container() {
    let t = Isolab::with_own_store(BIN);
    let ctx = context(
        "FROM busybox\n\
         ENV GREETING=hello DIR=/srv/app\n\
         WORKDIR $DIR\n\
         COPY greeting.txt ./\n\
         RUN echo 'nobody:x:65534:65534::/:/bin/sh' >> /etc/passwd && chown 65534 /srv/app/greeting.txt\n\
         USER nobody\n\
         CMD [\"sh\", \"-c\", \"pwd; cat greeting.txt; echo $GREETING; id -u\"]\n",
        &[("greeting.txt", "from the context\n")],
    );
    t.ok(&["build", "-t", "shaped", ctx.path().to_str().unwrap()]);
    assert_eq!(
        t.ok(&["run", "shaped"]),
        "/srv/app\nfrom the context\nhello\n65534\n"
    );
    // A COPY source outside the context is refused.
    let escape = context("FROM busybox\nCOPY ../x /x\n", &[]);
    let out = t.run(&["build", "-t", "escape", escape.path().to_str().unwrap()]);
    assert!(
        stderr(&out).contains("outside the build context"),
        "{}",
        stderr(&out)
    );
    t.ok(&["image", "rm", "shaped"]);
    t.assert_no_leaks();
}

#[test]
fn an_export_is_read_by_skopeo_and_umoci_and_imports_back() {
    if !have("skopeo") || !have("umoci") {
        eprintln!("skipped: skopeo and umoci are needed (apt-get install skopeo umoci)");
        return;
    }
    let t = Isolab::with_own_store(BIN);
    let ctx = context(
        "FROM busybox\nRUN echo kept > /kept && echo gone > /gone\nRUN rm /gone\nCMD [\"cat\", \"/kept\"]\n",
        &[],
    );
    t.ok(&["build", "-t", "exported", ctx.path().to_str().unwrap()]);
    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("layout");
    t.ok(&["image", "export", "exported", layout.to_str().unwrap()]);
    let seen: serde_json::Value = serde_json::from_str(&run(
        "skopeo",
        &["inspect", &format!("oci:{}", layout.display())],
    ))
    .unwrap();
    let record = inspect(&t, "exported");
    assert_eq!(seen["Digest"], record["manifest"]);
    let ours: Vec<&serde_json::Value> = record["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["digest"])
        .collect();
    let theirs: Vec<&serde_json::Value> = seen["Layers"].as_array().unwrap().iter().collect();
    assert_eq!(ours, theirs);
    let bundle = out.path().join("bundle");
    run(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:latest", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(
        fs::read_to_string(bundle.join("rootfs/kept")).unwrap(),
        "kept\n"
    );
    assert!(!bundle.join("rootfs/gone").exists(), "the whiteout applied");

    // As a tar too, and back in under another name.
    let tar = out.path().join("exported.tar");
    t.ok(&["image", "export", "exported", tar.to_str().unwrap()]);
    t.ok(&["image", "import", tar.to_str().unwrap(), "reimported"]);
    assert_eq!(inspect(&t, "reimported")["manifest"], record["manifest"]);
    assert_eq!(t.ok(&["run", "reimported"]), "kept\n");
    t.ok(&["image", "rm", "exported", "reimported"]);
    t.assert_no_leaks();
}

#[test]
fn an_image_made_by_umoci_imports_and_runs() {
    if !have("umoci") {
        eprintln!("skipped: umoci is needed (apt-get install umoci)");
        return;
    }
    let t = Isolab::with_own_store(BIN);
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("um");
    let bundle = dir.path().join("bundle");
    let image = format!("{}:latest", layout.display());
    run("umoci", &["init", "--layout", layout.to_str().unwrap()]);
    run("umoci", &["new", "--image", &image]);
    run(
        "umoci",
        &["unpack", "--image", &image, bundle.to_str().unwrap()],
    );
    let rootfs = bundle.join("rootfs");
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
    fs::write(rootfs.join("hello"), "made by umoci\n").unwrap();
    run(
        "umoci",
        &["repack", "--image", &image, bundle.to_str().unwrap()],
    );
    run(
        "umoci",
        &[
            "config",
            "--image",
            &image,
            "--config.cmd",
            "/bin/sh",
            "--config.cmd",
            "-c",
            "--config.cmd",
            "cat /hello",
        ],
    );
    let out = t.ok(&["image", "import", layout.to_str().unwrap(), "from-umoci"]);
    assert_eq!(out, "from-umoci\n");
    assert_eq!(t.ok(&["run", "from-umoci"]), "made by umoci\n");
    t.ok(&["image", "rm", "from-umoci"]);
    t.assert_no_leaks();
}

/// A `docker save` archive, written by hand from an exported image: manifest.json, the config
/// as `<hex>.json`, and each layer as `<n>/layer.tar` (the first plain, the others gzip).
fn docker_archive(layout: &Path, dest: &Path, repo_tag: &str) {
    let stage = dest.with_extension("d");
    let manifest = docker_stage(layout, &stage, repo_tag);
    fs::write(stage.join("manifest.json"), manifest.to_string()).unwrap();
    tar_of(&stage, dest);
}

/// The files of [`docker_archive`] in `stage`; returns manifest.json's content (not written).
fn docker_stage(layout: &Path, stage: &Path, repo_tag: &str) -> serde_json::Value {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    fs::create_dir_all(stage).unwrap();
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config_name = format!("{}.json", config_digest.trim_start_matches("sha256:"));
    fs::copy(blob(config_digest), stage.join(&config_name)).unwrap();
    let mut layers = Vec::new();
    for (i, l) in manifest["layers"].as_array().unwrap().iter().enumerate() {
        let name = format!("{i}/layer.tar");
        fs::create_dir_all(stage.join(i.to_string())).unwrap();
        let gz = fs::read(blob(l["digest"].as_str().unwrap())).unwrap();
        let bytes = if i == 0 {
            let mut plain = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut plain)
                .unwrap();
            plain
        } else {
            gz
        };
        fs::write(stage.join(&name), bytes).unwrap();
        layers.push(name);
    }
    serde_json::json!([{"Config": config_name, "RepoTags": [repo_tag], "Layers": layers}])
}

/// `tar -cf DEST -C DIR .` (symlinks stay symlinks).
fn tar_of(dir: &Path, dest: &Path) {
    run(
        "tar",
        &[
            "-C",
            dir.to_str().unwrap(),
            "-cf",
            dest.to_str().unwrap(),
            ".",
        ],
    );
}

#[test]
fn a_docker_save_archive_imports_with_its_name() {
    let t = Isolab::with_own_store(BIN);
    let ctx = context(
        "FROM busybox\nRUN echo saved > /saved\nCMD [\"cat\", \"/saved\"]\n",
        &[],
    );
    t.ok(&["build", "-t", "src", ctx.path().to_str().unwrap()]);
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    t.ok(&["image", "export", "src", layout.to_str().unwrap()]);
    let archive = dir.path().join("saved.tar");
    docker_archive(&layout, &archive, "example/saved:1.0");
    let out = t.ok(&["image", "import", archive.to_str().unwrap()]);
    assert_eq!(out, "example/saved-1.0\n", "docker's name, tag folded in");
    assert_eq!(t.ok(&["run", "example/saved:1.0"]), "saved\n");
    assert!(t.ok(&["image", "ls"]).contains("example/saved-1.0"));
    t.ok(&["image", "rm", "src", "example/saved-1.0"]);
    t.assert_no_leaks();
}

#[test]
fn a_docker_save_archive_with_layer_symlinks_imports_and_links_out_are_refused() {
    let t = Isolab::with_own_store(BIN);
    let ctx = context(
        "FROM busybox\nRUN echo linked > /linked\nCMD [\"cat\", \"/linked\"]\n",
        &[],
    );
    t.ok(&["build", "-t", "src", ctx.path().to_str().unwrap()]);
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    t.ok(&["image", "export", "src", layout.to_str().unwrap()]);
    // Two images, as `docker save a b` before Docker 25 writes them: a layer they repeat is
    // stored once, and the second image's copy is a symlink to it.
    let stage = dir.path().join("stage");
    let mut manifest = docker_stage(&layout, &stage, "example/one:1");
    let mut second = manifest[0].clone();
    second["RepoTags"] = serde_json::json!(["example/two:1"]);
    let last = second["Layers"].as_array().unwrap().len() - 1;
    let real = second["Layers"][last].as_str().unwrap().to_string();
    fs::create_dir(stage.join("linked")).unwrap();
    let link = stage.join("linked/layer.tar");
    std::os::unix::fs::symlink(format!("../{real}"), &link).unwrap();
    second["Layers"][last] = "linked/layer.tar".into();
    manifest.as_array_mut().unwrap().push(second);
    fs::write(stage.join("manifest.json"), manifest.to_string()).unwrap();
    let archive = dir.path().join("saved.tar");
    tar_of(&stage, &archive);
    let listed = run("tar", &["-tvf", archive.to_str().unwrap()]);
    assert!(
        listed.contains(&format!("linked/layer.tar -> ../{real}")),
        "the archive holds the symlink: {listed}"
    );
    let out = t.ok(&["image", "import", archive.to_str().unwrap()]);
    assert_eq!(out, "example/one-1\nexample/two-1\n");
    assert_eq!(t.ok(&["run", "example/one:1"]), "linked\n");
    assert_eq!(t.ok(&["run", "example/two:1"]), "linked\n");
    assert_eq!(
        inspect(&t, "example/two-1")["layers"],
        inspect(&t, "example/one-1")["layers"],
        "the same layers"
    );
    t.ok(&["image", "rm", "example/one-1", "example/two-1"]);
    // A symlink leading out of the archive is refused, however it is written, and the store
    // is left as it was.
    let before = store_listing(&t);
    for (i, target) in ["../../../../../../etc/passwd", "/etc/passwd", "../linked"]
        .iter()
        .enumerate()
    {
        fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(target, &link).unwrap();
        let bad = dir.path().join(format!("bad-{i}.tar"));
        tar_of(&stage, &bad);
        let out = t.run(&["image", "import", bad.to_str().unwrap()]);
        assert!(!out.status.success(), "{target} was accepted");
        let want = match i {
            2 => "not a file of the archive",
            _ => "leaves the archive",
        };
        assert!(stderr(&out).contains(want), "{target}: {}", stderr(&out));
        assert_eq!(store_listing(&t), before, "{target} changed the store");
    }
    t.ok(&["image", "rm", "src"]);
    t.assert_no_leaks();
}

/// A tar holding one raw entry whose name is written into the header as is (the tar crate
/// refuses `..` through its safe setters).
fn raw_tar(entries: &[(&str, u8, &str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, link, data) in entries {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        h.set_entry_type(tar::EntryType::new(*kind));
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// An OCI layout around one layer tar (plain), with a correct manifest, and a config naming
/// the layer's own digest as its diff_id unless another is given.
fn layout_with_layer(dir: &Path, layer: &[u8], diff_id: Option<&str>) -> PathBuf {
    use sha2::Digest as _;
    let hex = |b: &[u8]| -> String {
        sha2::Sha256::digest(b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect()
    };
    let root = dir.join("bad-layout");
    let blobs = root.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let layer_hex = hex(layer);
    fs::write(blobs.join(&layer_hex), layer).unwrap();
    let config = serde_json::json!({"architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.map_or(format!("sha256:{layer_hex}"), str::to_string)]}})
    .to_string();
    let config_hex = hex(config.as_bytes());
    fs::write(blobs.join(&config_hex), &config).unwrap();
    let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{config_hex}"), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:{layer_hex}"), "size": layer.len()}]}).to_string();
    let manifest_hex = hex(manifest.as_bytes());
    fs::write(blobs.join(&manifest_hex), &manifest).unwrap();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{manifest_hex}"), "size": manifest.len()}]}).to_string();
    fs::write(root.join("index.json"), index).unwrap();
    fs::write(root.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    root
}

#[test]
fn corrupt_inputs_are_refused_and_leave_the_store_unchanged() {
    let t = Isolab::with_own_store(BIN);
    let ctx = context("FROM busybox\nRUN echo x > /x\n", &[]);
    t.ok(&["build", "-t", "good", ctx.path().to_str().unwrap()]);
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    t.ok(&["image", "export", "good", good.to_str().unwrap()]);
    t.ok(&["image", "rm", "good"]);
    let before = store_listing(&t);
    let refused = |path: &Path, want: &str| {
        let out = t.run(&["image", "import", path.to_str().unwrap(), "bad"]);
        assert!(!out.status.success(), "{} was accepted", path.display());
        let err = stderr(&out);
        assert!(
            err.contains(want),
            "{}: expected {want:?} in {err}",
            path.display()
        );
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(
            store_listing(&t),
            before,
            "{} changed the store",
            path.display()
        );
    };
    let copy = |name: &str| -> PathBuf {
        let to = dir.path().join(name);
        run("cp", &["-r", good.to_str().unwrap(), to.to_str().unwrap()]);
        to
    };
    // A blob whose content does not match its digest (the biggest: a layer).
    let tampered = copy("tampered");
    let biggest = fs::read_dir(tampered.join("blobs/sha256"))
        .unwrap()
        .flatten()
        .max_by_key(|e| e.metadata().unwrap().len())
        .unwrap()
        .path();
    let mut bytes = fs::read(&biggest).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    fs::write(&biggest, bytes).unwrap();
    refused(&tampered, "digest");
    // A manifest naming a blob that is not there.
    let missing = copy("missing");
    fs::remove_file(biggest.to_str().unwrap().replace("tampered", "missing")).unwrap();
    refused(&missing, "missing");
    // A truncated archive.
    let tar = dir.path().join("good.tar");
    run(
        "tar",
        &[
            "-C",
            good.to_str().unwrap(),
            "-cf",
            tar.to_str().unwrap(),
            ".",
        ],
    );
    let len = fs::metadata(&tar).unwrap().len();
    let cut = dir.path().join("cut.tar");
    fs::write(&cut, &fs::read(&tar).unwrap()[..(len / 2) as usize]).unwrap();
    refused(&cut, "truncated");
    // Layers that would write outside their root.
    let traversal = layout_with_layer(
        &dir.path().join("t1"),
        &raw_tar(&[("../../etc/x", b'0', "", b"owned\n")]),
        None,
    );
    refused(&traversal, "escapes");
    let through_symlink = layout_with_layer(
        &dir.path().join("t2"),
        &raw_tar(&[
            ("etc", b'2', "/etc", b""),
            ("etc/isolab-owned", b'0', "", b"owned\n"),
        ]),
        None,
    );
    refused(&through_symlink, "symlink");
    assert!(!Path::new("/etc/isolab-owned").exists() && !Path::new("/etc/x").exists());
    // A valid layer whose config names the content of a layer the store has (busybox's): the
    // existing folder must not stand in for it.
    let busybox = inspect(&t, "busybox")["layers"][0]["diff_id"]
        .as_str()
        .unwrap()
        .to_string();
    let borrowed = layout_with_layer(
        &dir.path().join("t3"),
        &raw_tar(&[("not-busybox", b'0', "", b"other content\n")]),
        Some(&busybox),
    );
    refused(&borrowed, &format!("its content (diff_id) is {busybox}"));
    // Not an image at all.
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    refused(&empty, "neither an OCI image layout");
    let mut f = fs::File::create(dir.path().join("junk.tar")).unwrap();
    f.write_all(b"this is not a tar").unwrap();
    refused(&dir.path().join("junk.tar"), "junk.tar");
    t.assert_no_leaks();
}

#[test]
fn diff_lists_what_a_container_added_changed_and_deleted() {
    let t = Isolab::with_own_store(BIN);
    let id = t.ok(&["run", "-d", "--name", "differ", "busybox", "sleep", "60"]);
    let id = id.trim();
    t.ok(&[
        "exec",
        id,
        "sh",
        "-c",
        "echo x > /added; echo y >> /etc/hosts; rm /etc/passwd; mkdir -p /root/deep/er",
    ]);
    let diff = t.ok(&["diff", "differ"]);
    let lines: Vec<&str> = diff.lines().collect();
    for want in [
        "A /added",
        "C /etc",
        "C /etc/hosts",
        "D /etc/passwd",
        "C /root",
        "A /root/deep",
        "A /root/deep/er",
    ] {
        assert!(lines.contains(&want), "{want:?} not in:\n{diff}");
    }
    t.ok(&["rm", "differ"]);
    t.assert_no_leaks();
}

#[test]
fn imports_and_builds_at_the_same_time_agree() {
    let t = Isolab::with_own_store(BIN);
    let ctx = context(
        "FROM busybox\nRUN echo shared > /shared\nCMD [\"cat\", \"/shared\"]\n",
        &[],
    );
    t.ok(&["build", "-t", "src", ctx.path().to_str().unwrap()]);
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    t.ok(&["image", "export", "src", layout.to_str().unwrap()]);
    t.ok(&["image", "rm", "src"]);
    let baseline = store_listing(&t);
    // Two imports of the same layout and two builds of one Dockerfile, all at once.
    let mut jobs = Vec::new();
    for name in ["a", "b"] {
        jobs.push(
            t.cmd(&["image", "import", layout.to_str().unwrap(), name])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    for name in ["c", "d"] {
        jobs.push(
            t.cmd(&["build", "-t", name, ctx.path().to_str().unwrap()])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    for job in jobs {
        let out = job.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(inspect(&t, "a")["manifest"], inspect(&t, "b")["manifest"]);
    for name in ["a", "b", "c", "d"] {
        assert_eq!(t.ok(&["run", name]), "shared\n", "{name}");
    }
    t.ok(&["image", "rm", "a", "b", "c", "d"]);
    assert_eq!(
        store_listing(&t),
        baseline,
        "everything they added is collected"
    );
    t.assert_no_leaks();
}

/// Build over a server session's WebSocket: the layers it reported, and how it ended
/// (`built`, then the image list that follows it, or `error`).
async fn session_build(
    c: &mut Client,
    name: &str,
    dockerfile: &str,
) -> (Vec<LayerInfo>, ServerMsg) {
    c.send(&ClientMsg::Build {
        reference: Some(7),
        name: name.into(),
        dockerfile: dockerfile.into(),
    })
    .await;
    let mut layers = Vec::new();
    loop {
        match c.next_msg().await {
            ServerMsg::BuildLayer { layer, .. } => layers.push(layer),
            end @ ServerMsg::Error { .. } => return (layers, end),
            end @ ServerMsg::Built { .. } => {
                // The picker's new list follows.
                while !matches!(c.next_msg().await, ServerMsg::Images { .. }) {}
                return (layers, end);
            }
            _ => {}
        }
    }
}

fn layer_dirs(t: &Isolab) -> BTreeSet<String> {
    fs::read_dir(t.data_root.join("layers"))
        .unwrap()
        .map(|e| format!("sha256:{}", e.unwrap().file_name().to_string_lossy()))
        .collect()
}

fn has_blob(t: &Isolab, digest: &str) -> bool {
    t.data_root
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
        .exists()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_collects_what_failed_builds_rebuilds_and_ended_sessions_leave() {
    let t = Isolab::with_own_store(BIN);
    let before = store_listing(&t);
    let base = layer_dirs(&t);
    let server = Server::start(&t);
    let mut c = Client::connect(&server.url()).await;
    let settle = std::time::Duration::from_secs(20);

    // The second RUN fails: the first one's layer and blob go again.
    let (layers, end) = session_build(
        &mut c,
        "broken",
        "FROM busybox\nRUN echo one > /one\nRUN exit 3\n",
    )
    .await;
    assert!(
        matches!(&end, ServerMsg::Error { code, .. } if code == "build_failed"),
        "{end:?}"
    );
    let made = layers.last().unwrap();
    assert!(!base.contains(&made.diff_id), "the first RUN made a layer");
    eventually("the failed build's layers collected", settle, || {
        store_listing(&t) == before
    });

    // A rebuild of one name: only the new image's layers stay.
    let (_, first) = session_build(&mut c, "again", "FROM busybox\nRUN echo v1 > /v\n").await;
    let ServerMsg::Built { image: old, .. } = first else {
        panic!("{first:?}")
    };
    let (_, second) = session_build(&mut c, "again", "FROM busybox\nRUN echo v2 > /v\n").await;
    let ServerMsg::Built { image: new, .. } = second else {
        panic!("{second:?}")
    };
    let new_layers: BTreeSet<String> = new.layers.iter().map(|l| l.diff_id.clone()).collect();
    let old_top = old.layers.last().unwrap();
    assert!(
        !new_layers.contains(&old_top.diff_id),
        "the two RUNs differ"
    );
    // Layers go first, then blobs: the old manifest and layer blob are the last to go.
    eventually(
        "the replaced image's layers and blobs collected",
        settle,
        || {
            layer_dirs(&t) == &base | &new_layers
                && !has_blob(&t, &old.id)
                && !has_blob(&t, &old_top.digest)
        },
    );
    for kept in new.layers.iter().map(|l| &l.digest).chain([&new.id]) {
        assert!(has_blob(&t, kept), "{kept} is gone");
    }

    // A rebuild while a container runs the image: the old layer it runs on stays until the
    // session ends, then goes with the rest.
    let spec = isolab_shared::spec::ContainerSpec::new("again", vec!["sleep".into(), "600".into()]);
    c.create(spec).await;
    let (_, third) = session_build(&mut c, "again", "FROM busybox\nRUN echo v3 > /v\n").await;
    assert!(matches!(third, ServerMsg::Built { .. }), "{third:?}");
    let running = new.layers.last().unwrap();
    eventually("the replaced image's manifest collected", settle, || {
        !has_blob(&t, &new.id)
    });
    assert!(
        layer_dirs(&t).contains(&running.diff_id),
        "a running container's layer stays"
    );

    // The session ends (its grace is 1 s): its images go, and all it made with them.
    drop(c);
    eventually("the session's images collected", settle, || {
        store_listing(&t) == before
    });
    drop(server);
    t.assert_no_leaks();
}
