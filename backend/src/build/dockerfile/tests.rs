//! Tests for the Dockerfile parser and for variable substitution.

use super::*;

fn parsed(text: &str) -> Dockerfile {
    parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
}

/// The kinds of the instructions after `FROM busybox`.
fn kinds(after_from: &str) -> Vec<InstructionKind> {
    let file = parsed(&format!("FROM busybox\n{after_from}"));
    file.instructions.into_iter().map(|i| i.kind).collect()
}

/// The kind of the single instruction after `FROM busybox`.
fn kind(after_from: &str) -> InstructionKind {
    let mut all = kinds(after_from);
    assert_eq!(
        all.len(),
        1,
        "{after_from:?} should be one instruction: {all:?}"
    );
    all.remove(0)
}

fn error(text: &str) -> ParseError {
    match parse(text) {
        Ok(file) => panic!("{text:?} should be refused, parsed as {file:?}"),
        Err(e) => e,
    }
}

/// The error for `FROM busybox` then `after_from`, which must be on line 2.
fn error_after_from(after_from: &str) -> ParseErrorKind {
    let e = error(&format!("FROM busybox\n{after_from}"));
    assert_eq!(e.line, 2, "{e}");
    e.kind
}

fn shell(text: &str) -> Form {
    Form::Shell(text.to_string())
}

fn exec(argv: &[&str]) -> Form {
    Form::Exec(argv.iter().map(|s| s.to_string()).collect())
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// ---- every instruction ----------------------------------------------------------------

#[test]
fn every_instruction_with_its_line_and_text() {
    let file = parsed(
        "FROM busybox\n\
         RUN apk add curl && rm -rf /var/cache\n\
         COPY --chown=app:app app.sh lib/ /usr/local/bin/\n\
         ENV PATH=/app/bin:$PATH MODE=prod\n\
         WORKDIR /app\n\
         USER app:app\n\
         ENTRYPOINT [\"/app/run\"]\n\
         CMD [\"--serve\"]\n\
         LABEL version=1.0\n",
    );
    assert_eq!(
        file.from,
        Base {
            image: "busybox".into(),
            line: 1,
            text: "FROM busybox".into()
        }
    );
    let got: Vec<(usize, &str, &InstructionKind)> = file
        .instructions
        .iter()
        .map(|i| (i.line, i.text.as_str(), &i.kind))
        .collect();
    let copy = InstructionKind::Copy(CopyArgs {
        chown: Some("app:app".into()),
        sources: vec!["app.sh".into(), "lib/".into()],
        dest: "/usr/local/bin/".into(),
    });
    let env = InstructionKind::Env(pairs(&[("PATH", "/app/bin:$PATH"), ("MODE", "prod")]));
    assert_eq!(
        got,
        vec![
            (
                2,
                "RUN apk add curl && rm -rf /var/cache",
                &InstructionKind::Run(shell("apk add curl && rm -rf /var/cache"))
            ),
            (3, "COPY --chown=app:app app.sh lib/ /usr/local/bin/", &copy),
            (4, "ENV PATH=/app/bin:$PATH MODE=prod", &env),
            (5, "WORKDIR /app", &InstructionKind::Workdir("/app".into())),
            (6, "USER app:app", &InstructionKind::User("app:app".into())),
            (
                7,
                "ENTRYPOINT [\"/app/run\"]",
                &InstructionKind::Entrypoint(exec(&["/app/run"]))
            ),
            (
                8,
                "CMD [\"--serve\"]",
                &InstructionKind::Cmd(exec(&["--serve"]))
            ),
            (
                9,
                "LABEL version=1.0",
                &InstructionKind::Label(pairs(&[("version", "1.0")]))
            ),
        ]
    );
}

#[test]
fn instruction_names_are_case_insensitive_and_may_be_indented() {
    let file = parsed("from busybox\n   run echo hi\n\tCmd [\"sh\"]\nWorkDir /x\n");
    assert_eq!(file.from.image, "busybox");
    assert_eq!(file.from.text, "from busybox");
    let got: Vec<_> = file
        .instructions
        .iter()
        .map(|i| (i.line, i.text.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![(2, "run echo hi"), (3, "Cmd [\"sh\"]"), (4, "WorkDir /x")]
    );
    assert_eq!(
        file.instructions[0].kind,
        InstructionKind::Run(shell("echo hi"))
    );
}

#[test]
fn comments_and_blank_lines_are_skipped() {
    let file = parsed(
        "# a comment\n\
         \n\
         FROM busybox\n\
         \x20\x20# an indented comment\n\
         \t\n\
         RUN true # not a comment: the shell sees it\n",
    );
    assert_eq!(file.from.line, 3);
    assert_eq!(file.instructions.len(), 1);
    assert_eq!(file.instructions[0].line, 6);
    assert_eq!(
        file.instructions[0].kind,
        InstructionKind::Run(shell("true # not a comment: the shell sees it"))
    );
}

#[test]
fn windows_line_endings_and_a_byte_order_mark() {
    let file = parsed("\u{feff}FROM busybox\r\nRUN a \\\r\n  b\r\n");
    assert_eq!(file.from.image, "busybox");
    assert_eq!(
        file.instructions[0].kind,
        InstructionKind::Run(shell("a   b"))
    );
}

// ---- continuations ----------------------------------------------------------------------

#[test]
fn continuation_joins_lines_keeping_their_indentation() {
    let file = parsed("FROM busybox\nRUN apk add curl \\\n    && rm -rf /var/cache\nCMD sh\n");
    let run = &file.instructions[0];
    assert_eq!(run.line, 2);
    assert_eq!(run.text, "RUN apk add curl     && rm -rf /var/cache");
    assert_eq!(
        run.kind,
        InstructionKind::Run(shell("apk add curl     && rm -rf /var/cache"))
    );
    assert_eq!(file.instructions[1].line, 4);
}

#[test]
fn continuation_allows_spaces_after_the_backslash_and_glues_words() {
    // Docker strips the backslash and what follows it, and adds no space.
    assert_eq!(
        kind("RUN echo a\\  \t\nb"),
        InstructionKind::Run(shell("echo ab"))
    );
}

#[test]
fn comments_and_empty_lines_inside_a_continuation_are_skipped() {
    let file = parsed(
        "FROM busybox\n\
         RUN apk add \\\n\
         # the HTTP client\n\
         \x20\x20\x20\x20# indented, still a comment\n\
         \n\
         \x20\x20curl \\\n\
         \x20\x20jq\n\
         USER nobody\n",
    );
    assert_eq!(
        file.instructions[0].kind,
        InstructionKind::Run(shell("apk add   curl   jq"))
    );
    assert_eq!(file.instructions[0].line, 2);
    assert_eq!(file.instructions[1].line, 8);
}

#[test]
fn continuation_on_the_last_line_ends_the_instruction() {
    assert_eq!(
        kind("RUN echo done \\"),
        InstructionKind::Run(shell("echo done"))
    );
}

#[test]
fn continued_instruction_name() {
    assert_eq!(
        kind("RUN \\\n  echo hi"),
        InstructionKind::Run(shell("echo hi"))
    );
}

// ---- exec and shell forms ---------------------------------------------------------------

#[test]
fn run_exec_and_shell_forms() {
    assert_eq!(
        kind("RUN [\"sh\", \"-c\", \"x\"]"),
        InstructionKind::Run(exec(&["sh", "-c", "x"]))
    );
    assert_eq!(
        kind("RUN   [\"echo\",\"a b\"]"),
        InstructionKind::Run(exec(&["echo", "a b"]))
    );
    assert_eq!(kind("RUN a && b"), InstructionKind::Run(shell("a && b")));
    // JSON escapes are JSON's.
    assert_eq!(
        kind(r#"RUN ["echo", "\"q\"\tt\u00e9"]"#),
        InstructionKind::Run(exec(&["echo", "\"q\"\tté"]))
    );
}

#[test]
fn cmd_and_entrypoint_forms() {
    assert_eq!(
        kind("CMD [\"exec_cmd\", \"p1_cmd\"]"),
        InstructionKind::Cmd(exec(&["exec_cmd", "p1_cmd"]))
    );
    assert_eq!(
        kind("CMD exec_cmd p1_cmd"),
        InstructionKind::Cmd(shell("exec_cmd p1_cmd"))
    );
    assert_eq!(kind("CMD []"), InstructionKind::Cmd(exec(&[])));
    assert_eq!(
        kind("ENTRYPOINT [\"top\", \"-b\"]"),
        InstructionKind::Entrypoint(exec(&["top", "-b"]))
    );
    assert_eq!(
        kind("ENTRYPOINT top -b"),
        InstructionKind::Entrypoint(shell("top -b"))
    );
    assert_eq!(
        kind("ENTRYPOINT []"),
        InstructionKind::Entrypoint(exec(&[]))
    );
}

#[test]
fn malformed_json_falls_back_to_the_shell_form() {
    // Docker's well-known trap: single quotes are not JSON, so this runs `/bin/sh -c "['a']"`.
    assert_eq!(
        kind("RUN ['echo', 'hi']"),
        InstructionKind::Run(shell("['echo', 'hi']"))
    );
    assert_eq!(
        kind("CMD [\"a\",]"),
        InstructionKind::Cmd(shell("[\"a\",]"))
    );
    assert_eq!(
        kind("CMD [\"a\"] extra"),
        InstructionKind::Cmd(shell("[\"a\"] extra"))
    );
    assert_eq!(
        kind("ENTRYPOINT [unquoted]"),
        InstructionKind::Entrypoint(shell("[unquoted]"))
    );
    // [ then a test, a real shell command.
    assert_eq!(
        kind("RUN [ -f /etc/os-release ]"),
        InstructionKind::Run(shell("[ -f /etc/os-release ]"))
    );
}

#[test]
fn a_json_array_of_something_else_than_strings_is_an_error() {
    assert_eq!(
        error_after_from("RUN [\"sleep\", 1]"),
        ParseErrorKind::NotStringArray("RUN")
    );
    assert_eq!(
        error_after_from("CMD [null]"),
        ParseErrorKind::NotStringArray("CMD")
    );
    assert_eq!(
        error_after_from("COPY [\"a\", [\"b\"]]"),
        ParseErrorKind::NotStringArray("COPY")
    );
}

#[test]
fn run_and_cmd_are_never_substituted() {
    assert_eq!(
        kind("RUN echo \"$HOME\" '${X:-y}'"),
        InstructionKind::Run(shell("echo \"$HOME\" '${X:-y}'"))
    );
    assert_eq!(
        kind("CMD [\"echo\", \"$HOME\"]"),
        InstructionKind::Cmd(exec(&["echo", "$HOME"]))
    );
}

// ---- COPY -------------------------------------------------------------------------------

#[test]
fn copy_shell_and_json_forms() {
    let copy = |sources: &[&str], dest: &str| {
        InstructionKind::Copy(CopyArgs {
            chown: None,
            sources: sources.iter().map(|s| s.to_string()).collect(),
            dest: dest.to_string(),
        })
    };
    assert_eq!(kind("COPY a.txt /dst/"), copy(&["a.txt"], "/dst/"));
    assert_eq!(kind("COPY a  b\tc ./"), copy(&["a", "b", "c"], "./"));
    assert_eq!(kind("COPY [\"a b\", \"/dst/\"]"), copy(&["a b"], "/dst/"));
    assert_eq!(
        kind("COPY [\"x\", \"y\", \"/my dir/\"]"),
        copy(&["x", "y"], "/my dir/")
    );
    // Variables stay as written: the builder substitutes them.
    assert_eq!(
        kind("COPY $SRC ${DEST:-/opt}/"),
        copy(&["$SRC"], "${DEST:-/opt}/")
    );
}

#[test]
fn copy_chown() {
    let InstructionKind::Copy(args) = kind("COPY --chown=1000:1000 a /b") else {
        panic!()
    };
    assert_eq!(args.chown.as_deref(), Some("1000:1000"));
    let InstructionKind::Copy(args) = kind("COPY --chown=${APP_USER} [\"a\", \"/b\"]") else {
        panic!()
    };
    assert_eq!(
        (args.chown.as_deref(), args.dest.as_str()),
        (Some("${APP_USER}"), "/b")
    );
    let InstructionKind::Copy(args) = kind("COPY --chown= a /b") else {
        panic!()
    };
    assert_eq!(
        args.chown, None,
        "an empty --chown changes nothing, as in docker"
    );
    let InstructionKind::Copy(args) = kind("COPY -- --weird-name /b") else {
        panic!()
    };
    assert_eq!(args.sources, vec!["--weird-name".to_string()]);
}

#[test]
fn copy_errors() {
    let missing = ParseErrorKind::MissingArguments {
        instruction: "COPY",
        usage: "at least one source and a destination, as in COPY app.sh /usr/local/bin/",
    };
    assert_eq!(error_after_from("COPY only-one"), missing);
    assert_eq!(error_after_from("COPY"), missing);
    assert_eq!(error_after_from("COPY [\"only-one\"]"), missing);
    assert_eq!(
        error_after_from("COPY --chown a /b"),
        ParseErrorKind::ChownValue
    );
    assert_eq!(
        error_after_from("COPY --chown=a --chown=b x /y"),
        ParseErrorKind::DuplicateChown
    );
    assert_eq!(
        error_after_from("COPY --from=builder /out /out"),
        ParseErrorKind::CopyFrom
    );
    assert_eq!(
        error_after_from("COPY --chmod=755 a /b"),
        ParseErrorKind::UnsupportedFlag {
            instruction: "COPY",
            flag: "--chmod=755".into()
        }
    );
    assert_eq!(
        error_after_from("COPY <<EOF /x"),
        ParseErrorKind::Heredoc("<<EOF".into())
    );
}

#[test]
fn copy_shell_form_does_not_group_quoted_words() {
    // As in docker: the shell form splits at whitespace, so the quote is left open.
    let e = error("FROM busybox\nCOPY \"a b\" /dst/\n");
    assert_eq!(
        e.to_string(),
        "line 2: COPY: unterminated \" quote in \"\\\"a\" (COPY splits its arguments at spaces; \
         write COPY [\"a b\", \"/dest/\"] for paths with spaces)"
    );
}

// ---- ENV and LABEL ----------------------------------------------------------------------

#[test]
fn env_name_value_pairs_keep_their_quotes_for_substitution() {
    assert_eq!(
        kind(r#"ENV A=1 B="hello world" C=a\ b D='x y' E="" F="$A"x"#),
        InstructionKind::Env(pairs(&[
            ("A", "1"),
            ("B", "\"hello world\""),
            ("C", "a\\ b"),
            ("D", "'x y'"),
            ("E", "\"\""),
            ("F", "\"$A\"x"),
        ]))
    );
    // What the builder then makes of them.
    let env = pairs(&[("A", "1")]);
    let values: Vec<String> =
        match kind(r#"ENV B="hello world" C=a\ b D='x $A' E="" F="$A"x G=\$A"#) {
            InstructionKind::Env(list) => list.iter().map(|(_, v)| substitute(v, &env)).collect(),
            other => panic!("{other:?}"),
        };
    assert_eq!(values, vec!["hello world", "a b", "x $A", "", "1x", "$A"]);
}

#[test]
fn env_value_may_be_empty_or_hold_equals() {
    assert_eq!(
        kind("ENV A= B=x=y"),
        InstructionKind::Env(pairs(&[("A", ""), ("B", "x=y")]))
    );
}

#[test]
fn env_legacy_syntax_takes_the_rest_of_the_line() {
    assert_eq!(
        kind("ENV GREETING hello  big \"world\""),
        InstructionKind::Env(pairs(&[("GREETING", "hello  big \"world\"")]))
    );
    assert_eq!(
        kind("ENV A b=c"),
        InstructionKind::Env(pairs(&[("A", "b=c")]))
    );
    assert_eq!(substitute("hello  big \"world\"", &[]), "hello  big world");
}

#[test]
fn env_over_continued_lines() {
    assert_eq!(
        kind("ENV A=1 \\\n    B=2"),
        InstructionKind::Env(pairs(&[("A", "1"), ("B", "2")]))
    );
}

#[test]
fn env_errors() {
    assert_eq!(
        error_after_from("ENV A=1 B"),
        ParseErrorKind::MissingEquals {
            instruction: "ENV",
            word: "B".into()
        }
    );
    assert_eq!(error_after_from("ENV =x"), ParseErrorKind::BlankName("ENV"));
    assert_eq!(
        error_after_from("ENV ALONE"),
        ParseErrorKind::MissingArguments {
            instruction: "ENV",
            usage: "a value: NAME=VALUE (or the legacy NAME VALUE)",
        }
    );
    assert_eq!(
        error_after_from("ENV"),
        ParseErrorKind::MissingArguments {
            instruction: "ENV",
            usage: "NAME=VALUE ..., as in ENV PATH=/app/bin:$PATH",
        }
    );
    assert_eq!(
        error_after_from("ENV A=\"open"),
        ParseErrorKind::BadWord {
            instruction: "ENV",
            word: "\"open".into(),
            error: WordError::UnterminatedQuote('"'),
        }
    );
}

#[test]
fn label_both_syntaxes_and_quoted_names() {
    assert_eq!(
        kind(r#"LABEL "com.example.vendor"="ACME Incorporated" version=1.0"#),
        InstructionKind::Label(pairs(&[
            ("\"com.example.vendor\"", "\"ACME Incorporated\""),
            ("version", "1.0")
        ]))
    );
    assert_eq!(
        substitute("\"com.example.vendor\"", &[]),
        "com.example.vendor"
    );
    assert_eq!(
        kind("LABEL description This text illustrates"),
        InstructionKind::Label(pairs(&[("description", "This text illustrates")]))
    );
    assert_eq!(
        error_after_from("LABEL =x"),
        ParseErrorKind::BlankName("LABEL")
    );
}

// ---- WORKDIR, USER ----------------------------------------------------------------------

#[test]
fn workdir_and_user_take_the_whole_rest() {
    assert_eq!(
        kind("WORKDIR /my dir"),
        InstructionKind::Workdir("/my dir".into())
    );
    assert_eq!(
        kind("WORKDIR $HOME/src"),
        InstructionKind::Workdir("$HOME/src".into())
    );
    assert_eq!(
        kind("USER 1000:1000"),
        InstructionKind::User("1000:1000".into())
    );
    assert_eq!(
        kind("USER ${APP_USER:-app}"),
        InstructionKind::User("${APP_USER:-app}".into())
    );
    assert!(matches!(
        error_after_from("WORKDIR"),
        ParseErrorKind::MissingArguments { .. }
    ));
    assert!(matches!(
        error_after_from("USER"),
        ParseErrorKind::MissingArguments { .. }
    ));
}

// ---- FROM -------------------------------------------------------------------------------

#[test]
fn from_is_substituted_without_variables() {
    // No ARG in isolab: every variable is unset, so the default applies.
    assert_eq!(parsed("FROM ${BASE:-busybox}").from.image, "busybox");
    assert_eq!(
        parsed("FROM ${BASE:-busybox}").from.text,
        "FROM ${BASE:-busybox}"
    );
    assert_eq!(parsed("FROM debian:12").from.image, "debian:12");
    assert_eq!(
        error("FROM $BASE").kind,
        ParseErrorKind::EmptyBase("$BASE".into())
    );
}

#[test]
fn from_errors() {
    assert_eq!(
        error("FROM busybox AS build\n").kind,
        ParseErrorKind::NamedStage {
            image: "busybox".into(),
            name: "build".into()
        }
    );
    assert_eq!(error("FROM busybox as build\n").line, 1);
    assert_eq!(error("FROM\n").kind, ParseErrorKind::FromArguments);
    assert_eq!(error("FROM a b\n").kind, ParseErrorKind::FromArguments);
    assert_eq!(
        error("FROM --platform=linux/arm64 busybox\n").kind,
        ParseErrorKind::UnsupportedFlag {
            instruction: "FROM",
            flag: "--platform=linux/arm64".into()
        }
    );
    let second = error("FROM busybox\nRUN true\n\nFROM debian\n");
    assert_eq!((second.line, second.kind), (4, ParseErrorKind::SecondFrom));
}

#[test]
fn from_must_come_first() {
    let e = error("# build\nRUN true\nFROM busybox\n");
    assert_eq!(
        (e.line, e.kind.clone()),
        (2, ParseErrorKind::BeforeFrom("RUN"))
    );
    assert_eq!(
        e.to_string(),
        "line 2: RUN before FROM: a Dockerfile starts with FROM IMAGE"
    );
}

#[test]
fn a_file_without_instructions() {
    assert_eq!(error("").kind, ParseErrorKind::Empty);
    let e = error("# nothing\n\n# here\n");
    assert_eq!((e.line, e.kind), (3, ParseErrorKind::Empty));
}

// ---- errors and their lines -------------------------------------------------------------

#[test]
fn unknown_instruction_with_a_suggestion() {
    let e = error("FROM busybox\n\nFORM x\n");
    assert_eq!(e.line, 3);
    assert_eq!(
        e.to_string(),
        "line 3: unknown instruction \"FORM\" (did you mean FROM?)"
    );
    let e = error("FROM busybox\nRUN true\n\nCOPPY a b\n");
    assert_eq!(
        e.to_string(),
        "line 4: unknown instruction \"COPPY\" (did you mean COPY?)"
    );
    let e = error("FROM busybox\nfrobnicate\n");
    assert_eq!(e.to_string(), "line 2: unknown instruction \"frobnicate\"");
}

#[test]
fn unsupported_docker_instructions() {
    let e = error("FROM busybox\nRUN true\nENV A=1\n\nARG VERSION=1\n");
    assert_eq!(
        e.to_string(),
        "line 5: ARG is not supported by isolab build \
         (supported: FROM, RUN, COPY, ENV, WORKDIR, USER, ENTRYPOINT, CMD, LABEL)"
    );
    for name in [
        "add a b",
        "expose 80",
        "VOLUME /data",
        "HEALTHCHECK NONE",
        "SHELL [\"bash\"]",
        "stopsignal 9",
    ] {
        let kind = error_after_from(name);
        assert!(
            matches!(kind, ParseErrorKind::Unsupported(_)),
            "{name}: {kind:?}"
        );
    }
    // Before FROM, the instruction itself is the problem.
    assert_eq!(
        error("ARG BASE=busybox\nFROM $BASE\n").kind,
        ParseErrorKind::Unsupported("ARG".into())
    );
}

#[test]
fn an_error_in_a_continued_instruction_names_its_first_line() {
    let e = error("FROM busybox\nRUN true\nENV A=1 \\\n  B \\\n  C=3\n");
    assert_eq!(
        (e.line, e.kind),
        (
            3,
            ParseErrorKind::MissingEquals {
                instruction: "ENV",
                word: "B".into()
            }
        )
    );
}

#[test]
fn flags_other_than_copy_chown_are_refused() {
    assert_eq!(
        error_after_from("RUN --mount=type=cache,target=/root/.cache pip install x"),
        ParseErrorKind::UnsupportedFlag {
            instruction: "RUN",
            flag: "--mount=type=cache,target=/root/.cache".into()
        }
    );
    assert!(matches!(
        error_after_from("CMD --help"),
        ParseErrorKind::UnsupportedFlag { .. }
    ));
    // `--` ends the flags, as in docker.
    assert_eq!(kind("CMD -- --help"), InstructionKind::Cmd(shell("--help")));
}

#[test]
fn missing_commands() {
    assert!(matches!(
        error_after_from("RUN"),
        ParseErrorKind::MissingArguments {
            instruction: "RUN",
            ..
        }
    ));
    assert!(matches!(
        error_after_from("CMD"),
        ParseErrorKind::MissingArguments {
            instruction: "CMD",
            ..
        }
    ));
    assert!(matches!(
        error_after_from("ENTRYPOINT"),
        ParseErrorKind::MissingArguments {
            instruction: "ENTRYPOINT",
            ..
        }
    ));
    assert_eq!(error_after_from("RUN []"), ParseErrorKind::EmptyRun);
}

#[test]
fn heredocs_are_refused() {
    assert_eq!(
        error_after_from("RUN <<EOF"),
        ParseErrorKind::Heredoc("<<EOF".into())
    );
    assert_eq!(
        error_after_from("RUN cat <<-'END' > /x"),
        ParseErrorKind::Heredoc("<<-'END'".into())
    );
    assert_eq!(
        error_after_from("RUN python3 2<<EOT"),
        ParseErrorKind::Heredoc("2<<EOT".into())
    );
    // Not heredocs: a here-string, a shift, a quoted word.
    assert_eq!(
        kind("RUN cat <<<word"),
        InstructionKind::Run(shell("cat <<<word"))
    );
    assert_eq!(
        kind("RUN echo $((1<<4))"),
        InstructionKind::Run(shell("echo $((1<<4))"))
    );
    assert_eq!(
        kind("RUN echo '<<EOF'"),
        InstructionKind::Run(shell("echo '<<EOF'"))
    );
}

#[test]
fn bad_substitution_syntax_is_reported_with_its_line() {
    let e = error("FROM busybox\nENV A=1\nWORKDIR ${A\n");
    assert_eq!(e.to_string(), "line 3: WORKDIR: missing '}' in \"${A\"");
    assert_eq!(
        error_after_from("USER ${}"),
        ParseErrorKind::BadWord {
            instruction: "USER",
            word: "${}".into(),
            error: WordError::BadSubstitution
        }
    );
    let e = error("FROM busybox\nLABEL x=${A:?required}\n");
    assert_eq!(
        e.to_string(),
        "line 2: LABEL: unsupported substitution ${VAR:?...} (isolab build supports ${VAR}, \
         ${VAR:-default}, ${VAR-default}, ${VAR:+alt} and ${VAR+alt}) in \"${A:?required}\""
    );
    assert_eq!(
        error_after_from("COPY ${SRC#./} /x"),
        ParseErrorKind::BadWord {
            instruction: "COPY",
            word: "${SRC#./}".into(),
            error: WordError::UnsupportedModifier("#".into()),
        }
    );
    assert!(matches!(
        error_after_from("ENV A='x"),
        ParseErrorKind::BadWord { .. }
    ));
}

#[test]
fn parser_directives() {
    assert_eq!(
        parsed("# syntax=docker/dockerfile:1\nFROM busybox\n")
            .from
            .line,
        2
    );
    assert_eq!(parsed("# escape=\\\nFROM busybox\n").from.image, "busybox");
    let e = error("# syntax=docker/dockerfile:1\n# escape=`\nFROM busybox\n");
    assert_eq!(
        (e.line, e.kind),
        (2, ParseErrorKind::EscapeDirective("`".into()))
    );
    // Only at the top: later, it is a comment like any other.
    assert_eq!(parsed("FROM busybox\n# escape=`\n").instructions.len(), 0);
    assert_eq!(parsed("# hello\n# escape=`\nFROM busybox\n").from.line, 3);
}

// ---- substitution -----------------------------------------------------------------------

fn sub(word: &str) -> String {
    let env = pairs(&[
        ("HOME", "/root"),
        ("EMPTY", ""),
        ("NAME", "isolab"),
        ("NAME", "later wins"),
    ]);
    substitute(word, &env)
}

#[test]
fn substitute_variables() {
    assert_eq!(sub("$HOME/src"), "/root/src");
    assert_eq!(sub("${HOME}src"), "/rootsrc");
    assert_eq!(
        sub("$HOMEsrc"),
        "",
        "the name runs as far as letters, digits and _ go"
    );
    assert_eq!(sub("a${UNSET}b$UNSET"), "ab");
    assert_eq!(sub("$NAME"), "later wins");
    assert_eq!(sub("${HOME}/${NAME}"), "/root/later wins");
}

#[test]
fn substitute_defaults_and_alternatives() {
    assert_eq!(sub("${UNSET:-/opt}"), "/opt");
    assert_eq!(sub("${EMPTY:-/opt}"), "/opt");
    assert_eq!(sub("${HOME:-/opt}"), "/root");
    assert_eq!(sub("${UNSET-/opt}"), "/opt");
    assert_eq!(
        sub("${EMPTY-/opt}"),
        "",
        "without the colon, empty counts as set"
    );
    assert_eq!(sub("${HOME:+set}"), "set");
    assert_eq!(sub("${EMPTY:+set}"), "");
    assert_eq!(sub("${UNSET:+set}"), "");
    assert_eq!(sub("${EMPTY+set}"), "set");
    assert_eq!(sub("${UNSET+set}"), "");
    assert_eq!(
        sub("${UNSET:-${HOME}/x}"),
        "/root/x",
        "the default is itself substituted"
    );
    assert_eq!(sub("${UNSET:-'a b'}"), "a b");
    assert_eq!(sub("${UNSET:-a\\}b}"), "a}b");
}

#[test]
fn substitute_escapes_and_quotes() {
    assert_eq!(sub("\\$HOME"), "$HOME");
    assert_eq!(sub("\\${HOME}"), "${HOME}");
    assert_eq!(
        sub("'$HOME'"),
        "$HOME",
        "nothing is substituted in single quotes"
    );
    assert_eq!(sub("\"$HOME\""), "/root");
    assert_eq!(
        sub("\"\\$HOME \\\" \\\\ \\n\""),
        "$HOME \" \\ \\n",
        "in double quotes only \\$ \\\" \\\\ escape"
    );
    assert_eq!(
        sub("a\\ b\\n"),
        "a bn",
        "outside quotes a backslash escapes anything"
    );
    assert_eq!(sub("\"it's\""), "it's");
    assert_eq!(sub("'say \"hi\"'"), "say \"hi\"");
    assert_eq!(sub("trailing\\"), "trailing");
}

#[test]
fn substitute_leaves_a_lone_dollar() {
    assert_eq!(sub("$"), "$");
    assert_eq!(sub("a$ b"), "a$ b");
    assert_eq!(sub("cost$/kg"), "cost$/kg");
    assert_eq!(
        sub("$1$$"),
        "",
        "positional and special parameters are unset"
    );
}

#[test]
fn substitute_keeps_spaces_and_returns_a_broken_word_as_written() {
    assert_eq!(sub("  a  b  "), "  a  b  ");
    assert_eq!(sub("${HOME"), "${HOME");
    assert_eq!(sub("\"open"), "\"open");
}
