//! The image config a build evolves ([`BuildSettings`]) and docker's rules for what a
//! container of the image runs ([`command_line`]): how ENTRYPOINT and CMD combine, in
//! their exec and shell forms, with `run` arguments and `--entrypoint`.

use super::dockerfile::{substitute, Instruction, InstructionKind};
use crate::runtime::image::ImageSettings;

/// What docker prepends to the shell form of RUN, CMD and ENTRYPOINT (the default of
/// `SHELL`, which isolab does not support).
pub const SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// The two ways to write RUN, CMD and ENTRYPOINT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    /// `["exe", "arg"]`: run as is, no shell.
    Exec(Vec<String>),
    /// `exe arg`: the text, given to `/bin/sh -c`.
    Shell(String),
}

/// The argv a form stands for, as docker stores it in the image config: the exec form as
/// is, the shell form as `["/bin/sh", "-c", text]`.
pub fn to_argv(form: &Form) -> Vec<String> {
    match form {
        Form::Exec(argv) => argv.clone(),
        Form::Shell(text) => SHELL
            .iter()
            .map(|s| s.to_string())
            .chain([text.clone()])
            .collect(),
    }
}

/// Why a config step or a command line failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Nothing to run.
    #[error("no command: the image has no ENTRYPOINT or CMD and none was given")]
    NoCommand,
    /// `WORKDIR $UNSET`.
    #[error("line {line}: WORKDIR {word} is empty once its variables are substituted")]
    EmptyWorkdir {
        /// The instruction's line.
        line: usize,
        /// The path as written.
        word: String,
    },
    /// An ENV name that substitution made empty or gave an `=`, or an empty LABEL name.
    #[error("line {line}: {instruction} name {word} becomes {name:?}, which is not a valid name")]
    BadName {
        /// The instruction's line.
        line: usize,
        /// ENV or LABEL.
        instruction: &'static str,
        /// The name as written.
        word: String,
        /// The name after substitution.
        name: String,
    },
}

/// The image config as a Dockerfile changes it: the runtime's [`ImageSettings`] (what a
/// container of the image starts from) and whether this Dockerfile has set CMD yet.
///
/// Start from [`BuildSettings::from_base`] with the base image's settings, then
/// [`apply`](Self::apply) every instruction in order. The base image's CMD counts as
/// inherited: an ENTRYPOINT in the Dockerfile resets it (see `apply`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildSettings {
    pub image: ImageSettings,
    /// Whether a CMD instruction of this Dockerfile has run (as opposed to a CMD inherited
    /// from the base image). BuildKit's `cmdSet`.
    cmd_set: bool,
}

impl BuildSettings {
    pub fn from_base(image: ImageSettings) -> BuildSettings {
        BuildSettings {
            image,
            cmd_set: false,
        }
    }

    /// The environment as (name, value) pairs, for [`substitute`]. An entry without `=` is
    /// a variable set to the empty string, as docker reads it.
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        self.image
            .env
            .iter()
            .map(|entry| match entry.split_once('=') {
                Some((name, value)) => (name.to_string(), value.to_string()),
                None => (entry.clone(), String::new()),
            })
            .collect()
    }

    /// Docker's variable substitution of `word` against the environment so far (for the
    /// builder's COPY sources, destination and `--chown`).
    pub fn substitute(&self, word: &str) -> String {
        substitute(word, &self.env_pairs())
    }

    /// Sets one environment variable: replaces it where it is, or appends it.
    pub fn set_env(&mut self, name: &str, value: &str) {
        let entry = format!("{name}={value}");
        let same_name = |e: &String| e.split_once('=').map_or(e.as_str(), |(n, _)| n) == name;
        match self.image.env.iter_mut().find(|e| same_name(e)) {
            Some(existing) => *existing = entry,
            None => self.image.env.push(entry),
        }
    }

    /// Applies an ENV, WORKDIR, USER, ENTRYPOINT, CMD or LABEL instruction, substituting
    /// variables where docker does (ENV, WORKDIR, USER, LABEL) with the environment as it
    /// stood before the instruction. RUN and COPY change files, not the config: `apply`
    /// leaves the settings as they are for them.
    ///
    /// ENTRYPOINT and CMD follow BuildKit's dispatcher: ENTRYPOINT resets CMD unless a CMD
    /// instruction of this Dockerfile came before it. Docker documents only the base image
    /// case ("If CMD is defined from the base image, setting ENTRYPOINT will reset CMD to an
    /// empty value"); the code (`dispatchEntrypoint`: `if !d.cmdSet { Cmd = nil }`) also
    /// keeps a CMD set earlier in the same Dockerfile, in either order, and so does isolab.
    /// `ENTRYPOINT []` unsets ENTRYPOINT (BuildKit makes an empty one nil); `CMD []` sets
    /// an empty CMD.
    pub fn apply(&mut self, instruction: &Instruction) -> Result<(), CommandError> {
        let line = instruction.line;
        match &instruction.kind {
            InstructionKind::Run(_) | InstructionKind::Copy(_) => {}
            InstructionKind::Env(pairs) => {
                // Every pair of one ENV sees the environment from before it: after
                // `ENV abc=bye def=$abc`, def is the old abc (docker's documented example).
                for (name, value) in self.substitute_pairs(line, "ENV", pairs)? {
                    self.set_env(&name, &value);
                }
            }
            InstructionKind::Label(pairs) => {
                let pairs = self.substitute_pairs(line, "LABEL", pairs)?;
                self.image.labels.extend(pairs);
            }
            InstructionKind::Workdir(word) => {
                let path = self.substitute(word);
                if path.is_empty() {
                    return Err(CommandError::EmptyWorkdir {
                        line,
                        word: word.clone(),
                    });
                }
                self.image.workdir = Some(join_workdir(self.image.workdir.as_deref(), &path));
            }
            InstructionKind::User(word) => {
                let user = self.substitute(word);
                self.image.user = (!user.is_empty()).then_some(user);
            }
            InstructionKind::Entrypoint(form) => {
                self.image.entrypoint = match form {
                    Form::Exec(argv) if argv.is_empty() => None,
                    form => Some(to_argv(form)),
                };
                if !self.cmd_set {
                    self.image.cmd = None;
                }
            }
            InstructionKind::Cmd(form) => {
                self.image.cmd = Some(to_argv(form));
                self.cmd_set = true;
            }
        }
        Ok(())
    }

    fn substitute_pairs(
        &self,
        line: usize,
        instruction: &'static str,
        pairs: &[(String, String)],
    ) -> Result<Vec<(String, String)>, CommandError> {
        let env = self.env_pairs();
        pairs
            .iter()
            .map(|(word, value)| {
                let name = substitute(word, &env);
                if name.is_empty() || (instruction == "ENV" && name.contains('=')) {
                    return Err(CommandError::BadName {
                        line,
                        instruction,
                        word: word.clone(),
                        name,
                    });
                }
                Ok((name, substitute(value, &env)))
            })
            .collect()
    }
}

/// WORKDIR `requested` after `current` (default `/`), cleaned as Go's `path.Clean` does.
fn join_workdir(current: Option<&str>, requested: &str) -> String {
    let base = if requested.starts_with('/') {
        ""
    } else {
        current.unwrap_or("/")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in base.split('/').chain(requested.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

/// What `docker run [--entrypoint X] IMAGE [ARGS...]` executes, given the image's
/// ENTRYPOINT and CMD (as argvs: [`to_argv`]):
///
/// - the entrypoint (or `entrypoint_override`), followed by the run arguments if any, else
///   by the image's CMD;
/// - `--entrypoint` also discards the image's CMD (docker's daemon merges the image's CMD
///   only when no entrypoint was given);
/// - `--entrypoint ""` (an empty override, or docker's `[""]`) clears the entrypoint, and
///   still discards CMD: what runs is the run arguments alone.
///
/// An empty result is [`CommandError::NoCommand`], as docker's "No command specified".
pub fn command_line(
    entrypoint: Option<&[String]>,
    cmd: Option<&[String]>,
    run_args: &[String],
    entrypoint_override: Option<&[String]>,
) -> Result<Vec<String>, CommandError> {
    let (entrypoint, default_args) = match entrypoint_override {
        Some(entrypoint) => (entrypoint, &[][..]),
        None => (entrypoint.unwrap_or_default(), cmd.unwrap_or_default()),
    };
    // Docker's daemon resets an entrypoint of [""] (what `--entrypoint ""` sends) to none.
    let entrypoint = match entrypoint {
        [only] if only.is_empty() => &[][..],
        entrypoint => entrypoint,
    };
    let args = if run_args.is_empty() {
        default_args
    } else {
        run_args
    };
    let argv: Vec<String> = entrypoint.iter().chain(args).cloned().collect();
    if argv.is_empty() {
        return Err(CommandError::NoCommand);
    }
    Ok(argv)
}

#[cfg(test)]
mod tests;
