//! The backend's Dockerfile parser (`isolab::build::dockerfile::parse`, what a `build` request's
//! text goes through before anything runs), then what the builder does with a parsed file
//! without running anything: `BuildSettings::apply` for every instruction (variable
//! substitution, WORKDIR joining, ENTRYPOINT/CMD rules) and `command_line`.
//!
//! Checks: no panic on any text; a parsed file is well formed (FROM first with a non-empty
//! image, line numbers 1-based, increasing and within the text, no empty RUN exec form, COPY
//! with a source, ENV/LABEL names not blank); a WORKDIR after `apply` is absolute.
//! Also feeds the raw text to `substitute` as one word, with a small environment.
//!
//! Needs the `backend` feature: `cargo +nightly fuzz run --features backend dockerfile`.

#![no_main]

use isolab::build::command::{command_line, BuildSettings, Form};
use isolab::build::dockerfile::{parse, substitute, InstructionKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    let env = [
        ("A".to_string(), "x".to_string()),
        ("EMPTY".to_string(), String::new()),
        ("A".to_string(), "later wins".to_string()),
    ];
    let _ = substitute(text, &env);

    let Ok(file) = parse(text) else {
        return;
    };
    let lines = text.lines().count();
    assert!(!file.from.image.is_empty());
    assert!(file.from.line >= 1 && file.from.line <= lines);
    let mut previous = file.from.line;
    for inst in &file.instructions {
        assert!(
            inst.line > previous,
            "lines out of order: {} after {previous}",
            inst.line
        );
        assert!(
            inst.line <= lines,
            "line {} of a {lines}-line text",
            inst.line
        );
        previous = inst.line;
        assert!(!inst.text.is_empty());
        match &inst.kind {
            InstructionKind::Run(Form::Exec(argv)) => assert!(!argv.is_empty()),
            InstructionKind::Copy(copy) => assert!(!copy.sources.is_empty()),
            InstructionKind::Env(pairs) | InstructionKind::Label(pairs) => {
                assert!(!pairs.is_empty());
                assert!(pairs.iter().all(|(name, _)| !name.is_empty()));
            }
            _ => {}
        }
    }

    let mut settings = BuildSettings::default();
    for inst in &file.instructions {
        if settings.apply(inst).is_err() {
            break;
        }
        if let Some(dir) = &settings.image.workdir {
            assert!(dir.starts_with('/'), "WORKDIR {dir:?} is not absolute");
        }
        if let InstructionKind::Copy(copy) = &inst.kind {
            for word in copy
                .sources
                .iter()
                .chain([&copy.dest])
                .chain(copy.chown.as_ref())
            {
                let _ = settings.substitute(word);
            }
        }
    }
    let image = &settings.image;
    let _ = command_line(image.entrypoint.as_deref(), image.cmd.as_deref(), &[], None);
    let _ = command_line(
        image.entrypoint.as_deref(),
        image.cmd.as_deref(),
        &["sh".to_string()],
        Some(&[String::new()]),
    );
});
