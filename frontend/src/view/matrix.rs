//! The namespace matrix: one row per namespace kind, one column per target (the host, then
//! each container); each cell is that target's namespace of that kind, coloured by the
//! namespace's identity (see [`super::colour`]).

use isolab_shared::protocol::view::NsView;
use isolab_shared::spec::NsKind;

use super::colour;

/// One target's namespace of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub inode: u64,
    pub hue: u16,
    /// Who else is in it (`host`, other containers).
    pub shared_with: Vec<String>,
}

/// One kind across the columns; `None` where that target's namespaces are not known yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub kind: &'static str,
    pub cells: Vec<Option<Cell>>,
}

/// The rows, in [`NsKind::ALL`] order, for the columns' namespace lists (each `None` until
/// its first view).
pub fn rows(columns: &[Option<&[NsView]>]) -> Vec<Row> {
    NsKind::ALL
        .into_iter()
        .map(|kind| {
            let kind = kind.proc_name();
            let found: Vec<Option<&NsView>> = columns
                .iter()
                .map(|list| list.and_then(|l| l.iter().find(|ns| ns.kind == kind)))
                .collect();
            let hues = colour::row_hues(found.iter().flatten().map(|ns| ns.inode));
            let cells = found
                .into_iter()
                .map(|ns| {
                    ns.map(|ns| Cell {
                        inode: ns.inode,
                        hue: colour::hue_in(&hues, ns.inode),
                        shared_with: ns.shared_with.clone(),
                    })
                })
                .collect();
            Row { kind, cells }
        })
        .collect()
}

impl Cell {
    /// The tooltip: the whole inode as `readlink /proc/PID/ns/KIND` says it, and who shares it.
    pub fn tooltip(&self, kind: &str) -> String {
        let who = if self.shared_with.is_empty() {
            "not shared".to_string()
        } else {
            format!("shared with {}", self.shared_with.join(", "))
        };
        format!("{kind}:[{}] — {who}", self.inode)
    }
}
