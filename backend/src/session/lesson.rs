//! A session following a lesson (docs/lessons.md): its containers started, the current step's
//! check re-run about once a second until it passes, and a step's solution run on request.
//!
//! Checks and solutions never block the session's loop: a condition is evaluated on the
//! blocking pool after a whole pass of the observer, a script runs there through the runtime's
//! `exec`, and each reports back as an [`Event`]. A solution is a queue of actions, advanced as
//! each one ends.

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use isolab_shared::protocol::{
    codes, InterfaceKind, LessonState, Progress, Ref, ServerMsg, ViewTarget,
};

use super::{Event, Session};
use crate::lessons::condition::Outcome;
use crate::lessons::facts::{self, Extras};
use crate::lessons::{Action, Check, Expr, Lesson};
use crate::observe::{Observer, SessionNetwork, Subject};
use crate::runtime::container::{Runtime, StdioSpec};

/// A check re-runs at once (at the next second) after the learner did something: output
/// on a terminal, a container made or ended. Without any, it re-runs this often, for what
/// changes silently (a CPU quota's throttling, a background process).
const QUIET_RECHECK: Duration = Duration::from_secs(10);
/// How long a check script may run.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one `exec` of a solution may run.
const SOLVE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a solution's `wait` waits.
const WAIT_TIMEOUT: Duration = Duration::from_secs(30);
/// What a learner is shown of a failing check's output, and what `NAME.output` keeps.
const CHECK_OUTPUT: usize = 1024;
pub(super) const OUTPUT_FACT: usize = 4096;

/// The lesson a session follows.
pub(super) struct LessonRun {
    pub lesson: Arc<Lesson>,
    pub progress: Progress,
    /// A check (or a solution's wait) is being evaluated.
    probing: bool,
    /// Something happened since the last check started; and when that was.
    dirty: bool,
    last_probe: Instant,
    solve: Option<SolveRun>,
    /// Bumped when the lesson restarts: reports of an older run are dropped.
    generation: u64,
}

struct SolveRun {
    reference: Option<Ref>,
    actions: VecDeque<Action>,
    /// An action runs (an exec, a build): the next starts when it reports.
    busy: bool,
    waiting: Option<(Expr, Instant)>,
}

/// What a probe was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Probe {
    Step(usize),
    Wait,
}

impl LessonRun {
    pub fn state(&self) -> LessonState {
        LessonState {
            lesson: self.lesson.info.clone(),
            progress: self.progress.clone(),
        }
    }
}

impl Session {
    /// `lessons`: the catalog's list.
    pub(super) async fn lessons(&self, reference: Option<Ref>) {
        let lessons = self.state.lessons.summaries();
        self.send(ServerMsg::Lessons { reference, lessons }).await;
    }

    /// `lesson_start`: the session's containers make way for the lesson's.
    pub(super) async fn lesson_start(&mut self, reference: Option<Ref>, name: &str) {
        let Some(lesson) = self.state.lessons.get(name) else {
            let message = format!("no lesson {name:?} on this server");
            return self.error(reference, codes::UNKNOWN_LESSON, message).await;
        };
        if let Some(joined) = &self.joined {
            if joined.workshop.lesson != name {
                let message = format!(
                    "this session follows the workshop's lesson {:?}",
                    joined.workshop.lesson
                );
                return self.error(reference, codes::FORBIDDEN, message).await;
            }
        }
        self.remove_all().await;
        self.exited.clear();
        let generation = self.lesson.as_ref().map_or(0, |l| l.generation + 1);
        let run = LessonRun {
            progress: Progress::new(lesson.steps.len()),
            lesson: lesson.clone(),
            probing: false,
            dirty: true,
            last_probe: Instant::now(),
            solve: None,
            generation,
        };
        let state = run.state();
        self.lesson = Some(run);
        self.send(ServerMsg::Lesson { reference, state }).await;
        for spec in &lesson.containers {
            self.create(reference, spec.clone()).await;
        }
        self.report_progress().await;
    }

    /// `lesson_solve`: run a step's solution.
    pub(super) async fn lesson_solve(&mut self, reference: Option<Ref>, step: u32) {
        let Some(run) = self.lesson.as_mut() else {
            return self
                .error(reference, codes::NO_LESSON, "start a lesson first")
                .await;
        };
        let Some(def) = run.lesson.steps.get(step as usize) else {
            let message = format!("the lesson has {} steps", run.lesson.steps.len());
            return self.error(reference, "unknown_step", message).await;
        };
        if run.solve.is_some() {
            let message = "a solution is running already";
            return self.error(reference, codes::LIMIT_REACHED, message).await;
        }
        let i = step as usize;
        if !run.progress.passed[i] {
            run.progress.solved[i] = true;
        }
        run.solve = Some(SolveRun {
            reference,
            actions: def.solve.iter().cloned().collect(),
            busy: false,
            waiting: None,
        });
        self.report_progress().await;
        self.advance_solve().await;
    }

    /// Run the solution's actions until one must be waited for.
    async fn advance_solve(&mut self) {
        loop {
            let Some(run) = self.lesson.as_mut() else {
                return;
            };
            let generation = run.generation;
            let Some(solve) = run.solve.as_mut() else {
                return;
            };
            if solve.busy || solve.waiting.is_some() {
                return;
            }
            let reference = solve.reference;
            let Some(action) = solve.actions.pop_front() else {
                run.solve = None;
                run.dirty = true;
                return;
            };
            match action {
                Action::Exec { container, script } => {
                    let Some(id) = self.find(&container).map(|c| c.id.clone()) else {
                        return self
                            .solve_failed(format!("{container} is not running"))
                            .await;
                    };
                    self.solve_busy(true);
                    let rt = self.state.runtime.clone();
                    let events = self.events.clone();
                    tokio::task::spawn_blocking(move || {
                        let result = match run_script(&rt, &id, &script, SOLVE_TIMEOUT) {
                            Ok((0, _)) => Ok(()),
                            Ok((code, out)) => Err(format!(
                                "`{script}` in {container} exited with {code}: {out}"
                            )),
                            Err(e) => Err(format!("`{script}` in {container}: {e}")),
                        };
                        let _ = events.send(Event::SolveExec { generation, result });
                    });
                    return;
                }
                Action::Create(spec) => {
                    let name = spec.name.clone().unwrap_or_default();
                    // The learner's own attempt under that name makes way for the solution's.
                    if self.find(&name).is_some() {
                        self.remove(reference, &name).await;
                    }
                    self.create(reference, *spec).await;
                    if !self.containers.contains_key(&name) {
                        return self.solve_failed(format!("could not create {name}")).await;
                    }
                }
                Action::Remove(name) => {
                    if self.find(&name).is_some() {
                        self.remove(reference, &name).await;
                    }
                }
                Action::MoveInterface {
                    interface,
                    from,
                    to,
                } => {
                    if !self
                        .move_interface(reference, &interface, InterfaceKind::Veth, &from, &to)
                        .await
                    {
                        let message = format!("could not move {interface} from {from} to {to}");
                        return self.solve_failed(message).await;
                    }
                }
                Action::Build { name, dockerfile } => {
                    self.build(reference, name.clone(), dockerfile).await;
                    if !self.building {
                        return self.solve_failed(format!("could not build {name}")).await;
                    }
                    self.solve_busy(true);
                    return;
                }
                Action::Wait(expr) => {
                    if let Some(solve) = self.lesson.as_mut().and_then(|l| l.solve.as_mut()) {
                        solve.waiting = Some((expr, Instant::now() + WAIT_TIMEOUT));
                    }
                    return;
                }
            }
        }
    }

    fn solve_busy(&mut self, busy: bool) {
        if let Some(solve) = self.lesson.as_mut().and_then(|l| l.solve.as_mut()) {
            solve.busy = busy;
        }
    }

    async fn solve_failed(&mut self, message: String) {
        let Some(run) = self.lesson.as_mut() else {
            return;
        };
        let reference = run.solve.take().and_then(|s| s.reference);
        self.error(reference, "solve_failed", message).await;
    }

    /// A solution's exec ended.
    pub(super) async fn on_solve_exec(&mut self, generation: u64, result: Result<(), String>) {
        if self.lesson.as_ref().map(|l| l.generation) != Some(generation) {
            return;
        }
        match result {
            Ok(()) => {
                self.solve_busy(false);
                self.advance_solve().await;
            }
            Err(message) => self.solve_failed(message).await,
        }
    }

    /// A build ended: a solution waiting for it goes on (or stops, if it failed).
    pub(super) async fn on_build_ended(&mut self, built: bool) {
        let waiting = self
            .lesson
            .as_ref()
            .and_then(|l| l.solve.as_ref())
            .is_some_and(|s| s.busy);
        if !waiting {
            return;
        }
        if built {
            self.solve_busy(false);
            self.advance_solve().await;
        } else {
            self.solve_failed("the build failed (its log says why)".into())
                .await;
        }
    }

    /// Whether the check timer should tick: a lesson runs, nothing is being probed, and a
    /// step is left (or a solution waits). (The loop re-reads this only when it wakes, so the
    /// timer keeps ticking; [`Self::lesson_probe`] decides whether a check is due.)
    pub(super) fn lesson_wants_probe(&self) -> bool {
        self.lesson.as_ref().is_some_and(|l| {
            let waiting = l.solve.as_ref().is_some_and(|s| s.waiting.is_some());
            let checking = l.solve.is_none() && !l.progress.finished();
            !l.probing && (waiting || checking)
        })
    }

    /// The learner did something: the check re-runs soon.
    pub(super) fn lesson_touched(&mut self) {
        if let Some(l) = self.lesson.as_mut() {
            l.dirty = true;
        }
    }

    /// Start evaluating the current step's check (or the solution's wait).
    pub(super) async fn lesson_probe(&mut self) {
        let Some(run) = self.lesson.as_mut() else {
            return;
        };
        let generation = run.generation;
        let (probe, check) = match run.solve.as_mut() {
            Some(solve) => match &solve.waiting {
                Some((expr, deadline)) if Instant::now() > *deadline => {
                    let message =
                        format!("waited {} s for {}", WAIT_TIMEOUT.as_secs(), expr.show());
                    return self.solve_failed(message).await;
                }
                Some((expr, _)) => (Probe::Wait, Check::Condition(expr.clone())),
                None => return,
            },
            // Nothing happened since the last check, which was not long ago.
            None if !run.dirty && run.last_probe.elapsed() < QUIET_RECHECK => return,
            None => {
                let step = run.progress.current as usize;
                let Some(def) = run.lesson.steps.get(step) else {
                    return;
                };
                (Probe::Step(step), def.check.clone())
            }
        };
        run.probing = true;
        run.dirty = false;
        run.last_probe = Instant::now();
        let events = self.events.clone();
        let rt = self.state.runtime.clone();
        match check {
            Check::Condition(expr) => {
                let gather = self.gather(&expr);
                tokio::task::spawn_blocking(move || {
                    let facts = gather.facts(&rt, &expr);
                    let outcome = expr.eval(&facts);
                    let _ = events.send(Event::Probed {
                        generation,
                        probe,
                        outcome,
                    });
                });
            }
            Check::Script { container, script } => {
                let id = self.find(&container).map(|c| c.id.clone());
                tokio::task::spawn_blocking(move || {
                    let outcome = match id {
                        None => Outcome {
                            holds: false,
                            reason: Some(format!("{container} is not running")),
                        },
                        Some(id) => match run_script(&rt, &id, &script, CHECK_TIMEOUT) {
                            Ok((0, _)) => Outcome {
                                holds: true,
                                reason: None,
                            },
                            Ok((code, out)) => Outcome {
                                holds: false,
                                reason: Some(if out.trim().is_empty() {
                                    format!("the check exited with {code}")
                                } else {
                                    format!("the check exited with {code}: {}", out.trim())
                                }),
                            },
                            Err(e) => Outcome {
                                holds: false,
                                reason: Some(e),
                            },
                        },
                    };
                    let _ = events.send(Event::Probed {
                        generation,
                        probe,
                        outcome,
                    });
                });
            }
        }
    }

    /// A probe's result.
    pub(super) async fn on_probed(&mut self, generation: u64, probe: Probe, outcome: Outcome) {
        let Some(run) = self.lesson.as_mut() else {
            return;
        };
        if run.generation != generation {
            return;
        }
        run.probing = false;
        match probe {
            Probe::Wait => {
                if outcome.holds {
                    if let Some(solve) = run.solve.as_mut() {
                        solve.waiting = None;
                    }
                    self.advance_solve().await;
                }
            }
            Probe::Step(step) => {
                if step != run.progress.current as usize {
                    return;
                }
                let changed = if outcome.holds {
                    run.progress.passed[step] = true;
                    run.progress.current =
                        run.progress
                            .passed
                            .iter()
                            .position(|p| !p)
                            .unwrap_or(run.progress.passed.len()) as u32;
                    run.progress.last_check = None;
                    // The next step's check runs at once: the learner sees where they stand.
                    run.dirty = true;
                    true
                } else {
                    let reason = outcome.reason.map(|r| cut(&r, CHECK_OUTPUT));
                    let changed = run.progress.last_check != reason;
                    run.progress.last_check = reason;
                    changed
                };
                if changed {
                    self.report_progress().await;
                }
            }
        }
    }

    /// Tell the page, and the workshop's trainer.
    pub(super) async fn report_progress(&mut self) {
        let Some(run) = &self.lesson else { return };
        let progress = run.progress.clone();
        self.send(ServerMsg::Progress {
            progress: progress.clone(),
        })
        .await;
        self.report_to_workshop();
    }

    /// What a condition needs, taken from the session now; read on the blocking pool. Only
    /// the containers (and the host) the condition names are looked at.
    fn gather(&self, expr: &Expr) -> Gather {
        let subjects: Vec<Subject> = self.subjects.values().cloned().collect();
        let named: std::collections::BTreeSet<&str> = expr
            .facts()
            .iter()
            .filter_map(|p| p.first().map(String::as_str))
            .collect();
        let mut watched: std::collections::BTreeSet<ViewTarget> = subjects
            .iter()
            .filter(|s| named.contains(s.name.as_str()))
            .map(|s| ViewTarget::Container(s.name.clone()))
            .collect();
        if named.contains("host") {
            watched.insert(ViewTarget::Host);
        }
        let network = self.network.clone().map(|plan| SessionNetwork {
            plan,
            members: self
                .members
                .iter()
                .map(|(name, m)| (name.clone(), m.ip.clone(), Vec::new()))
                .collect(),
        });
        let containers = self
            .containers
            .values()
            .map(|c| {
                let runtime = match c.runtime.as_str() {
                    "" => "isolab".to_string(),
                    r => r.to_string(),
                };
                (c.name.clone(), c.image.clone(), runtime)
            })
            .collect();
        let mut outputs: Vec<(String, String)> = self.exited_output.clone().into_iter().collect();
        for info in self.containers.values() {
            if let Some(term) = info.handles.first().and_then(|h| self.terminals.get(h)) {
                outputs.push((info.name.clone(), tail(&term.scrollback.contents())));
            }
        }
        let exited = self
            .exited
            .iter()
            .map(|(name, (code, oom))| (name.clone(), *code, *oom))
            .collect();
        Gather {
            subjects,
            watched,
            network,
            extras: Extras {
                containers,
                outputs,
                exited,
                images: Vec::new(),
            },
            built: self.built_images(),
        }
    }
}

/// A snapshot of the session for one evaluation.
struct Gather {
    subjects: Vec<Subject>,
    watched: std::collections::BTreeSet<ViewTarget>,
    network: Option<SessionNetwork>,
    extras: Extras,
    /// The session's own images: user name → store name.
    built: Vec<(String, String)>,
}

impl Gather {
    fn facts(mut self, rt: &Runtime, expr: &Expr) -> serde_json::Value {
        let views = Observer::new().observe(
            rt.cgroups.as_ref(),
            &self.subjects,
            &self.watched,
            &self.watched,
            self.network.as_ref(),
        );
        if expr
            .facts()
            .iter()
            .any(|p| p.first().is_some_and(|f| f == "images"))
        {
            self.extras.images = image_layers(rt, &self.built);
        }
        facts::build(&views, &self.extras)
    }
}

/// Every image a session may use, by the name it knows, with its layer count.
fn image_layers(rt: &Runtime, built: &[(String, String)]) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for name in rt.images.list().unwrap_or_default() {
        if super::images::is_session_image(&name) {
            continue;
        }
        if let Ok(r) = rt.images.record(&name) {
            out.push((name, r.layers.len()));
        }
    }
    for (user, store) in built {
        if let Ok(r) = rt.images.record(store) {
            out.retain(|(n, _)| n != user);
            out.push((user.clone(), r.layers.len()));
        }
    }
    out
}

/// The last [`OUTPUT_FACT`] bytes of a terminal, as text.
pub(super) fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(OUTPUT_FACT);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// Run `sh -c SCRIPT` in a container without a terminal, as `docker exec` would: its exit code
/// and what it printed (stdout and stderr together, the first [`CHECK_OUTPUT`] bytes). Killed
/// after `timeout`.
fn run_script(
    rt: &Runtime,
    id: &str,
    script: &str,
    timeout: Duration,
) -> Result<(i32, String), String> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let cloexec = nix::fcntl::OFlag::O_CLOEXEC;
    let (out_r, out_w) = nix::unistd::pipe2(cloexec).map_err(|e| format!("pipe: {e}"))?;
    let err_w: OwnedFd = out_w.try_clone().map_err(|e| format!("dup: {e}"))?;
    let null: OwnedFd = std::fs::File::open("/dev/null")
        .map_err(|e| format!("/dev/null: {e}"))?
        .into();
    let args = vec!["sh".into(), "-c".into(), script.to_string()];
    let mut c = rt
        .exec(
            id,
            args,
            Vec::new(),
            false,
            StdioSpec::Fds([null, out_w, err_w]),
        )
        .map_err(|e| e.to_string())?;
    c.start().map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let mut timed_out = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            timed_out = true;
            break;
        }
        // At most a minute per wait: fits a u16 of milliseconds.
        let ms = PollTimeout::from(left.as_millis().min(60_000) as u16);
        let mut fds = [PollFd::new(out_r.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) => continue,
            Ok(_) => match nix::unistd::read(&out_r, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if out.len() < CHECK_OUTPUT {
                        out.extend_from_slice(&buf[..n]);
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(format!("read the script's output: {e}")),
            },
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
    }
    if timed_out {
        let _ = c.signal(libc::SIGKILL);
    }
    let status = c.wait().map_err(|e| e.to_string())?;
    if timed_out {
        return Err(format!(
            "the script ran longer than {} s",
            timeout.as_secs()
        ));
    }
    out.truncate(CHECK_OUTPUT);
    Ok((status.code, String::from_utf8_lossy(&out).into_owned()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn cut_keeps_characters_whole() {
        assert_eq!(super::cut("héllo", 2), "h...");
        assert_eq!(super::cut("abc", 5), "abc");
        assert_eq!(super::tail(b"abc"), "abc");
    }
}
