use isolab_shared::protocol::{ImageInfo, LayerInfo};

use super::*;

pub fn layer(n: u8, size: u64, created_by: &str) -> LayerInfo {
    LayerInfo {
        digest: format!("sha256:{}", format!("{n:02x}").repeat(32)),
        diff_id: format!("sha256:{}", format!("{:02x}", n + 100).repeat(32)),
        size,
        created_by: Some(created_by.to_string()).filter(|c| !c.is_empty()),
    }
}

pub fn image(name: &str, layers: Vec<LayerInfo>) -> ImageInfo {
    ImageInfo {
        name: name.to_string(),
        id: format!("sha256:{name}"),
        created: "2025-11-29T09:00:00Z".to_string(),
        layers,
        entrypoint: None,
        cmd: Some(vec!["sh".to_string()]),
        env: vec!["PATH=/bin".to_string()],
        workdir: None,
        user: None,
    }
}

#[test]
fn the_log_keeps_its_last_64_kib_from_a_line_start() {
    let mut build = Build::new(1, "x".into(), Vec::new());
    build.log("step 1\n");
    build.log("partial ");
    build.log("line\n");
    assert_eq!(build.log, "step 1\npartial line\n");
    assert!(!build.log_trimmed);

    let line = format!("{}\n", "é".repeat(99)); // 199 bytes, two-byte characters
    for _ in 0..400 {
        build.log(&line);
    }
    assert!(build.log.len() <= LOG_CAP, "{}", build.log.len());
    assert!(build.log.len() > LOG_CAP - 1024);
    assert!(build.log_trimmed);
    assert!(build.log.starts_with('é'), "cut at a line start");
    assert!(build.log.ends_with(&line));

    // One huge line without a newline: cut at a character boundary.
    let mut build = Build::new(1, "x".into(), Vec::new());
    build.log(&"é".repeat(LOG_CAP));
    assert!(build.log.len() <= LOG_CAP);
    assert!(build.log.chars().all(|c| c == 'é'));
}

#[test]
fn layers_are_kept_in_index_order_and_an_index_again_replaces() {
    let mut build = Build::new(1, "x".into(), Vec::new());
    build.layer(0, layer(1, 10, "base"));
    build.layer(2, layer(3, 10, "RUN c"));
    build.layer(1, layer(2, 10, "RUN b"));
    build.layer(2, layer(4, 10, "RUN c again"));
    let by: Vec<_> = build
        .stack()
        .iter()
        .map(|l| l.created_by.clone().unwrap())
        .collect();
    assert_eq!(by, ["base", "RUN b", "RUN c again"]);
}

#[test]
fn rows_are_top_first_with_short_digests_sizes_and_bars() {
    let layers = vec![layer(1, 1_000_000, ""), layer(2, 20, "RUN echo one > /one")];
    let rows = stack_rows(&layers, |i, _| i > 0, Some(1));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].index, 1);
    assert_eq!(rows[0].created_by, "RUN echo one > /one");
    assert_eq!(rows[0].short_digest, "020202020202");
    assert_eq!(rows[0].size_text, "20 B");
    assert!(rows[0].new && rows[0].latest);
    assert_eq!(rows[0].bar, 2, "a tiny layer stays visible");
    assert_eq!(rows[1].index, 0);
    assert_eq!(rows[1].created_by, "");
    assert!(!rows[1].new && !rows[1].latest);
    assert_eq!(rows[1].bar, 100);
    assert_eq!(rows[1].size_text, "976.6 KiB");
    assert_eq!(short_digest("abc"), "abc");
}

#[test]
fn from_finds_the_base_image() {
    assert_eq!(from_image(EXAMPLE_DOCKERFILE), Some("busybox"));
    assert_eq!(
        from_image("# c\n  from --platform=linux/amd64 debian AS b\nRUN x"),
        Some("debian")
    );
    assert_eq!(from_image("FROM scratch\n"), None);
    assert_eq!(from_image("RUN x\n"), None);
}

#[test]
fn config_rows_use_the_exec_form_and_a_dash_when_unset() {
    let mut img = image("hello", vec![]);
    img.entrypoint = Some(vec!["/bin/echo".into(), "a \"b\"".into()]);
    img.workdir = Some("/srv".into());
    img.env.push("GREETING=hi".into());
    let rows = config_rows(&img);
    assert_eq!(
        rows,
        vec![
            ("ENTRYPOINT", r#"["/bin/echo", "a \"b\""]"#.to_string()),
            ("CMD", r#"["sh"]"#.to_string()),
            ("WORKDIR", "/srv".to_string()),
            ("USER", "—".to_string()),
            ("ENV", "PATH=/bin\nGREETING=hi".to_string()),
        ]
    );
    assert_eq!(default_command(&img), ["/bin/echo", "a \"b\"", "sh"]);
}

#[test]
fn the_stack_shows_the_build_while_it_runs_then_the_image_it_made() {
    let busybox = image("busybox", vec![layer(1, 900, "")]);
    let mut images = Images::default();
    images.listed(vec![busybox.clone()]);
    assert_eq!(images.shown().source, "image");
    assert_eq!(images.shown().rows.len(), 1);
    assert!(!images.shown().rows[0].new);

    images.started(4, "layered".into(), Some("busybox"));
    let shown = images.shown();
    assert_eq!(shown.source, "build");
    assert_eq!(shown.title, "building layered…");
    assert!(shown.rows.is_empty() && shown.image.is_none());

    let build = images.build_for(Some(4)).unwrap();
    build.layer(0, layer(1, 900, ""));
    build.layer(1, layer(2, 10, "RUN echo one > /one"));
    let shown = images.shown();
    let new: Vec<_> = shown
        .rows
        .iter()
        .map(|r| (r.index, r.new, r.latest))
        .collect();
    assert_eq!(new, [(1, true, true), (0, false, false)]);
    assert!(
        images.build_for(Some(5)).is_none(),
        "another ref is not this build"
    );

    let mut made = image(
        "layered",
        vec![layer(1, 900, ""), layer(2, 10, "RUN echo one > /one")],
    );
    made.cmd = Some(vec!["cat".into(), "/two".into()]);
    images.built(Some(4), made.clone());
    assert_eq!(images.selected, "layered");
    assert_eq!(images.get("layered"), Some(&made));
    let shown = images.shown();
    assert_eq!(shown.source, "image");
    assert_eq!(shown.image, Some(&made));
    let new: Vec<_> = shown
        .rows
        .iter()
        .map(|r| (r.index, r.new, r.latest))
        .collect();
    assert_eq!(new, [(1, true, false), (0, false, false)]);

    // Picking busybox shows it, without marks.
    images.select("busybox".into());
    assert_eq!(images.shown().image, Some(&busybox));
    assert!(images.shown().rows.iter().all(|r| !r.new));
}
