//! Reading a lesson folder: `lesson.toml`, an optional `intro.md`, and `steps/*.md` (a TOML
//! header between `+++` lines, then Markdown), in file-name order.

use std::collections::BTreeMap;
use std::path::Path;

use isolab_shared::spec::ContainerSpec;
use serde::Deserialize;

use super::{Action, Check, Expr, Lesson, LessonError, Step};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LessonFile {
    title: String,
    summary: String,
    #[serde(default)]
    order: i64,
    #[serde(default = "default_image")]
    image: String,
    #[serde(default, rename = "container")]
    containers: Vec<toml::Table>,
}

fn default_image() -> String {
    "busybox".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepHeader {
    title: String,
    #[serde(default)]
    hint: String,
    check: CheckEntry,
    #[serde(default)]
    solve: Vec<ActionEntry>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CheckEntry {
    Condition(String),
    Script { container: String, script: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionEntry {
    exec: Option<String>,
    script: Option<String>,
    create: Option<toml::Table>,
    remove: Option<String>,
    build: Option<BuildEntry>,
    move_interface: Option<MoveEntry>,
    wait: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BuildEntry {
    name: String,
    dockerfile: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveEntry {
    interface: String,
    from: String,
    to: String,
}

/// The lessons of a folder: each sub-folder with a `lesson.toml`.
pub fn read_dir(dir: &Path) -> Result<Vec<Lesson>, LessonError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LessonError::Io { path, source }
    };
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .collect::<Result<_, _>>()
        .map_err(io(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let folder = entry.path();
        if !folder.join("lesson.toml").is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().to_string();
        let mut files = BTreeMap::new();
        for rel in ["lesson.toml", "intro.md"] {
            let path = folder.join(rel);
            if path.is_file() {
                files.insert(
                    rel.to_string(),
                    std::fs::read_to_string(&path).map_err(io(&path))?,
                );
            }
        }
        let steps = folder.join("steps");
        if steps.is_dir() {
            for step in std::fs::read_dir(&steps).map_err(io(&steps))? {
                let path = step.map_err(io(&steps))?.path();
                if path.extension().is_some_and(|e| e == "md") {
                    let rel = format!(
                        "steps/{}",
                        path.file_name().unwrap_or_default().to_string_lossy()
                    );
                    files.insert(rel, std::fs::read_to_string(&path).map_err(io(&path))?);
                }
            }
        }
        out.push(parse(&name, &files)?);
    }
    Ok(out)
}

/// A lesson from its files (paths relative to its folder).
pub fn parse(name: &str, files: &BTreeMap<String, String>) -> Result<Lesson, LessonError> {
    let invalid = |file: &str, why: String| LessonError::Invalid {
        lesson: name.to_string(),
        file: file.to_string(),
        why,
    };
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !name_ok {
        return Err(invalid(
            ".",
            "a lesson's folder name is lowercase letters, digits and '-'".into(),
        ));
    }
    let toml_text = files
        .get("lesson.toml")
        .ok_or_else(|| invalid("lesson.toml", "missing".into()))?;
    let file: LessonFile =
        toml::from_str(toml_text).map_err(|e| invalid("lesson.toml", e.to_string()))?;
    let mut containers = Vec::new();
    for table in file.containers {
        let spec = container_spec(table, &file.image)
            .map_err(|why| invalid("lesson.toml", format!("a [[container]]: {why}")))?;
        containers.push(spec);
    }
    let intro = files.get("intro.md").cloned().unwrap_or_default();
    let mut steps = Vec::new();
    for (rel, text) in files.range("steps/".to_string()..) {
        if !rel.starts_with("steps/") {
            break;
        }
        let step = parse_step(text, &file.image).map_err(|why| invalid(rel, why))?;
        steps.push(step);
    }
    if steps.is_empty() {
        return Err(invalid("steps/", "a lesson needs at least one step".into()));
    }
    let info = Lesson::render(name, &file.title, &intro, &steps);
    Ok(Lesson {
        name: name.to_string(),
        title: file.title,
        summary: file.summary,
        order: file.order,
        containers,
        steps: steps.into_iter().map(|(s, _, _)| s).collect(),
        info,
    })
}

/// A container of a lesson or of a solve's `create`: the page's defaults (a shell in a
/// terminal, the lesson's image) and then the spec's own checks.
pub fn container_spec(mut table: toml::Table, image: &str) -> Result<ContainerSpec, String> {
    table
        .entry("image")
        .or_insert_with(|| toml::Value::String(image.to_string()));
    table.entry("tty").or_insert(toml::Value::Boolean(true));
    table
        .entry("cmd")
        .or_insert_with(|| toml::Value::Array(vec![toml::Value::String("sh".into())]));
    if !table.contains_key("name") {
        return Err("every container needs a name".into());
    }
    let spec: ContainerSpec = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_string())?;
    spec.validate().map_err(|e| e.to_string())?;
    Ok(spec)
}

/// A step file: `+++`, the TOML header, `+++`, the Markdown body. Returns the step with its
/// body and hint (Markdown).
fn parse_step(text: &str, image: &str) -> Result<(Step, String, String), String> {
    let rest = text
        .strip_prefix("+++\n")
        .ok_or("a step starts with a line '+++' and its TOML header")?;
    let (header, body) = rest
        .split_once("\n+++\n")
        .or_else(|| rest.strip_suffix("\n+++").map(|h| (h, "")))
        .ok_or("the header ends with a line '+++'")?;
    let header: StepHeader = toml::from_str(header).map_err(|e| e.to_string())?;
    let check = match header.check {
        CheckEntry::Condition(text) => {
            Check::Condition(Expr::parse(&text).map_err(|e| e.to_string())?)
        }
        CheckEntry::Script { container, script } => Check::Script { container, script },
    };
    let mut solve = Vec::new();
    for (i, entry) in header.solve.into_iter().enumerate() {
        solve.push(action(entry, image).map_err(|why| format!("solve[{i}]: {why}"))?);
    }
    let step = Step {
        title: header.title,
        check,
        solve,
    };
    Ok((step, body.trim().to_string(), header.hint))
}

fn action(entry: ActionEntry, image: &str) -> Result<Action, String> {
    let ActionEntry {
        exec,
        script,
        create,
        remove,
        build,
        move_interface,
        wait,
    } = entry;
    let kinds = [
        exec.is_some(),
        create.is_some(),
        remove.is_some(),
        build.is_some(),
        move_interface.is_some(),
        wait.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        return Err("one of exec, create, remove, build, move_interface, wait".into());
    }
    if script.is_some() != exec.is_some() {
        return Err("exec and script go together".into());
    }
    Ok(if let (Some(container), Some(script)) = (exec, script) {
        Action::Exec { container, script }
    } else if let Some(table) = create {
        Action::Create(Box::new(container_spec(table, image)?))
    } else if let Some(name) = remove {
        Action::Remove(name)
    } else if let Some(b) = build {
        Action::Build {
            name: b.name,
            dockerfile: b.dockerfile,
        }
    } else if let Some(m) = move_interface {
        Action::MoveInterface {
            interface: m.interface,
            from: m.from,
            to: m.to,
        }
    } else if let Some(text) = wait {
        Action::Wait(Expr::parse(&text).map_err(|e| e.to_string())?)
    } else {
        unreachable!("one kind is set")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(step: &str) -> BTreeMap<String, String> {
        let mut f = BTreeMap::new();
        f.insert(
            "lesson.toml".into(),
            "title = \"T\"\nsummary = \"S\"\n[[container]]\nname = \"alpha\"\nmemory = \"64m\"\n"
                .into(),
        );
        f.insert("steps/01-a.md".into(), step.into());
        f
    }

    #[test]
    fn a_lesson_with_a_condition_and_a_solve() {
        let step = "+++\ntitle = \"Rename\"\nhint = \"Type `hostname gamma`\"\ncheck = 'alpha.hostname == \"gamma\"'\n[[solve]]\nexec = \"alpha\"\nscript = \"hostname gamma\"\n[[solve]]\ncreate = { name = \"beta\", namespaces = { uts = \"container:alpha\" } }\n+++\nDo **it**.\n";
        let lesson = parse("uts", &files(step)).unwrap();
        assert_eq!(lesson.containers[0].image, "busybox");
        assert!(lesson.containers[0].tty);
        assert_eq!(lesson.containers[0].cmd, vec!["sh"]);
        assert_eq!(lesson.containers[0].memory.unwrap().bytes(), 64 << 20);
        assert_eq!(lesson.steps[0].solve.len(), 2);
        assert!(lesson.info.steps[0].html.contains("<strong>it</strong>"));
        assert_eq!(lesson.info.steps[0].check, "alpha.hostname == \"gamma\"");
    }

    #[test]
    fn a_script_check() {
        let step = "+++\ntitle = \"Keep\"\ncheck = { container = \"alpha\", script = \"test -f /x\" }\n+++\n";
        let lesson = parse("keep", &files(step)).unwrap();
        assert!(
            matches!(&lesson.steps[0].check, Check::Script { container, .. } if container == "alpha")
        );
    }

    #[test]
    fn broken_lessons_name_the_file_and_the_reason() {
        let cases = [
            ("title = \"x\"\n", "steps/01-a.md"),
            ("+++\ntitle = \"x\"\ncheck = 'a =='\n+++\n", "steps/01-a.md"),
            ("+++\ntitle = \"x\"\ncheck = 'a'\n[[solve]]\nexec = \"a\"\n+++\n", "steps/01-a.md"),
            ("+++\ntitle = \"x\"\ncheck = 'a'\n[[solve]]\ncreate = { name = \"b\", memory = \"1k\" }\n+++\n", "steps/01-a.md"),
        ];
        for (step, file) in cases {
            let e = parse("l", &files(step)).unwrap_err().to_string();
            assert!(e.contains(file), "{e}");
        }
        let mut f = files("+++\ntitle = \"x\"\ncheck = 'a'\n+++\n");
        f.insert(
            "lesson.toml".into(),
            "title = \"T\"\nsummary = \"S\"\n[[container]]\nimage = \"busybox\"\n".into(),
        );
        let e = parse("l", &f).unwrap_err().to_string();
        assert!(e.contains("needs a name"), "{e}");
        assert!(parse("Bad Name", &files("")).is_err());
    }
}
