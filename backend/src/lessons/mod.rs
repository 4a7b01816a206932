//! Lessons: folders of a `lesson.toml` and Markdown steps whose checks re-run until they pass
//! (docs/lessons.md). This module loads and validates them; a session runs one
//! (`session/lesson.rs`).
//!
//! The built-in lessons (`lessons/` at the repository's root) are compiled into the binary;
//! `isolab serve --lessons DIR` adds the folders of `DIR`, replacing a built-in one of the same
//! name. A broken lesson folder stops the server at start-up with the file and the reason, not
//! an attendee in the middle of a workshop.

pub mod condition;
pub mod facts;
mod format;
pub mod markdown;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use isolab_shared::protocol::{LessonInfo, LessonSummary, StepInfo};
use isolab_shared::spec::ContainerSpec;

pub use condition::Expr;

/// The built-in lessons, as files.
static BUILT_IN: include_dir::Dir<'static> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/../lessons");

#[derive(Debug, thiserror::Error)]
pub enum LessonError {
    #[error("lesson {lesson}: {file}: {why}")]
    Invalid {
        lesson: String,
        file: String,
        why: String,
    },
    #[error("read lessons from {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A loaded lesson.
#[derive(Debug, Clone)]
pub struct Lesson {
    pub name: String,
    pub title: String,
    pub summary: String,
    pub order: i64,
    /// The containers it starts with (validated specs, with the lesson's defaults filled in).
    pub containers: Vec<ContainerSpec>,
    pub steps: Vec<Step>,
    /// What the page shows, rendered once.
    pub info: LessonInfo,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub title: String,
    pub check: Check,
    pub solve: Vec<Action>,
}

/// What must hold for a step to pass.
#[derive(Debug, Clone)]
pub enum Check {
    /// A condition on the live view's facts.
    Condition(Expr),
    /// `sh -c SCRIPT` in a container exits 0.
    Script { container: String, script: String },
}

impl Check {
    /// The check in words, for the page.
    pub fn describe(&self) -> String {
        match self {
            Check::Condition(e) => e.show(),
            Check::Script { container, script } => format!("in {container}: {script}"),
        }
    }
}

/// One action of a step's solution.
#[derive(Debug, Clone)]
pub enum Action {
    Exec {
        container: String,
        script: String,
    },
    Create(Box<ContainerSpec>),
    Remove(String),
    Build {
        name: String,
        dockerfile: String,
    },
    MoveInterface {
        interface: String,
        from: String,
        to: String,
    },
    Wait(Expr),
}

/// Every lesson a server offers, by name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    lessons: BTreeMap<String, Arc<Lesson>>,
}

impl Catalog {
    /// The built-in lessons, then those of `extra` (replacing built-in ones of the same name).
    pub fn load(extra: Option<&Path>) -> Result<Catalog, LessonError> {
        let mut catalog = Catalog::built_in()?;
        if let Some(dir) = extra {
            for lesson in format::read_dir(dir)? {
                catalog
                    .lessons
                    .insert(lesson.name.clone(), Arc::new(lesson));
            }
        }
        Ok(catalog)
    }

    pub fn built_in() -> Result<Catalog, LessonError> {
        let mut lessons = BTreeMap::new();
        for dir in BUILT_IN.dirs() {
            let name = dir.path().to_string_lossy().to_string();
            let mut files = BTreeMap::new();
            for file in dir.files().chain(dir.dirs().flat_map(|d| d.files())) {
                let rel = file
                    .path()
                    .strip_prefix(dir.path())
                    .unwrap_or(file.path())
                    .to_string_lossy()
                    .to_string();
                let text = file.contents_utf8().ok_or_else(|| LessonError::Invalid {
                    lesson: name.clone(),
                    file: rel.clone(),
                    why: "not UTF-8 text".into(),
                })?;
                files.insert(rel, text.to_string());
            }
            let lesson = format::parse(&name, &files)?;
            lessons.insert(name, Arc::new(lesson));
        }
        Ok(Catalog { lessons })
    }

    pub fn get(&self, name: &str) -> Option<Arc<Lesson>> {
        self.lessons.get(name).cloned()
    }

    /// The list a page shows: by `order`, then name.
    pub fn summaries(&self) -> Vec<LessonSummary> {
        let mut list: Vec<&Arc<Lesson>> = self.lessons.values().collect();
        list.sort_by(|a, b| (a.order, &a.name).cmp(&(b.order, &b.name)));
        list.into_iter()
            .map(|l| LessonSummary {
                name: l.name.clone(),
                title: l.title.clone(),
                summary: l.summary.clone(),
                steps: l.steps.len() as u32,
            })
            .collect()
    }

    pub fn names(&self) -> Vec<String> {
        self.lessons.keys().cloned().collect()
    }
}

impl Lesson {
    fn render(
        name: &str,
        title: &str,
        intro: &str,
        steps: &[(Step, String, String)],
    ) -> LessonInfo {
        LessonInfo {
            name: name.to_string(),
            title: title.to_string(),
            intro_html: markdown::to_html(intro),
            steps: steps
                .iter()
                .map(|(step, body, hint)| StepInfo {
                    title: step.title.clone(),
                    html: markdown::to_html(body),
                    hint_html: markdown::to_html(hint),
                    check: step.check.describe(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_lesson_loads() {
        let catalog = Catalog::built_in().expect("the built-in lessons load");
        assert!(!catalog.names().is_empty());
        for summary in catalog.summaries() {
            assert!(summary.steps > 0, "{} has no steps", summary.name);
        }
    }
}
