//! Workshops: a trainer (holding the server's admin token) runs a lesson for attendees who join
//! with a code and a display name. Each attendee is an ordinary session; this hub only knows
//! who is in which workshop, what each attendee's progress and containers are (for the
//! trainer's dashboard, a `watch` channel per workshop), and how to reach an attendee's session
//! (a command channel: end, and read-only watching of a terminal).
//!
//! Workshops live in memory: a server restart ends them, as it ends every session.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use isolab_shared::protocol::{AttendeeView, Handle, WorkshopBrief, WorkshopView};
use tokio::sync::{mpsc, watch};

use crate::lessons::Lesson;

/// Letters and digits that cannot be mistaken for one another when read aloud or from a
/// projector (no 0/O, 1/I/L).
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const CODE_LEN: usize = 6;
/// Longest display name, in characters.
const MAX_NAME: usize = 40;

/// What the hub asks of an attendee's session.
#[derive(Debug)]
pub enum Command {
    /// The workshop ended: remove everything and close.
    End,
    /// Send a copy of terminal `handle`'s output (its scrollback first) to `sink`, marked
    /// with `remote` (the trainer's handle for it), until `Unspectate`.
    Spectate {
        handle: Handle,
        remote: Handle,
        trainer: u64,
        sink: mpsc::Sender<Spectated>,
    },
    Unspectate {
        remote: Handle,
        trainer: u64,
    },
}

/// A chunk of a watched terminal's output, for the trainer's session.
#[derive(Debug)]
pub struct Spectated {
    pub remote: Handle,
    pub data: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WorkshopError {
    #[error("no workshop with code {0:?} is running (check the code, or ask your trainer)")]
    UnknownCode(String),
    #[error("no workshop {0:?} is running")]
    Unknown(String),
    #[error("no attendee {0:?} in this workshop")]
    UnknownAttendee(String),
    #[error("{0}")]
    BadName(String),
}

struct Attendee {
    commands: mpsc::UnboundedSender<Command>,
    view: AttendeeView,
}

struct Workshop {
    brief: WorkshopBrief,
    join_path: String,
    steps: Vec<String>,
    attendees: BTreeMap<String, Attendee>,
    next_attendee: u32,
    dashboard: watch::Sender<WorkshopView>,
    created: std::time::Instant,
}

impl Workshop {
    fn view(&self, ended: bool) -> WorkshopView {
        WorkshopView {
            brief: self.brief.clone(),
            join_path: self.join_path.clone(),
            steps: self.steps.clone(),
            attendees: self.attendees.values().map(|a| a.view.clone()).collect(),
            ended,
        }
    }

    fn publish(&self) {
        self.dashboard.send_replace(self.view(false));
    }
}

/// Every live workshop of the server.
pub struct Workshops {
    admin_token: String,
    /// The server's access token (`--token`), which a join link must carry too.
    access_token: Option<String>,
    /// This node's name, in the join link: a workshop lives on one node, and a balancer in
    /// front of several takes its attendees there by it (`docker/nginx/isolab.conf`).
    node: String,
    live: Mutex<HashMap<String, Workshop>>,
    trainers: AtomicU64,
}

impl Workshops {
    pub fn new(admin_token: String, access_token: Option<String>, node: String) -> Workshops {
        Workshops {
            admin_token,
            access_token,
            node,
            live: Mutex::new(HashMap::new()),
            trainers: AtomicU64::new(1),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, Workshop>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `token` is the admin token (compared in constant time).
    pub fn is_admin(&self, token: &str) -> bool {
        crate::server::admission::constant_time_eq(self.admin_token.as_bytes(), token.as_bytes())
    }

    /// A number that tells one trainer session's watches from another's.
    pub fn trainer_id(&self) -> u64 {
        self.trainers.fetch_add(1, Ordering::Relaxed)
    }

    /// A new workshop running `lesson`.
    pub fn create(&self, lesson: &Lesson, title: Option<String>) -> WorkshopView {
        let mut live = self.live();
        let code = loop {
            let code = random_code();
            if !live.values().any(|w| w.brief.code == code) {
                break code;
            }
        };
        let id = random_hex(8);
        let title = title
            .map(|t| t.trim().chars().take(100).collect::<String>())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| lesson.title.clone());
        let node = &self.node;
        let join_path = match &self.access_token {
            Some(token) => format!("/?join={code}&node={node}&token={token}"),
            None => format!("/?join={code}&node={node}"),
        };
        let brief = WorkshopBrief {
            id: id.clone(),
            code,
            title,
            lesson: lesson.name.clone(),
        };
        let steps: Vec<String> = lesson.steps.iter().map(|s| s.title.clone()).collect();
        let (dashboard, _) = watch::channel(WorkshopView {
            brief: brief.clone(),
            join_path: join_path.clone(),
            steps: steps.clone(),
            attendees: Vec::new(),
            ended: false,
        });
        let w = Workshop {
            brief,
            join_path,
            steps,
            attendees: BTreeMap::new(),
            next_attendee: 1,
            dashboard,
            created: std::time::Instant::now(),
        };
        let view = w.view(false);
        live.insert(id, w);
        view
    }

    pub fn list(&self) -> Vec<WorkshopView> {
        let mut out: Vec<WorkshopView> = self.live().values().map(|w| w.view(false)).collect();
        out.sort_by(|a, b| a.brief.title.cmp(&b.brief.title));
        out
    }

    /// Whether `code` joins a running workshop (any case).
    pub fn is_live_code(&self, code: &str) -> bool {
        let code = code.trim().to_ascii_uppercase();
        self.live().values().any(|w| w.brief.code == code)
    }

    /// Follow a workshop's dashboard.
    pub fn subscribe(&self, id: &str) -> Result<watch::Receiver<WorkshopView>, WorkshopError> {
        let live = self.live();
        let w = live
            .get(id)
            .ok_or_else(|| WorkshopError::Unknown(id.to_string()))?;
        Ok(w.dashboard.subscribe())
    }

    /// An attendee joins: the workshop, and the attendee's id in it.
    pub fn join(
        &self,
        code: &str,
        name: &str,
        commands: mpsc::UnboundedSender<Command>,
    ) -> Result<(WorkshopBrief, String), WorkshopError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control)
        {
            return Err(WorkshopError::BadName(format!(
                "a display name is 1 to {MAX_NAME} characters, without control characters"
            )));
        }
        let code = code.trim().to_ascii_uppercase();
        let mut live = self.live();
        let w = live
            .values_mut()
            .find(|w| w.brief.code == code)
            .ok_or_else(|| WorkshopError::UnknownCode(code.clone()))?;
        if w.attendees.values().any(|a| a.view.name == name) {
            return Err(WorkshopError::BadName(format!(
                "{name:?} is taken in this workshop: choose another name"
            )));
        }
        let id = format!("a{}", w.next_attendee);
        w.next_attendee += 1;
        w.attendees.insert(
            id.clone(),
            Attendee {
                commands,
                view: AttendeeView {
                    id: id.clone(),
                    name: name.to_string(),
                    connected: true,
                    progress: Default::default(),
                    containers: Vec::new(),
                },
            },
        );
        w.publish();
        Ok((w.brief.clone(), id))
    }

    /// An attendee's session reports what changed.
    pub fn update(&self, workshop: &str, attendee: &str, f: impl FnOnce(&mut AttendeeView)) {
        let mut live = self.live();
        let Some(w) = live.get_mut(workshop) else {
            return;
        };
        let Some(a) = w.attendees.get_mut(attendee) else {
            return;
        };
        let before = a.view.clone();
        f(&mut a.view);
        if a.view != before {
            w.publish();
        }
    }

    /// The name of an attendee's container that has terminal `handle`.
    pub fn container_of(&self, workshop: &str, attendee: &str, handle: Handle) -> Option<String> {
        let live = self.live();
        let a = live.get(workshop)?.attendees.get(attendee)?;
        a.view
            .containers
            .iter()
            .find(|c| c.handles.contains(&handle))
            .map(|c| c.name.clone())
    }

    /// Ask an attendee's session for something.
    pub fn command(
        &self,
        workshop: &str,
        attendee: &str,
        command: Command,
    ) -> Result<String, WorkshopError> {
        let live = self.live();
        let w = live
            .get(workshop)
            .ok_or_else(|| WorkshopError::Unknown(workshop.to_string()))?;
        let a = w
            .attendees
            .get(attendee)
            .ok_or_else(|| WorkshopError::UnknownAttendee(attendee.to_string()))?;
        a.commands
            .send(command)
            .map_err(|_| WorkshopError::UnknownAttendee(attendee.to_string()))?;
        Ok(a.view.name.clone())
    }

    /// End a workshop: every attendee's session removes its containers and closes; the
    /// dashboard shows it ended.
    pub fn end(&self, id: &str) -> Result<(), WorkshopError> {
        let w = self
            .live()
            .remove(id)
            .ok_or_else(|| WorkshopError::Unknown(id.to_string()))?;
        for a in w.attendees.values() {
            let _ = a.commands.send(Command::End);
        }
        w.dashboard.send_replace(w.view(true));
        Ok(())
    }

    /// End the workshops older than `max_age` (a session's maximum lifetime: by then every
    /// attendee's session has ended anyway); returns their ids.
    pub fn end_older_than(&self, max_age: std::time::Duration) -> Vec<String> {
        let old: Vec<String> = self
            .live()
            .iter()
            .filter(|(_, w)| w.created.elapsed() >= max_age)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &old {
            let _ = self.end(id);
        }
        old
    }

    /// End every workshop (the server stops).
    pub fn end_all(&self) {
        let ids: Vec<String> = self.live().keys().cloned().collect();
        for id in ids {
            let _ = self.end(&id);
        }
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the kernel's random source");
    bytes
}

fn random_code() -> String {
    // 256 is not a multiple of 31: drop the bytes past the last whole multiple, so every
    // letter is as likely as another.
    let limit = 256 - 256 % CODE_ALPHABET.len();
    let mut code = String::new();
    while code.len() < CODE_LEN {
        for b in random_bytes::<16>() {
            if (b as usize) < limit && code.len() < CODE_LEN {
                code.push(CODE_ALPHABET[b as usize % CODE_ALPHABET.len()] as char);
            }
        }
    }
    code
}

/// `n` random bytes as hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("the kernel's random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lesson() -> Lesson {
        let catalog = crate::lessons::Catalog::built_in().unwrap();
        (*catalog.get("uts").unwrap()).clone()
    }

    #[test]
    fn codes_are_six_unambiguous_characters() {
        for _ in 0..200 {
            let code = random_code();
            assert_eq!(code.len(), 6);
            assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)), "{code}");
        }
    }

    #[test]
    fn join_update_and_end() {
        let hub = Workshops::new("admin".into(), Some("t0k".into()), "n1".into());
        assert!(hub.is_admin("admin") && !hub.is_admin("admim"));
        let view = hub.create(&lesson(), Some("  Friday  ".into()));
        assert_eq!(view.brief.title, "Friday");
        assert_eq!(
            view.join_path,
            format!("/?join={}&node=n1&token=t0k", view.brief.code)
        );
        let mut dash = hub.subscribe(&view.brief.id).unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let code = view.brief.code.to_lowercase();
        let (brief, ada) = hub.join(&code, " Ada ", tx.clone()).unwrap();
        assert_eq!(brief.id, view.brief.id);
        assert!(matches!(
            hub.join(&code, "Ada", tx.clone()),
            Err(WorkshopError::BadName(_))
        ));
        assert!(matches!(
            hub.join(&code, "", tx.clone()),
            Err(WorkshopError::BadName(_))
        ));
        assert!(matches!(
            hub.join("ZZZZZZ", "Bob", tx.clone()),
            Err(WorkshopError::UnknownCode(_))
        ));
        hub.update(&brief.id, &ada, |a| a.progress.passed = vec![true, false]);
        let seen = dash.borrow_and_update().clone();
        assert_eq!(seen.attendees[0].name, "Ada");
        assert_eq!(seen.attendees[0].progress.passed, vec![true, false]);
        hub.end(&brief.id).unwrap();
        assert!(matches!(rx.try_recv(), Ok(Command::End)));
        assert!(dash.borrow_and_update().ended);
        assert!(hub.list().is_empty());
        assert!(matches!(
            hub.join(&code, "Cy", tx),
            Err(WorkshopError::UnknownCode(_))
        ));
        let young = hub.create(&lesson(), None);
        assert!(hub
            .end_older_than(std::time::Duration::from_secs(3600))
            .is_empty());
        assert_eq!(
            hub.end_older_than(std::time::Duration::ZERO),
            vec![young.brief.id]
        );
        assert!(hub.list().is_empty());
    }
}
