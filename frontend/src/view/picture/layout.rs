//! Where the picture's parts go, in SVG user units (whole pixels: the page draws the SVG at
//! its natural size and scrolls it sideways when there are many containers).
//!
//! ```text
//!  ┌ host ─────────────────────────────────────── egress off ┐
//!  │  ══════════ bridge · subnet · gateway · up ══════════    │
//!  │        │ veth1a2b            │ veth3c4d                 │
//!  └────────┼─────────────────────┼──────────────────────────┘
//!           │ eth0                │ eth0
//!      ┌─────────┐           ┌─────────┐
//!      │ alpha   │           │ beta    │
//!      │ 10.88…  │           │ 10.88…  │
//!      └────┬────┘           └────┬────┘
//!   cable0p ╰─────────────────────╯ cable0
//! ```

use super::Picture;

/// Margin around everything.
pub const PAD: i32 = 10;
/// One container's column.
pub const COLUMN: i32 = 180;
/// A container's box.
pub const BOX_WIDTH: i32 = 156;
/// The box's name and address lines; each published port adds [`PORT_LINE`].
pub const BOX_BASE: i32 = 44;
pub const PORT_LINE: i32 = 14;
/// The host's region (it holds the bridge and the veths' host ends).
pub const HOST_TOP: i32 = PAD;
pub const HOST_BOTTOM: i32 = 112;
/// The bridge's bar.
pub const BRIDGE_TOP: i32 = 38;
pub const BRIDGE_HEIGHT: i32 = 20;
/// Where the container boxes start (below the host, room for the `eth0` labels).
pub const BOX_TOP: i32 = 148;
/// The narrowest picture (the bridge's label must fit).
pub const MIN_WIDTH: i32 = 440;
/// How far below the boxes the first cable dips, and each further one more.
pub const CABLE_DIP: i32 = 26;
pub const CABLE_STEP: i32 = 16;
/// Cable ends on one box are spread this far apart.
pub const END_SPREAD: i32 = 20;

/// A box's place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub width: i32,
    pub height: i32,
}

impl Rect {
    pub fn bottom(&self) -> i32 {
        self.y + self.height
    }
}

/// A container's place: its column's middle (where its line from the bridge runs) and box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeAt {
    pub middle: i32,
    pub body: Rect,
}

/// Where an interface's name goes: outside its end of the curve (left of the left end, right
/// of the right end), so it never sits on the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label {
    pub x: i32,
    pub y: i32,
    /// `text-anchor`: `end` for a label left of its point, `start` for one right of it.
    pub anchor: &'static str,
}

/// A cable's curve and where its two interface names go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CableAt {
    /// `d` of the `<path>`.
    pub path: String,
    pub from_label: Label,
    pub to_label: Label,
}

/// The whole drawing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drawing {
    pub width: i32,
    pub height: i32,
    pub host: Rect,
    pub bridge: Rect,
    /// In the picture's node order.
    pub nodes: Vec<NodeAt>,
    /// In the picture's cable order.
    pub cables: Vec<CableAt>,
}

/// Lays `picture` out.
pub fn layout(picture: &Picture) -> Drawing {
    let columns = picture.nodes.len() as i32;
    let width = (2 * PAD + columns * COLUMN).max(MIN_WIDTH);
    let host = Rect {
        x: PAD / 2,
        y: HOST_TOP,
        width: width - PAD,
        height: HOST_BOTTOM - HOST_TOP,
    };
    let bridge = Rect {
        x: PAD + 8,
        y: BRIDGE_TOP,
        width: width - 2 * PAD - 16,
        height: BRIDGE_HEIGHT,
    };
    let nodes: Vec<NodeAt> = picture
        .nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let middle = PAD + i as i32 * COLUMN + COLUMN / 2;
            NodeAt {
                middle,
                body: Rect {
                    x: middle - BOX_WIDTH / 2,
                    y: BOX_TOP,
                    width: BOX_WIDTH,
                    height: BOX_BASE + node.ports.len() as i32 * PORT_LINE,
                },
            }
        })
        .collect();
    let lowest = nodes
        .iter()
        .map(|n| n.body.bottom())
        .max()
        // Without containers: room for the two lines that say so.
        .unwrap_or(HOST_BOTTOM + 24 + 14);

    // Each box's cable ends, spread around its middle.
    let index = |name: &str| picture.nodes.iter().position(|n| n.name == name);
    let mut ends: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (c, cable) in picture.cables.iter().enumerate() {
        for name in [&cable.from, &cable.to] {
            if let Some(i) = index(name) {
                ends[i].push(c);
            }
        }
    }
    let end_of = |node: usize, cable: usize| -> (i32, i32, i32) {
        let list = &ends[node];
        let k = list.iter().position(|&c| c == cable).unwrap_or(0) as i32;
        let spread = k * END_SPREAD - (list.len() as i32 - 1) * END_SPREAD / 2;
        let at = &nodes[node];
        (at.middle + spread, at.body.bottom(), k)
    };
    let cables: Vec<CableAt> = picture
        .cables
        .iter()
        .enumerate()
        .filter_map(|(c, cable)| {
            let (a, b) = (index(&cable.from)?, index(&cable.to)?);
            let (x1, y1, k1) = end_of(a, c);
            let (x2, y2, k2) = end_of(b, c);
            let dip = lowest + CABLE_DIP + c as i32 * CABLE_STEP;
            let label = |x: i32, y: i32, k: i32, left: bool| Label {
                x: if left { x - 5 } else { x + 5 },
                y: y + 12 + k * 11,
                anchor: if left { "end" } else { "start" },
            };
            Some(CableAt {
                path: format!("M{x1},{y1} C{x1},{dip} {x2},{dip} {x2},{y2}"),
                from_label: label(x1, y1, k1, x1 <= x2),
                to_label: label(x2, y2, k2, x2 < x1),
            })
        })
        .collect();
    let below = if cables.is_empty() {
        0
    } else {
        CABLE_DIP + cables.len() as i32 * CABLE_STEP
    };
    Drawing {
        width,
        height: lowest + below + PAD,
        host,
        bridge,
        nodes,
        cables,
    }
}
