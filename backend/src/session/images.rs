//! Images as the page sees them: the store's records turned into protocol types, and a
//! container's changes. The server collects unreferenced layers and blobs itself: after a
//! session's build fails or replaces an image, when a session's images go, and at start-up.

use isolab_shared::protocol::{codes, ChangeInfo, ImageInfo, LayerInfo, Ref, ServerMsg};

use super::{Event, Session};
use crate::runtime::container::Runtime;
use crate::runtime::image::{ImageError, ImageRecord, LayerRecord};
use crate::runtime::layer::Change;

pub fn layer_info(l: &LayerRecord) -> LayerInfo {
    LayerInfo {
        digest: l.digest.clone(),
        diff_id: l.diff_id.clone(),
        size: l.size,
        created_by: l.created_by.clone(),
    }
}

pub fn image_info(r: &ImageRecord) -> ImageInfo {
    ImageInfo {
        name: r.name.clone(),
        id: r.manifest.clone(),
        created: r.created.clone(),
        layers: r.layers.iter().map(layer_info).collect(),
        entrypoint: r.settings.entrypoint.clone(),
        cmd: r.settings.cmd.clone(),
        env: r.settings.env.clone(),
        workdir: r.settings.workdir.clone(),
        user: r.settings.user.clone(),
    }
}

/// Images a session builds are its own: stored as `session-TAG/NAME`, shown to it as `NAME`,
/// hidden from other sessions, and removed with it. Two attendees of a workshop can both build
/// `two-runs`, and neither runs the other's.
const SESSION_IMAGES: &str = "session-";

/// Whether a store name is a session's own image.
pub fn is_session_image(store_name: &str) -> bool {
    store_name.starts_with(SESSION_IMAGES)
}

/// Every image of the store (the built-in one made first if missing).
pub fn list(rt: &Runtime) -> Result<Vec<ImageInfo>, ImageError> {
    if rt
        .images
        .open(crate::runtime::image::BUSYBOX_IMAGE)
        .is_err()
    {
        rt.images.init_busybox()?;
    }
    let mut out = Vec::new();
    for name in rt.images.list()? {
        out.push(image_info(&rt.images.record(&name)?));
    }
    Ok(out)
}

pub fn change_info(c: &Change) -> ChangeInfo {
    let text = c.to_string();
    let (kind, path) = text.split_once(' ').unwrap_or(("C", &text));
    ChangeInfo {
        kind: kind.to_string(),
        path: path.to_string(),
    }
}

/// The layer folders of every live container (their lower layers), which a collection keeps
/// even when no image names them any more.
/// Collect the layers and blobs no image and no live container uses (`why` is for the log).
/// It waits for running builds and imports (they hold the store's lock shared), so whatever
/// one of them has made or reused is named by its record before this looks, or was never kept.
pub fn collect_unreferenced(rt: &Runtime, why: &str) {
    match rt.images.collect(|| rt.layers_in_use()) {
        Ok(got) if got.layers + got.blobs > 0 => {
            tracing::info!(
                layers = got.layers,
                blobs = got.blobs,
                "collected after {why}"
            )
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("collecting unreferenced layers after {why}: {e}"),
    }
}

/// Remove what sessions of a crashed run built, and whatever no image names any more.
pub fn gc(rt: &Runtime) -> Vec<String> {
    let mut removed = Vec::new();
    for name in rt.images.list().unwrap_or_default() {
        if is_session_image(&name)
            && rt
                .images
                .remove_with_layers(&name, || rt.layers_in_use())
                .is_ok()
        {
            removed.push(name);
        }
    }
    collect_unreferenced(rt, "a previous run");
    removed
}

impl Session {
    /// Where the store keeps this session's image `name` (normalized).
    fn own_image(&self, name: &str) -> String {
        format!("{SESSION_IMAGES}{}/{name}", self.tag)
    }

    /// The session's own images: (the name it knows, the store's name).
    pub(super) fn built_images(&self) -> Vec<(String, String)> {
        self.built
            .iter()
            .map(|n| (n.clone(), self.own_image(n)))
            .collect()
    }

    /// The store's name for an image a spec names: the session's own build first.
    pub(super) fn store_image(&self, name: &str) -> String {
        match crate::runtime::image::ImageStore::normalize_name(name) {
            Ok(n) if self.built.contains(&n) => self.own_image(&n),
            _ => name.to_string(),
        }
    }

    /// An image as this session knows it: its own under their short names.
    fn shown(&self, mut info: ImageInfo) -> Option<ImageInfo> {
        if !is_session_image(&info.name) {
            return Some(info);
        }
        let (user, _) = self
            .built_images()
            .into_iter()
            .find(|(_, store)| *store == info.name)?;
        info.name = user;
        Some(info)
    }

    /// Remove the session's own images (at its end).
    pub(super) async fn remove_images(&mut self) {
        let rt = self.state.runtime.clone();
        let names: Vec<String> = self.built_images().into_iter().map(|(_, s)| s).collect();
        self.built.clear();
        let _ = tokio::task::spawn_blocking(move || {
            // The session's containers are gone; other sessions' may use shared layers.
            for name in names {
                match rt.images.remove_with_layers(&name, || rt.layers_in_use()) {
                    Ok(_) | Err(ImageError::NotFound(_)) => {}
                    Err(e) => tracing::warn!(image = %name, "remove at session end: {e}"),
                }
            }
            // What older builds of the same names, or failed ones, left.
            collect_unreferenced(&rt, "a session's end");
        })
        .await;
    }

    pub(super) async fn images(&self, reference: Option<Ref>) {
        let rt = self.state.runtime.clone();
        match tokio::task::spawn_blocking(move || list(&rt)).await {
            Ok(Ok(images)) => {
                let images = images.into_iter().filter_map(|i| self.shown(i)).collect();
                self.send(ServerMsg::Images { reference, images }).await
            }
            Ok(Err(e)) => self.error(reference, codes::RUNTIME, e.to_string()).await,
            Err(e) => self.error(reference, codes::RUNTIME, e.to_string()).await,
        }
    }

    pub(super) async fn diff(&self, reference: Option<Ref>, target: &str) {
        let Some(info) = self.require(reference, target).await else {
            return;
        };
        let rt = self.state.runtime.clone();
        let id = info.id.clone();
        match tokio::task::spawn_blocking(move || rt.diff(&id)).await {
            Ok(Ok(changes)) => {
                let changes = changes.iter().map(change_info).collect();
                self.send(ServerMsg::Diff {
                    reference,
                    container: info.name,
                    changes,
                })
                .await
            }
            Ok(Err(e)) => self.runtime_error(reference, e).await,
            Err(e) => self.error(reference, codes::RUNTIME, e.to_string()).await,
        }
    }

    /// A build on the blocking pool; its log and layers come back as session events. One at a
    /// time per session; an image another session made (or the built-in one) is not replaced.
    pub(super) async fn build(&mut self, reference: Option<Ref>, name: String, dockerfile: String) {
        if self.building {
            let message = "this session is already building an image";
            return self.error(reference, codes::LIMIT_REACHED, message).await;
        }
        let normalized = match crate::runtime::image::ImageStore::normalize_name(&name) {
            Ok(n) => n,
            Err(e) => return self.error(reference, "invalid_image", e.to_string()).await,
        };
        // The built-in image keeps its name; any other is the session's own.
        if normalized == crate::runtime::image::BUSYBOX_IMAGE {
            let message = format!("{normalized:?} is the built-in image: choose another name");
            return self.error(reference, "image_exists", message).await;
        }
        self.building = true;
        let store_name = self.own_image(&normalized);
        self.built.insert(normalized.clone());
        let limits = &self.state.limits;
        let req = crate::build::BuildRequest {
            name: store_name,
            dockerfile,
            context: None,
            memory: Some(limits.default_memory),
            cpus: Some(limits.default_cpus),
            pids_limit: Some(limits.default_pids),
        };
        let rt = self.state.runtime.clone();
        let events = self.events.clone();
        tokio::task::spawn_blocking(move || {
            // A rebuild replaces the record: the old one's layers may be left unnamed.
            let replaces = rt.images.record(&req.name).is_ok();
            let forward = |msg: ServerMsg| {
                let _ = events.send(Event::Build(msg));
            };
            let result = crate::build::build(&rt, &req, &mut |e| match e {
                crate::build::BuildEvent::Log(text) => {
                    forward(ServerMsg::BuildLog { reference, text })
                }
                crate::build::BuildEvent::Layer { index, layer } => {
                    forward(ServerMsg::BuildLayer {
                        reference,
                        index: index as u32,
                        layer: layer_info(&layer),
                    })
                }
            });
            let (end, collect) = match result {
                Ok(record) => {
                    let mut image = image_info(&record);
                    image.name = normalized;
                    (ServerMsg::Built { reference, image }, replaces)
                }
                // The steps that finished left layers and blobs no image names.
                Err(e) => (
                    ServerMsg::error(reference, "build_failed", e.to_string()),
                    true,
                ),
            };
            let _ = events.send(Event::BuildEnded(end));
            // After the answer: the collection waits for other sessions' builds to end.
            if collect {
                collect_unreferenced(&rt, "a session's build");
            }
        });
    }
}
