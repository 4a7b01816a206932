//! The Dockerfile subset isolab builds, parsed the way BuildKit's Dockerfile frontend parses it.
//!
//! [`parse`] only reads text: it joins continued lines, skips comments, splits each
//! instruction into its words and keeps them *as written* (quotes, escapes and `$VAR`s
//! included), with the instruction's text and line for the layer history. Variable
//! substitution needs the environment at that point of the build (the base image's env
//! plus the ENV instructions so far), so it is a separate step, [`substitute`], that
//! `command::ImageSettings::apply` (ENV, WORKDIR, USER, LABEL) and the builder (COPY)
//! run while they walk the instructions. [`parse`] still checks the quoting and `${...}`
//! syntax of every word that will be substituted, so that a mistake is reported with its
//! line number before anything runs. RUN, CMD and ENTRYPOINT are never substituted: the
//! shell does that.

use super::command::Form;

/// The instructions isolab builds, as error messages list them.
pub const SUPPORTED: &str = "FROM, RUN, COPY, ENV, WORKDIR, USER, ENTRYPOINT, CMD, LABEL";

/// Instructions docker knows that isolab does not build.
const UNSUPPORTED: &[&str] = &[
    "ADD",
    "ARG",
    "EXPOSE",
    "VOLUME",
    "HEALTHCHECK",
    "ONBUILD",
    "SHELL",
    "STOPSIGNAL",
    "MAINTAINER",
];

/// The one flag isolab accepts, on COPY: `--chown=USER[:GROUP]`.
const CHOWN: &str = "--chown";

/// A parsed Dockerfile: one base image, then the instructions that build on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The FROM line.
    pub from: Base,
    /// Every instruction after FROM, in order.
    pub instructions: Vec<Instruction>,
}

/// The FROM line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    /// The image to start from (`${VAR:-default}` already substituted: isolab has no ARG, so
    /// every variable there is unset, as in a docker build without build arguments).
    pub image: String,
    /// The 1-based line FROM is on.
    pub line: usize,
    /// The instruction as written, e.g. `FROM busybox`.
    pub text: String,
}

/// One instruction after FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// The 1-based line the instruction starts on.
    pub line: usize,
    /// The instruction as written, continued lines joined and comment lines dropped (what
    /// docker keeps as a layer's `created_by`), e.g. `RUN apk add curl && rm -rf /var/cache`.
    pub text: String,
    /// What it says.
    pub kind: InstructionKind,
}

/// What an instruction says. Words marked *unsubstituted* are as written (quotes, escapes
/// and `$VAR`s included) and go through [`substitute`] when the build reaches them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstructionKind {
    /// `RUN cmd` (shell form) or `RUN ["exe", "arg"]` (exec form); never substituted.
    Run(Form),
    /// `COPY [--chown=u:g] src... dest`.
    Copy(CopyArgs),
    /// `ENV k=v ...` or the legacy `ENV k v w`: (name, value) pairs, unsubstituted.
    Env(Vec<(String, String)>),
    /// `WORKDIR path`, unsubstituted (relative paths build on the previous WORKDIR).
    Workdir(String),
    /// `USER name[:group]`, unsubstituted.
    User(String),
    /// `ENTRYPOINT`, either form; never substituted. `ENTRYPOINT []` unsets it.
    Entrypoint(Form),
    /// `CMD`, either form; never substituted. `CMD []` sets an empty CMD.
    Cmd(Form),
    /// `LABEL k=v ...` or the legacy `LABEL k v w`: (name, value) pairs, unsubstituted.
    Label(Vec<(String, String)>),
}

/// The arguments of COPY, all unsubstituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyArgs {
    /// `--chown=USER[:GROUP]`, if given with a value. Substitution may still leave it
    /// empty, which means no change of owner, as in docker.
    pub chown: Option<String>,
    /// At least one source, relative to the build context.
    pub sources: Vec<String>,
    /// Where they go in the image (relative to WORKDIR unless absolute).
    pub dest: String,
}

/// Why a Dockerfile was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct ParseError {
    /// The 1-based line the offending instruction starts on.
    pub line: usize,
    /// What is wrong there.
    pub kind: ParseErrorKind,
}

/// What is wrong with a Dockerfile line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// Not a Dockerfile instruction at all (holds the word as written).
    #[error("unknown instruction {word:?}{}", did_you_mean(.suggestion))]
    UnknownInstruction {
        /// The word as written.
        word: String,
        /// A supported instruction spelled almost the same.
        suggestion: Option<&'static str>,
    },
    /// A docker instruction isolab does not build (holds it in capitals).
    #[error("{0} is not supported by isolab build (supported: {SUPPORTED})")]
    Unsupported(String),
    /// An instruction before the FROM line.
    #[error("{0} before FROM: a Dockerfile starts with FROM IMAGE")]
    BeforeFrom(&'static str),
    /// A second FROM.
    #[error(
        "a second FROM: isolab build makes a single stage (multi-stage builds are not supported)"
    )]
    SecondFrom,
    /// `FROM image AS name`.
    #[error("FROM {image} AS {name}: named stages are not supported (isolab build makes a single stage)")]
    NamedStage {
        /// The image.
        image: String,
        /// The stage name.
        name: String,
    },
    /// `COPY --from=stage`.
    #[error("COPY --from is not supported: isolab build makes a single stage (multi-stage builds are not supported)")]
    CopyFrom,
    /// FROM with no image or extra words.
    #[error("FROM takes exactly one image, as in FROM busybox")]
    FromArguments,
    /// FROM whose image is empty once its variables are substituted.
    #[error(
        "FROM {0}: the image name is empty (isolab build has no ARG, so its variables are unset)"
    )]
    EmptyBase(String),
    /// No instruction at all.
    #[error("the Dockerfile has no instructions: it must start with FROM IMAGE")]
    Empty,
    /// An instruction without the arguments it needs.
    #[error("{instruction} needs {usage}")]
    MissingArguments {
        /// The instruction.
        instruction: &'static str,
        /// What it needs, with an example.
        usage: &'static str,
    },
    /// `RUN []`.
    #[error("RUN [] has no command")]
    EmptyRun,
    /// A JSON array with something else than strings.
    #[error("{0}: when using JSON array syntax, arrays must hold strings only")]
    NotStringArray(&'static str),
    /// A `--flag` isolab does not support.
    #[error("{instruction} {flag} is not supported by isolab build (the only flag is COPY --chown=USER[:GROUP])")]
    UnsupportedFlag {
        /// The instruction.
        instruction: &'static str,
        /// The flag as written.
        flag: String,
    },
    /// `COPY --chown` without `=value`.
    #[error("COPY --chown needs a value: --chown=USER[:GROUP]")]
    ChownValue,
    /// `COPY --chown` twice.
    #[error("COPY --chown is given twice")]
    DuplicateChown,
    /// `ENV a=1 b`: a word without `=` after one with it.
    #[error("{instruction}: can't find = in {word:?}; write {instruction} NAME=VALUE ...")]
    MissingEquals {
        /// ENV or LABEL.
        instruction: &'static str,
        /// The word.
        word: String,
    },
    /// `ENV =x`.
    #[error("{0} names can not be blank")]
    BlankName(&'static str),
    /// A word whose quoting or `${...}` is broken.
    #[error("{instruction}: {error} in {word:?}{}", copy_hint(instruction, error))]
    BadWord {
        /// The instruction.
        instruction: &'static str,
        /// The word as written.
        word: String,
        /// What is wrong with it.
        error: WordError,
    },
    /// A heredoc (`RUN <<EOF`).
    #[error("heredocs ({0}) are not supported by isolab build")]
    Heredoc(String),
    /// `# escape=` with another character than the backslash.
    #[error("the parser directive `# escape={0}` is not supported: isolab build escapes with \\")]
    EscapeDirective(String),
}

/// What is wrong with a word that would be substituted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WordError {
    /// A `'` or `"` that is never closed.
    #[error("unterminated {0} quote")]
    UnterminatedQuote(char),
    /// `${` without its `}`.
    #[error("missing '}}'")]
    MissingBrace,
    /// `${}`, `${:x}` and the like.
    #[error("bad substitution")]
    BadSubstitution,
    /// A `${VAR<op>...}` other than `-`, `:-`, `+` and `:+` (holds the operator).
    #[error("unsupported substitution ${{VAR{0}...}} (isolab build supports ${{VAR}}, ${{VAR:-default}}, ${{VAR-default}}, ${{VAR:+alt}} and ${{VAR+alt}})")]
    UnsupportedModifier(String),
}

fn did_you_mean(suggestion: &Option<&str>) -> String {
    suggestion.map_or_else(String::new, |s| format!(" (did you mean {s}?)"))
}

fn copy_hint(instruction: &str, error: &WordError) -> &'static str {
    if instruction == "COPY" && matches!(error, WordError::UnterminatedQuote(_)) {
        " (COPY splits its arguments at spaces; write COPY [\"a b\", \"/dest/\"] for paths with spaces)"
    } else {
        ""
    }
}

/// Parses a Dockerfile of the supported subset.
///
/// Lines are joined as docker joins them: a trailing `\` (spaces after it allowed) continues
/// the instruction on the next line; comment lines (`#` after optional whitespace) and blank
/// lines inside a continued instruction are skipped. Instruction names are case-insensitive.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let lines = logical_lines(text)?;
    let mut from: Option<Base> = None;
    let mut instructions = Vec::new();
    for (line, text) in lines {
        let at = |kind| ParseError { line, kind };
        let (word, rest) = split_first_word(&text);
        let name = instruction_name(word).map_err(at)?;
        match (name, from.is_some()) {
            ("FROM", false) => {
                let image = parse_from(rest).map_err(at)?;
                from = Some(Base { image, line, text });
            }
            ("FROM", true) => return Err(at(ParseErrorKind::SecondFrom)),
            (name, false) => return Err(at(ParseErrorKind::BeforeFrom(name))),
            (name, true) => {
                let kind = parse_instruction(name, rest).map_err(at)?;
                instructions.push(Instruction { line, text, kind });
            }
        }
    }
    let last = text.lines().count().max(1);
    let from = from.ok_or(ParseError {
        line: last,
        kind: ParseErrorKind::Empty,
    })?;
    Ok(Dockerfile { from, instructions })
}

/// Joins continued lines into instructions: (line it starts on, its text trimmed).
fn logical_lines(text: &str) -> Result<Vec<(usize, String)>, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let mut in_directives = true;
    let mut out = Vec::new();
    while let Some((number, raw)) = lines.next() {
        let first = raw.trim_start();
        if in_directives {
            in_directives =
                parser_directive(first).map_err(|kind| ParseError { line: number, kind })?;
        }
        if first.starts_with('#') {
            continue;
        }
        let (start, mut continued) = trim_continuation(first);
        let mut joined = start.to_string();
        while continued {
            let Some((_, raw)) = lines.next() else { break };
            let trimmed = raw.trim_start();
            // Docker skips comment lines and empty lines inside a continued instruction.
            if trimmed.starts_with('#') || trimmed.is_empty() {
                continue;
            }
            // A continuation line keeps its leading whitespace, as in docker.
            let (part, more) = trim_continuation(raw);
            joined.push_str(part);
            continued = more;
        }
        let joined = joined.trim();
        if !joined.is_empty() {
            out.push((number, joined.to_string()));
        }
    }
    Ok(out)
}

/// Whether `line` is a parser directive (`# syntax=...`, `# escape=...`, `# check=...`):
/// those may only open the file, and only the default escape character is supported.
fn parser_directive(line: &str) -> Result<bool, ParseErrorKind> {
    let Some(body) = line.strip_prefix('#') else {
        return Ok(false);
    };
    let Some((key, value)) = body.split_once('=') else {
        return Ok(false);
    };
    let key = key.trim();
    let value = value.trim();
    let well_formed = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && key.chars().all(|c| c.is_ascii_alphanumeric())
        && !value.is_empty();
    if !well_formed {
        return Ok(false);
    }
    match key.to_ascii_lowercase().as_str() {
        "escape" if value != "\\" => Err(ParseErrorKind::EscapeDirective(value.to_string())),
        "escape" | "syntax" | "check" => Ok(true),
        _ => Ok(false),
    }
}

/// Strips a trailing continuation backslash (and any spaces or tabs after it).
fn trim_continuation(line: &str) -> (&str, bool) {
    match line.trim_end_matches([' ', '\t']).strip_suffix('\\') {
        Some(start) => (start, true),
        None => (line, false),
    }
}

/// Docker's argument separators (no newlines: lines are already joined).
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0b' | '\x0c' | '\r')
}

fn split_first_word(text: &str) -> (&str, &str) {
    match text.find(is_blank) {
        Some(end) => (&text[..end], text[end..].trim_matches(is_blank)),
        None => (text, ""),
    }
}

/// The instruction's canonical name, or why it cannot be built.
fn instruction_name(word: &str) -> Result<&'static str, ParseErrorKind> {
    let upper = word.to_ascii_uppercase();
    if let Some(name) = SUPPORTED.split(", ").find(|name| *name == upper) {
        return Ok(name);
    }
    if UNSUPPORTED.contains(&upper.as_str()) {
        return Err(ParseErrorKind::Unsupported(upper));
    }
    let suggestion = SUPPORTED
        .split(", ")
        .map(|name| (edit_distance(name, &upper), name))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name);
    Err(ParseErrorKind::UnknownInstruction {
        word: word.to_string(),
        suggestion,
    })
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let replace = previous[j] + usize::from(ca != *cb);
            current.push(replace.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

fn parse_from(rest: &str) -> Result<String, ParseErrorKind> {
    let (flags, rest) = extract_flags(rest);
    refuse_flags("FROM", &flags)?;
    let args: Vec<&str> = rest.split(is_blank).filter(|w| !w.is_empty()).collect();
    match args[..] {
        [image] => {
            check_word("FROM", image)?;
            let substituted = substitute(image, &[]);
            if substituted.is_empty() {
                return Err(ParseErrorKind::EmptyBase(image.to_string()));
            }
            Ok(substituted)
        }
        [image, as_, name] if as_.eq_ignore_ascii_case("as") => Err(ParseErrorKind::NamedStage {
            image: image.to_string(),
            name: name.to_string(),
        }),
        _ => Err(ParseErrorKind::FromArguments),
    }
}

fn parse_instruction(name: &'static str, rest: &str) -> Result<InstructionKind, ParseErrorKind> {
    let (flags, rest) = extract_flags(rest);
    if name == "COPY" {
        return parse_copy(&flags, rest).map(InstructionKind::Copy);
    }
    refuse_flags(name, &flags)?;
    let missing = |usage| ParseErrorKind::MissingArguments {
        instruction: name,
        usage,
    };
    match name {
        "RUN" => match parse_form(name, rest)? {
            None => Err(missing("a command, as in RUN apk add curl")),
            Some(Form::Exec(argv)) if argv.is_empty() => Err(ParseErrorKind::EmptyRun),
            Some(Form::Shell(text)) => {
                refuse_heredoc(&text)?;
                Ok(InstructionKind::Run(Form::Shell(text)))
            }
            Some(form) => Ok(InstructionKind::Run(form)),
        },
        "CMD" => parse_form(name, rest)?
            .map(InstructionKind::Cmd)
            .ok_or_else(|| missing("a command, as in CMD [\"sh\"] (CMD [] sets none)")),
        "ENTRYPOINT" => parse_form(name, rest)?
            .map(InstructionKind::Entrypoint)
            .ok_or_else(|| {
                missing("a command, as in ENTRYPOINT [\"top\", \"-b\"] (ENTRYPOINT [] unsets it)")
            }),
        "ENV" => parse_name_values(name, rest)?
            .map(InstructionKind::Env)
            .ok_or_else(|| missing("NAME=VALUE ..., as in ENV PATH=/app/bin:$PATH")),
        "LABEL" => parse_name_values(name, rest)?
            .map(InstructionKind::Label)
            .ok_or_else(|| missing("NAME=VALUE ..., as in LABEL version=1.0")),
        "WORKDIR" => {
            if rest.is_empty() {
                return Err(missing("a path, as in WORKDIR /app"));
            }
            check_word(name, rest)?;
            Ok(InstructionKind::Workdir(rest.to_string()))
        }
        "USER" => {
            if rest.is_empty() {
                return Err(missing("a user, as in USER nobody or USER 1000:1000"));
            }
            check_word(name, rest)?;
            Ok(InstructionKind::User(rest.to_string()))
        }
        _ => Err(ParseErrorKind::Unsupported(name.to_string())),
    }
}

/// Splits leading `--flag` words off the arguments, as docker does for every instruction
/// (a lone `--` ends them). Flags stay as written; only COPY accepts one.
fn extract_flags(rest: &str) -> (Vec<String>, &str) {
    let mut flags = Vec::new();
    let mut rest = rest.trim_start_matches(is_blank);
    while rest.starts_with("--") {
        let end = word_end(rest);
        let flag = &rest[..end];
        rest = rest[end..].trim_start_matches(is_blank);
        if flag == "--" {
            break;
        }
        flags.push(flag.to_string());
    }
    (flags, rest)
}

fn refuse_flags(instruction: &'static str, flags: &[String]) -> Result<(), ParseErrorKind> {
    match flags.first() {
        Some(flag) => Err(ParseErrorKind::UnsupportedFlag {
            instruction,
            flag: flag.clone(),
        }),
        None => Ok(()),
    }
}

/// The exec form (a JSON array of strings) or the shell form; `None` when there is nothing.
///
/// As in docker, text that starts with `[` but is not valid JSON (`RUN ['a']`, single
/// quotes) is the shell form; a valid array holding something else than strings is an error.
fn parse_form(instruction: &'static str, rest: &str) -> Result<Option<Form>, ParseErrorKind> {
    if rest.is_empty() {
        return Ok(None);
    }
    match json_array(instruction, rest)? {
        Some(argv) => Ok(Some(Form::Exec(argv))),
        None => Ok(Some(Form::Shell(rest.to_string()))),
    }
}

/// `Some(strings)` if `rest` is a JSON array of strings, `None` if it is not JSON at all.
fn json_array(
    instruction: &'static str,
    rest: &str,
) -> Result<Option<Vec<String>>, ParseErrorKind> {
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(rest) else {
        return Ok(None);
    };
    values
        .into_iter()
        .map(|value| match value {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(ParseErrorKind::NotStringArray(instruction)),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn parse_copy(flags: &[String], rest: &str) -> Result<CopyArgs, ParseErrorKind> {
    let mut chown = None;
    let mut chown_seen = false;
    for flag in flags {
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (flag.as_str(), None),
        };
        match (name, value) {
            (CHOWN, _) if chown_seen => return Err(ParseErrorKind::DuplicateChown),
            (CHOWN, None) => return Err(ParseErrorKind::ChownValue),
            (CHOWN, Some(value)) => {
                chown_seen = true;
                check_word("COPY", value)?;
                chown = (!value.is_empty()).then(|| value.to_string());
            }
            ("--from", _) => return Err(ParseErrorKind::CopyFrom),
            _ => {
                return Err(ParseErrorKind::UnsupportedFlag {
                    instruction: "COPY",
                    flag: flag.clone(),
                })
            }
        }
    }
    // COPY's shell form splits at whitespace only: quotes do not group, they are removed
    // later by substitution (so `COPY "a b" /x` is an unterminated quote, as in docker).
    let mut args = match json_array("COPY", rest)? {
        Some(args) => args,
        None => {
            refuse_heredoc(rest)?;
            rest.split(is_blank)
                .filter(|w| !w.is_empty())
                .map(String::from)
                .collect()
        }
    };
    if args.len() < 2 {
        return Err(ParseErrorKind::MissingArguments {
            instruction: "COPY",
            usage: "at least one source and a destination, as in COPY app.sh /usr/local/bin/",
        });
    }
    for arg in &args {
        check_word("COPY", arg)?;
    }
    let dest = args.pop().unwrap_or_default();
    Ok(CopyArgs {
        chown,
        sources: args,
        dest,
    })
}

/// `ENV`/`LABEL` pairs, in docker's two syntaxes: `k=v ...` (words split at unquoted,
/// unescaped whitespace) when the first word holds `=`, else the legacy `k v w` (the name,
/// then everything after it as one value). `None` when there are no arguments.
fn parse_name_values(
    instruction: &'static str,
    rest: &str,
) -> Result<Option<Vec<(String, String)>>, ParseErrorKind> {
    let words = split_words(rest);
    let Some(first) = words.first() else {
        return Ok(None);
    };
    let pairs = if first.contains('=') {
        words
            .iter()
            .map(|word| match word.split_once('=') {
                Some((name, value)) => Ok((name.to_string(), value.to_string())),
                None => Err(ParseErrorKind::MissingEquals {
                    instruction,
                    word: word.clone(),
                }),
            })
            .collect::<Result<Vec<_>, _>>()?
    } else {
        let (name, value) = split_first_word(rest);
        if value.is_empty() {
            return Err(ParseErrorKind::MissingArguments {
                instruction,
                usage: "a value: NAME=VALUE (or the legacy NAME VALUE)",
            });
        }
        vec![(name.to_string(), value.to_string())]
    };
    for (name, value) in &pairs {
        if name.is_empty() {
            return Err(ParseErrorKind::BlankName(instruction));
        }
        check_word(instruction, name)?;
        check_word(instruction, value)?;
    }
    Ok(Some(pairs))
}

/// Docker's word splitting for ENV and LABEL: whitespace separates words except inside
/// quotes or after a backslash; quotes and backslashes stay in the word (substitution
/// removes them later).
fn split_words(rest: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = rest.trim_start();
    while !rest.is_empty() {
        let end = word_end(rest);
        let word = &rest[..end];
        words.push(word.to_string());
        rest = rest[end..].trim_start();
    }
    words
}

/// The byte length of the word `text` starts with: up to unquoted, unescaped whitespace.
fn word_end(text: &str) -> usize {
    let mut quote: Option<char> = None;
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => return i,
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            // A backslash escapes the next character, except inside single quotes.
            (None, '\\') | (Some('"'), '\\') => {
                chars.next();
            }
            _ => {}
        }
    }
    text.len()
}

/// Refuses a heredoc (`<<EOF`, `<<-EOF`, `2<<"EOF"`), which docker would read from the
/// following lines: isolab would instead take those lines for instructions.
fn refuse_heredoc(text: &str) -> Result<(), ParseErrorKind> {
    let heredoc = text.split_whitespace().find(|word| {
        let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
        rest.strip_prefix("<<")
            .map(|r| r.strip_prefix('-').unwrap_or(r))
            .is_some_and(|name| !name.is_empty() && !name.contains('<'))
    });
    match heredoc {
        Some(word) => Err(ParseErrorKind::Heredoc(word.to_string())),
        None => Ok(()),
    }
}

fn check_word(instruction: &'static str, word: &str) -> Result<(), ParseErrorKind> {
    expand(word, &[])
        .map(drop)
        .map_err(|error| ParseErrorKind::BadWord {
            instruction,
            word: word.to_string(),
            error,
        })
}

/// Docker's variable substitution of one word (BuildKit's `ProcessWord`), against `env`
/// (name, value) pairs in the order they were set (a later pair wins):
///
/// - `$VAR` and `${VAR}`: the value, or nothing if unset;
/// - `${VAR:-word}`: `word` if VAR is unset or empty; `${VAR-word}`: if unset;
/// - `${VAR:+word}`: `word` if VAR is set and not empty, else nothing; `${VAR+word}`: if set;
/// - quotes are removed: nothing is substituted inside `'...'`; inside `"..."`, `\"`, `\$`
///   and `\\` are escapes and other backslashes stay; outside quotes `\x` is `x` (so `\$`
///   is a literal dollar);
/// - a `$` not followed by a name is a literal `$`.
///
/// Spaces are kept: one word in, one string out. [`parse`] has already refused words with
/// broken quoting or `${...}`; given one anyway, this returns it unchanged.
pub fn substitute(word: &str, env: &[(String, String)]) -> String {
    expand(word, env).unwrap_or_else(|_| word.to_string())
}

fn expand(word: &str, env: &[(String, String)]) -> Result<String, WordError> {
    let mut lexer = Lexer {
        chars: word.chars().collect(),
        pos: 0,
        env,
    };
    lexer.process(None)
}

/// A port of BuildKit's `shell.Lex` word processing, without `${VAR?}` and the pattern
/// operators (`#`, `%`, `/`).
struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    env: &'a [(String, String)],
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += usize::from(c.is_some());
        c
    }

    fn lookup(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Up to `stop` (consumed) or the end.
    fn process(&mut self, stop: Option<char>) -> Result<String, WordError> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.pos += 1;
                return Ok(out);
            }
            match c {
                '\'' => out.push_str(&self.single_quoted()?),
                '"' => out.push_str(&self.double_quoted()?),
                '$' => out.push_str(&self.dollar()?),
                '\\' => {
                    self.pos += 1;
                    // A backslash at the very end is dropped.
                    if let Some(escaped) = self.next() {
                        out.push(escaped);
                    }
                }
                _ => {
                    self.pos += 1;
                    out.push(c);
                }
            }
        }
        match stop {
            Some(_) => Err(WordError::MissingBrace),
            None => Ok(out),
        }
    }

    fn single_quoted(&mut self) -> Result<String, WordError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.next() {
                None => return Err(WordError::UnterminatedQuote('\'')),
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, WordError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(WordError::UnterminatedQuote('"')),
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some('\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ ('"' | '$' | '\\')) => {
                            self.pos += 1;
                            out.push(c);
                        }
                        Some(_) => out.push('\\'),
                        None => {}
                    }
                }
                Some(c) => {
                    self.pos += 1;
                    out.push(c);
                }
            }
        }
    }

    fn dollar(&mut self) -> Result<String, WordError> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(self.lookup(&name).unwrap_or_default().to_string());
        }
        self.pos += 1;
        match self.peek() {
            None => return Err(WordError::MissingBrace),
            Some('{' | '}' | ':') => return Err(WordError::BadSubstitution),
            Some(_) => {}
        }
        let name = self.name();
        let (operator, null_is_unset) = match self.next() {
            None => return Err(WordError::MissingBrace),
            Some('}') => return Ok(self.lookup(&name).unwrap_or_default().to_string()),
            Some(':') => match self.next() {
                Some(op @ ('-' | '+')) => (op, true),
                Some(op) => return Err(WordError::UnsupportedModifier(format!(":{op}"))),
                None => return Err(WordError::MissingBrace),
            },
            Some(op @ ('-' | '+')) => (op, false),
            Some(op) => return Err(WordError::UnsupportedModifier(op.to_string())),
        };
        let word = self.process(Some('}'))?;
        let unset = match self.lookup(&name) {
            None => true,
            Some(value) => null_is_unset && value.is_empty(),
        };
        Ok(match (operator, unset) {
            ('-', true) => word,
            ('-', false) => self.lookup(&name).unwrap_or_default().to_string(),
            (_, true) => String::new(),
            (_, false) => word,
        })
    }

    /// A variable name: letters, digits and `_`; or all the digits of a positional
    /// parameter; or one special parameter (`$$`, `$@`...). Empty if none.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!') {
                self.pos += 1;
                return c.to_string();
            }
            if !(c.is_alphanumeric() || c == '_') {
                break;
            }
            name.push(c);
            self.pos += 1;
        }
        name
    }
}

#[cfg(test)]
mod tests;
