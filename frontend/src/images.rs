//! Images as the page keeps them (issue 5): the server's list with each image's layer stack,
//! which one the form's picker has selected, and the last build — its streamed log (the last
//! [`LOG_CAP`] bytes), the stack it grows layer by layer, and how it ended.
//!
//! Plain Rust, unit-tested on the host. `AppState` holds one [`Images`] and feeds it the
//! `images`, `build_log`, `build_layer` and `built` messages; [`stack_rows`] and
//! [`config_rows`] turn an image into what the layer stack panel draws.

use isolab_shared::protocol::{ImageInfo, LayerInfo, Ref};

use crate::state::Problem;
use crate::view::format;

/// The image the form starts with (the server's built-in one).
pub const DEFAULT_IMAGE: &str = "busybox";

/// How much of a build's log is kept: its last 64 KiB.
pub const LOG_CAP: usize = 64 * 1024;

/// The build panel's first Dockerfile: three RUNs, three layers, one file deleted later.
pub const EXAMPLE_DOCKERFILE: &str = "FROM busybox
RUN echo one > /one
RUN echo two > /two && echo three > /three
RUN rm /one
CMD [\"cat\", \"/two\"]
";

/// What to notice while it builds (`code` between backticks).
pub const BUILD_HINT: [&str; 3] = [
    "Every `RUN` makes a layer: its changes to the file system, stacked on the layers below.",
    "`a && b` is one RUN, so one layer; two RUNs are two layers.",
    "Deleting a file in a later layer (`RUN rm /one`) hides it, but the layer that made it is still in the image: it does not shrink.",
];

/// Where a build is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildPhase {
    Running,
    /// It made this image (the manifest's digest).
    Done(String),
    Failed(Problem),
}

/// The last build the page asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// The `ref` of its `build` request: its messages echo it.
    pub reference: Ref,
    /// The image's name (`-t`).
    pub name: String,
    /// The digests of its `FROM` image's layers, as listed when it started (to tell the layers
    /// this build made from the ones it started from).
    pub base: Vec<String>,
    /// The stack so far, by index (0 = bottom), in order.
    pub layers: Vec<(u32, LayerInfo)>,
    /// The log's last [`LOG_CAP`] bytes.
    pub log: String,
    /// Earlier log was dropped to keep under the cap.
    pub log_trimmed: bool,
    pub phase: BuildPhase,
}

impl Build {
    pub fn new(reference: Ref, name: String, base: Vec<String>) -> Build {
        Build {
            reference,
            name,
            base,
            layers: Vec::new(),
            log: String::new(),
            log_trimmed: false,
            phase: BuildPhase::Running,
        }
    }

    pub fn running(&self) -> bool {
        self.phase == BuildPhase::Running
    }

    /// More log; the oldest goes once there is more than [`LOG_CAP`] (cut at a line start when
    /// one is near, else at a character).
    pub fn log(&mut self, text: &str) {
        self.log.push_str(text);
        if self.log.len() <= LOG_CAP {
            return;
        }
        let mut cut = self.log.len() - LOG_CAP;
        while !self.log.is_char_boundary(cut) {
            cut += 1;
        }
        if let Some(newline) = self.log[cut..].find('\n').filter(|&n| n < 1024) {
            cut += newline + 1;
        }
        self.log.drain(..cut);
        self.log_trimmed = true;
    }

    /// A layer made (or, for the `FROM` image's, reached): kept in index order; a second one
    /// at the same index replaces the first.
    pub fn layer(&mut self, index: u32, layer: LayerInfo) {
        match self.layers.binary_search_by_key(&index, |(i, _)| *i) {
            Ok(at) => self.layers[at].1 = layer,
            Err(at) => self.layers.insert(at, (index, layer)),
        }
    }

    /// The stack so far, bottom first.
    pub fn stack(&self) -> Vec<LayerInfo> {
        self.layers.iter().map(|(_, l)| l.clone()).collect()
    }

    /// Whether this build made `layer` (it is not its base image's layer at that index).
    pub fn made(&self, index: usize, layer: &LayerInfo) -> bool {
        self.base.get(index) != Some(&layer.digest)
    }
}

/// Every image, the picker's choice, and the last build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    /// As the server listed them (plus what a `built` added since).
    pub list: Vec<ImageInfo>,
    /// The image the create form will use.
    pub selected: String,
    pub build: Option<Build>,
    /// The stack panel shows the build (while it runs, and after it failed until another image
    /// is picked) rather than the selected image.
    pub showing_build: bool,
}

impl Default for Images {
    fn default() -> Self {
        Images {
            list: Vec::new(),
            selected: DEFAULT_IMAGE.to_string(),
            build: None,
            showing_build: false,
        }
    }
}

impl Images {
    pub fn get(&self, name: &str) -> Option<&ImageInfo> {
        self.list.iter().find(|i| i.name == name)
    }

    pub fn selected(&self) -> Option<&ImageInfo> {
        self.get(&self.selected)
    }

    pub fn building(&self) -> bool {
        self.build.as_ref().is_some_and(Build::running)
    }

    /// An `images` message: the server's list replaces ours.
    pub fn listed(&mut self, images: Vec<ImageInfo>) {
        self.list = images;
    }

    /// The picker's choice; the stack panel shows it.
    pub fn select(&mut self, name: String) {
        self.selected = name;
        if !self.building() {
            self.showing_build = false;
        }
    }

    /// A `build` request went out: it replaces the last build.
    pub fn started(&mut self, reference: Ref, name: String, from: Option<&str>) {
        let base = from
            .and_then(|f| self.get(f))
            .map(|image| image.layers.iter().map(|l| l.digest.clone()).collect())
            .unwrap_or_default();
        self.build = Some(Build::new(reference, name, base));
        self.showing_build = true;
    }

    /// The running build whose request was `reference`.
    pub fn build_for(&mut self, reference: Option<Ref>) -> Option<&mut Build> {
        self.build
            .as_mut()
            .filter(|b| b.running() && Some(b.reference) == reference)
    }

    /// A `built`: the image joins the list (replacing one of that name), is selected, and the
    /// build it ends (if it is ours) is done with its final stack.
    pub fn built(&mut self, reference: Option<Ref>, image: ImageInfo) {
        if let Some(build) = self.build_for(reference) {
            build.layers = (0..).zip(image.layers.iter().cloned()).collect();
            build.phase = BuildPhase::Done(image.id.clone());
            self.showing_build = false;
            self.selected = image.name.clone();
        }
        match self.list.iter_mut().find(|i| i.name == image.name) {
            Some(kept) => *kept = image,
            None => self.list.push(image),
        }
    }

    /// The running build failed (or can no longer be followed).
    pub fn failed(&mut self, problem: Problem) {
        if let Some(build) = self.build.as_mut().filter(|b| b.running()) {
            build.phase = BuildPhase::Failed(problem);
        }
    }

    /// What the stack panel draws: a title, the rows (top first) and the image, if it is one.
    pub fn shown(&self) -> Shown<'_> {
        match &self.build {
            Some(build) if self.showing_build => {
                let stack = build.stack();
                let latest = build.running().then(|| stack.len().saturating_sub(1));
                Shown {
                    source: "build",
                    title: match &build.phase {
                        BuildPhase::Running => format!("building {}…", build.name),
                        _ => format!("{}: the build stopped", build.name),
                    },
                    rows: stack_rows(&stack, |i, l| build.made(i, l), latest),
                    image: None,
                }
            }
            _ => {
                let image = self.selected();
                // The image the last build made: its own layers are marked.
                let build = self
                    .build
                    .as_ref()
                    .filter(|b| image.is_some_and(|i| b.phase == BuildPhase::Done(i.id.clone())));
                let rows = image.map_or_else(Vec::new, |i| {
                    stack_rows(
                        &i.layers,
                        |at, l| build.is_some_and(|b| b.made(at, l)),
                        None,
                    )
                });
                Shown {
                    source: "image",
                    title: self.selected.clone(),
                    rows,
                    image,
                }
            }
        }
    }
}

/// The stack panel's content.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown<'a> {
    /// `build` (a build's stack so far) or `image` (the selected image).
    pub source: &'static str,
    pub title: String,
    /// Top of the stack first.
    pub rows: Vec<StackRow>,
    pub image: Option<&'a ImageInfo>,
}

/// One layer as drawn: a box in the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackRow {
    /// Its place in the stack (0 = bottom).
    pub index: usize,
    pub digest: String,
    pub short_digest: String,
    pub size: u64,
    pub size_text: String,
    /// The instruction that made it (empty if the image does not say).
    pub created_by: String,
    /// Made by the last build (not in its base image).
    pub new: bool,
    /// The layer that arrived last during a running build.
    pub latest: bool,
    /// Its size against the largest layer's, in percent (at least 2, to stay visible).
    pub bar: u32,
}

/// The rows for `layers` (bottom first), top first; `new` says which the last build made.
pub fn stack_rows(
    layers: &[LayerInfo],
    new: impl Fn(usize, &LayerInfo) -> bool,
    latest: Option<usize>,
) -> Vec<StackRow> {
    let largest = layers.iter().map(|l| l.size).max().unwrap_or(0).max(1);
    layers
        .iter()
        .enumerate()
        .rev()
        .map(|(index, layer)| StackRow {
            index,
            digest: layer.digest.clone(),
            short_digest: short_digest(&layer.digest),
            size: layer.size,
            size_text: format::bytes(layer.size),
            created_by: layer.created_by.clone().unwrap_or_default(),
            new: new(index, layer),
            latest: latest == Some(index),
            bar: ((layer.size.saturating_mul(100) / largest) as u32).max(2),
        })
        .collect()
}

/// `sha256:0123456789ab…` → `0123456789ab` (docker's short form).
pub fn short_digest(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, hex)| hex);
    hex.chars().take(12).collect()
}

/// The image's run settings as (instruction, value) rows; `—` where it sets nothing.
pub fn config_rows(image: &ImageInfo) -> Vec<(&'static str, String)> {
    let unset = || "—".to_string();
    let env = if image.env.is_empty() {
        unset()
    } else {
        image.env.join("\n")
    };
    vec![
        (
            "ENTRYPOINT",
            image.entrypoint.as_deref().map_or_else(unset, exec_form),
        ),
        ("CMD", image.cmd.as_deref().map_or_else(unset, exec_form)),
        ("WORKDIR", image.workdir.clone().unwrap_or_else(unset)),
        ("USER", image.user.clone().unwrap_or_else(unset)),
        ("ENV", env),
    ]
}

/// What a container of `image` runs when its command is left empty: ENTRYPOINT then CMD.
pub fn default_command(image: &ImageInfo) -> Vec<String> {
    let mut out = image.entrypoint.clone().unwrap_or_default();
    out.extend(image.cmd.iter().flatten().cloned());
    out
}

/// A list as a Dockerfile's exec form writes it: `["cat", "/two"]`.
fn exec_form(args: &[String]) -> String {
    let quoted: Vec<String> = args
        .iter()
        .map(|a| serde_json::to_string(a).unwrap_or_default())
        .collect();
    format!("[{}]", quoted.join(", "))
}

/// The image a Dockerfile starts `FROM` (its first FROM, without `AS name`; `scratch` is none).
pub fn from_image(dockerfile: &str) -> Option<&str> {
    dockerfile.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        let first = words.next()?;
        if !first.eq_ignore_ascii_case("FROM") {
            return None;
        }
        words
            .find(|w| !w.starts_with("--"))
            .filter(|w| *w != "scratch")
    })
}

#[cfg(test)]
mod tests;
