//! Tests for the image settings a build evolves and for docker's ENTRYPOINT/CMD rules.

use super::*;
use crate::build::dockerfile::parse;

/// What a container of these settings runs, as the runtime asks [`command_line`].
trait Runs {
    fn command_line(
        &self,
        run_args: &[String],
        entrypoint_override: Option<&[String]>,
    ) -> Result<Vec<String>, CommandError>;
}

impl Runs for ImageSettings {
    fn command_line(
        &self,
        run_args: &[String],
        entrypoint_override: Option<&[String]>,
    ) -> Result<Vec<String>, CommandError> {
        command_line(
            self.entrypoint.as_deref(),
            self.cmd.as_deref(),
            run_args,
            entrypoint_override,
        )
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The settings after applying every instruction of `text` to `base`.
fn settings_from(base: ImageSettings, text: &str) -> ImageSettings {
    let file = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    let mut settings = BuildSettings::from_base(base);
    for instruction in &file.instructions {
        settings
            .apply(instruction)
            .unwrap_or_else(|e| panic!("{}: {e}", instruction.text));
    }
    settings.image
}

fn settings(after_from: &str) -> ImageSettings {
    settings_from(
        ImageSettings::default(),
        &format!("FROM busybox\n{after_from}"),
    )
}

/// What `docker run IMAGE` runs for an image built from these lines.
fn runs(after_from: &str) -> Result<Vec<String>, CommandError> {
    settings(after_from).command_line(&[], None)
}

fn apply_error(base: ImageSettings, after_from: &str) -> CommandError {
    let file = parse(&format!("FROM busybox\n{after_from}")).unwrap_or_else(|e| panic!("{e}"));
    let mut settings = BuildSettings::from_base(base);
    for instruction in &file.instructions {
        if let Err(e) = settings.apply(instruction) {
            return e;
        }
    }
    panic!("{after_from:?} should fail: {settings:?}")
}

#[test]
fn to_argv_keeps_the_exec_form_and_wraps_the_shell_form() {
    assert_eq!(
        to_argv(&Form::Exec(strings(&["top", "-b"]))),
        strings(&["top", "-b"])
    );
    assert_eq!(to_argv(&Form::Exec(vec![])), Vec::<String>::new());
    assert_eq!(
        to_argv(&Form::Shell("echo $HOME && ls".into())),
        strings(&["/bin/sh", "-c", "echo $HOME && ls"])
    );
}

// ---- docker's table: "Understand how CMD and ENTRYPOINT interact" ---------------------
//
// https://docs.docker.com/reference/dockerfile/#understand-how-cmd-and-entrypoint-interact
//
// |                                | No ENTRYPOINT              | ENTRYPOINT exec_entry p1_entry | ENTRYPOINT ["exec_entry", "p1_entry"]          |
// | No CMD                         | error, not allowed         | /bin/sh -c exec_entry p1_entry | exec_entry p1_entry                            |
// | CMD ["exec_cmd", "p1_cmd"]     | exec_cmd p1_cmd            | /bin/sh -c exec_entry p1_entry | exec_entry p1_entry exec_cmd p1_cmd            |
// | CMD exec_cmd p1_cmd            | /bin/sh -c exec_cmd p1_cmd | /bin/sh -c exec_entry p1_entry | exec_entry p1_entry /bin/sh -c exec_cmd p1_cmd |
//
// The middle column: docker shows `/bin/sh -c exec_entry p1_entry` in every row, and that is
// what runs, but the argv is not those four words alone. The shell-form ENTRYPOINT is stored
// as ["/bin/sh", "-c", "exec_entry p1_entry"] and CMD is still appended to it, so the process
// is `/bin/sh -c "exec_entry p1_entry" exec_cmd p1_cmd`. `sh -c STRING ARGS...` runs STRING
// and makes ARGS its $0, $1...; STRING never mentions them, so CMD has no effect, exactly as
// the table says ("CMD is ignored" in practice). The tests assert the real argv.

const EXEC_ENTRY: &str = "ENTRYPOINT [\"exec_entry\", \"p1_entry\"]\n";
const SHELL_ENTRY: &str = "ENTRYPOINT exec_entry p1_entry\n";
const EXEC_CMD: &str = "CMD [\"exec_cmd\", \"p1_cmd\"]\n";
const SHELL_CMD: &str = "CMD exec_cmd p1_cmd\n";

#[test]
fn table_no_entrypoint() {
    assert_eq!(runs(""), Err(CommandError::NoCommand));
    assert_eq!(runs(EXEC_CMD).unwrap(), strings(&["exec_cmd", "p1_cmd"]));
    assert_eq!(
        runs(SHELL_CMD).unwrap(),
        strings(&["/bin/sh", "-c", "exec_cmd p1_cmd"])
    );
}

#[test]
fn table_shell_form_entrypoint() {
    let sh_entry = ["/bin/sh", "-c", "exec_entry p1_entry"];
    assert_eq!(runs(SHELL_ENTRY).unwrap(), strings(&sh_entry));
    // CMD is appended, and sh ignores it: see the comment above the table.
    assert_eq!(
        runs(&format!("{SHELL_ENTRY}{EXEC_CMD}")).unwrap(),
        strings(&[&sh_entry[..], &["exec_cmd", "p1_cmd"]].concat())
    );
    assert_eq!(
        runs(&format!("{SHELL_ENTRY}{SHELL_CMD}")).unwrap(),
        strings(&[&sh_entry[..], &["/bin/sh", "-c", "exec_cmd p1_cmd"]].concat())
    );
}

#[test]
fn table_exec_form_entrypoint() {
    assert_eq!(
        runs(EXEC_ENTRY).unwrap(),
        strings(&["exec_entry", "p1_entry"])
    );
    assert_eq!(
        runs(&format!("{EXEC_ENTRY}{EXEC_CMD}")).unwrap(),
        strings(&["exec_entry", "p1_entry", "exec_cmd", "p1_cmd"])
    );
    assert_eq!(
        runs(&format!("{EXEC_ENTRY}{SHELL_CMD}")).unwrap(),
        strings(&["exec_entry", "p1_entry", "/bin/sh", "-c", "exec_cmd p1_cmd"])
    );
}

#[test]
fn table_cells_do_not_depend_on_the_order_of_entrypoint_and_cmd() {
    for entry in [EXEC_ENTRY, SHELL_ENTRY] {
        for cmd in [EXEC_CMD, SHELL_CMD] {
            assert_eq!(
                runs(&format!("{entry}{cmd}")),
                runs(&format!("{cmd}{entry}")),
                "{entry}{cmd}"
            );
        }
    }
}

#[test]
fn the_image_config_holds_what_docker_stores() {
    let s = settings(&format!("{SHELL_ENTRY}{SHELL_CMD}"));
    assert_eq!(
        s.entrypoint,
        Some(strings(&["/bin/sh", "-c", "exec_entry p1_entry"]))
    );
    assert_eq!(s.cmd, Some(strings(&["/bin/sh", "-c", "exec_cmd p1_cmd"])));
}

// ---- run arguments and --entrypoint -----------------------------------------------------

#[test]
fn run_arguments_replace_cmd() {
    let args = strings(&["echo", "hi"]);
    let run = |lines: &str| settings(lines).command_line(&args, None).unwrap();
    assert_eq!(run(EXEC_CMD), strings(&["echo", "hi"]));
    assert_eq!(run(""), strings(&["echo", "hi"]));
    assert_eq!(
        run(&format!("{EXEC_ENTRY}{EXEC_CMD}")),
        strings(&["exec_entry", "p1_entry", "echo", "hi"])
    );
    // With a shell-form ENTRYPOINT the arguments go to sh as $0 $1, ignored like CMD.
    assert_eq!(
        run(&format!("{SHELL_ENTRY}{EXEC_CMD}")),
        strings(&["/bin/sh", "-c", "exec_entry p1_entry", "echo", "hi"])
    );
}

#[test]
fn entrypoint_flag_replaces_entrypoint_and_drops_cmd() {
    let s = settings(&format!("{EXEC_ENTRY}{EXEC_CMD}"));
    let sh = strings(&["sh"]);
    assert_eq!(s.command_line(&[], Some(&sh)).unwrap(), strings(&["sh"]));
    assert_eq!(
        s.command_line(&strings(&["-c", "id"]), Some(&sh)).unwrap(),
        strings(&["sh", "-c", "id"])
    );
    // Even without an ENTRYPOINT in the image, --entrypoint drops its CMD.
    let s = settings(EXEC_CMD);
    assert_eq!(s.command_line(&[], Some(&sh)).unwrap(), strings(&["sh"]));
}

#[test]
fn empty_entrypoint_flag_clears_entrypoint_and_still_drops_cmd() {
    let s = settings(&format!("{EXEC_ENTRY}{EXEC_CMD}"));
    for cleared in [vec![], strings(&[""])] {
        assert_eq!(
            s.command_line(&[], Some(&cleared)),
            Err(CommandError::NoCommand)
        );
        assert_eq!(
            s.command_line(&strings(&["ls", "/"]), Some(&cleared))
                .unwrap(),
            strings(&["ls", "/"])
        );
    }
}

#[test]
fn command_line_takes_plain_slices() {
    let entry = strings(&["/docker-entrypoint.sh"]);
    let cmd = strings(&["nginx", "-g", "daemon off;"]);
    assert_eq!(
        command_line(Some(&entry), Some(&cmd), &[], None).unwrap(),
        strings(&["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"])
    );
    assert_eq!(
        command_line(None, None, &[], None),
        Err(CommandError::NoCommand)
    );
    assert_eq!(
        command_line(Some(&[]), Some(&[]), &[], None),
        Err(CommandError::NoCommand)
    );
    assert_eq!(
        CommandError::NoCommand.to_string(),
        "no command: the image has no ENTRYPOINT or CMD and none was given"
    );
}

// ---- ENTRYPOINT resetting CMD -----------------------------------------------------------

fn base_with_cmd() -> ImageSettings {
    ImageSettings {
        cmd: Some(strings(&["sh"])),
        ..ImageSettings::default()
    }
}

#[test]
fn entrypoint_resets_a_cmd_inherited_from_the_base_image() {
    let s = settings_from(base_with_cmd(), &format!("FROM busybox\n{EXEC_ENTRY}"));
    assert_eq!(s.cmd, None);
    assert_eq!(
        s.command_line(&[], None).unwrap(),
        strings(&["exec_entry", "p1_entry"])
    );
}

#[test]
fn entrypoint_keeps_a_cmd_set_earlier_in_the_same_dockerfile() {
    let s = settings_from(
        base_with_cmd(),
        &format!("FROM busybox\n{EXEC_CMD}{EXEC_ENTRY}"),
    );
    assert_eq!(s.cmd, Some(strings(&["exec_cmd", "p1_cmd"])));
}

#[test]
fn cmd_after_entrypoint_sets_cmd_again() {
    let s = settings_from(
        base_with_cmd(),
        &format!("FROM busybox\n{EXEC_ENTRY}{EXEC_CMD}"),
    );
    assert_eq!(s.cmd, Some(strings(&["exec_cmd", "p1_cmd"])));
}

#[test]
fn a_base_image_entrypoint_keeps_working_with_a_new_cmd() {
    let base = ImageSettings {
        entrypoint: Some(strings(&["/entry"])),
        ..ImageSettings::default()
    };
    let s = settings_from(base, &format!("FROM busybox\n{EXEC_CMD}"));
    assert_eq!(
        s.command_line(&[], None).unwrap(),
        strings(&["/entry", "exec_cmd", "p1_cmd"])
    );
}

#[test]
fn empty_exec_forms() {
    let base = ImageSettings {
        entrypoint: Some(strings(&["/entry"])),
        cmd: Some(strings(&["sh"])),
        ..ImageSettings::default()
    };
    let s = settings_from(base.clone(), "FROM busybox\nENTRYPOINT []\n");
    assert_eq!(
        (s.entrypoint, s.cmd),
        (None, None),
        "ENTRYPOINT [] unsets it (and resets the base CMD)"
    );
    let s = settings_from(base, "FROM busybox\nCMD []\n");
    assert_eq!(s.cmd, Some(vec![]));
    assert_eq!(s.command_line(&[], None).unwrap(), strings(&["/entry"]));
}

// ---- ENV --------------------------------------------------------------------------------

#[test]
fn env_replaces_in_place_or_appends() {
    let base = ImageSettings {
        env: strings(&["PATH=/bin", "TERM=xterm"]),
        ..ImageSettings::default()
    };
    let s = settings_from(
        base,
        "FROM busybox\nENV PATH=/app:$PATH NEW=1\nENV TERM vt100\n",
    );
    assert_eq!(s.env, strings(&["PATH=/app:/bin", "TERM=vt100", "NEW=1"]));
}

#[test]
fn env_pairs_of_one_instruction_see_the_environment_from_before_it() {
    // The example of docker's "Environment replacement" section.
    let s = settings("ENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n");
    assert_eq!(s.env, strings(&["abc=bye", "def=hello", "ghi=bye"]));
}

#[test]
fn env_quotes_escapes_and_names() {
    let s = settings(
        "ENV NAME=\"John Doe\" DIR=my\\ dir SINGLE='$NAME' ESCAPED=\\$NAME\nENV ${NAME:+X}Y=1\n",
    );
    assert_eq!(
        s.env,
        strings(&[
            "NAME=John Doe",
            "DIR=my dir",
            "SINGLE=$NAME",
            "ESCAPED=$NAME",
            "XY=1"
        ])
    );
    assert_eq!(
        BuildSettings::from_base(s).substitute("${DIR}/x"),
        "my dir/x"
    );
}

#[test]
fn env_name_that_substitution_breaks() {
    assert_eq!(
        apply_error(ImageSettings::default(), "ENV $UNSET=1"),
        CommandError::BadName {
            line: 2,
            instruction: "ENV",
            word: "$UNSET".into(),
            name: String::new()
        }
    );
    let base = ImageSettings {
        env: strings(&["EQ=a=b"]),
        ..ImageSettings::default()
    };
    assert!(matches!(
        apply_error(base, "ENV ${EQ}=1"),
        CommandError::BadName { .. }
    ));
}

#[test]
fn env_pairs_read_entries_without_equals_as_empty() {
    let s = BuildSettings::from_base(ImageSettings {
        env: strings(&["A=1=2", "FLAG"]),
        ..ImageSettings::default()
    });
    assert_eq!(
        s.env_pairs(),
        vec![
            ("A".to_string(), "1=2".to_string()),
            ("FLAG".to_string(), String::new())
        ]
    );
}

// ---- WORKDIR, USER, LABEL, RUN, COPY ------------------------------------------------------

#[test]
fn workdir_builds_on_the_previous_one_and_is_cleaned() {
    // The example of docker's WORKDIR section: /a, b, c gives /a/b/c.
    assert_eq!(
        settings("WORKDIR /a\nWORKDIR b\nWORKDIR c\n")
            .workdir
            .as_deref(),
        Some("/a/b/c")
    );
    assert_eq!(
        settings("WORKDIR app").workdir.as_deref(),
        Some("/app"),
        "relative to /"
    );
    assert_eq!(
        settings("WORKDIR /a/b\nWORKDIR ../c/./d/")
            .workdir
            .as_deref(),
        Some("/a/c/d")
    );
    assert_eq!(
        settings("WORKDIR /a\nWORKDIR /x//y").workdir.as_deref(),
        Some("/x/y")
    );
    assert_eq!(settings("WORKDIR /../..").workdir.as_deref(), Some("/"));
    assert_eq!(
        settings("WORKDIR \"/my dir\"").workdir.as_deref(),
        Some("/my dir")
    );
}

#[test]
fn workdir_substitutes_the_environment_so_far() {
    let base = ImageSettings {
        env: strings(&["HOME=/root"]),
        ..ImageSettings::default()
    };
    let s = settings_from(
        base,
        "FROM busybox\nENV DIRPATH=/path\nWORKDIR $DIRPATH/$DIRNAME\nWORKDIR ${HOME}\n",
    );
    assert_eq!(s.workdir.as_deref(), Some("/root"));
    let s = settings("ENV DIRPATH=/path\nWORKDIR $DIRPATH/$DIRNAME");
    // DIRNAME is unset, so it is empty (BuildKit's lexer); the path is then cleaned.
    assert_eq!(s.workdir.as_deref(), Some("/path"));
}

#[test]
fn workdir_that_substitution_empties() {
    assert_eq!(
        apply_error(ImageSettings::default(), "WORKDIR $UNSET"),
        CommandError::EmptyWorkdir {
            line: 2,
            word: "$UNSET".into()
        }
    );
}

#[test]
fn user_is_substituted_and_empty_means_root() {
    let s = settings("ENV APP=web\nUSER ${APP}:${APP}");
    assert_eq!(s.user.as_deref(), Some("web:web"));
    let base = ImageSettings {
        user: Some("nobody".into()),
        ..ImageSettings::default()
    };
    assert_eq!(
        settings_from(base, "FROM busybox\nUSER $UNSET\n").user,
        None
    );
}

#[test]
fn labels_are_substituted_and_later_ones_win() {
    let s = settings(
        "ENV V=1.2\nLABEL \"com.example.vendor\"=\"ACME Incorporated\" version=$V\n\
         LABEL version=2\nLABEL description \"\"\n",
    );
    let labels: Vec<(&str, &str)> = s
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        labels,
        vec![
            ("com.example.vendor", "ACME Incorporated"),
            ("description", ""),
            ("version", "2")
        ]
    );
}

#[test]
fn run_and_copy_leave_the_settings_alone() {
    let before = settings("ENV A=1\nWORKDIR /w");
    let after = settings("ENV A=1\nWORKDIR /w\nRUN echo hi\nCOPY a b\n");
    assert_eq!(before, after);
}

#[test]
fn apply_errors_name_their_line() {
    let e = apply_error(ImageSettings::default(), "ENV A=1\n\nWORKDIR ${NOPE}");
    assert_eq!(
        e.to_string(),
        "line 4: WORKDIR ${NOPE} is empty once its variables are substituted"
    );
}
