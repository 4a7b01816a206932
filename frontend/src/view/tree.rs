//! The process tree: a target's processes (sorted by host pid, linked by `ppid`) in the order
//! `ps -H` would show them, each with its depth.

use isolab_shared::protocol::view::ProcessView;

/// Parents before their children; siblings, and roots (a process whose parent is not in the
/// list), in the list's order, which the server sorts by host pid. Each process appears once,
/// whatever its `ppid` says (a loop of parents cannot hang it). Quadratic, without maps or
/// sorting: a target's list is a few dozen processes.
pub fn tree(list: &[ProcessView]) -> Vec<(usize, &ProcessView)> {
    let parent: Vec<Option<usize>> = list
        .iter()
        .map(|p| {
            list.iter()
                .position(|q| q.pid == p.ppid)
                .filter(|_| p.ppid != p.pid)
        })
        .collect();
    let parent = &parent;
    let children = |of: Option<usize>| {
        (0..list.len())
            .rev()
            .filter(move |&i| parent[i] == of)
            .collect::<Vec<_>>()
    };

    let mut out = Vec::with_capacity(list.len());
    let mut seen = vec![false; list.len()];
    // Depth first, without recursion: a stack of (depth, index), the next sibling on top.
    let mut stack: Vec<(usize, usize)> = children(None).into_iter().map(|i| (0, i)).collect();
    while let Some((depth, i)) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        out.push((depth, &list[i]));
        stack.extend(children(Some(i)).into_iter().map(|c| (depth + 1, c)));
    }
    // Whatever a loop of parents kept out of reach of every root, flat at the end.
    for (i, process) in list.iter().enumerate() {
        if !seen[i] {
            out.push((0, process));
        }
    }
    out
}
