//! Images as the page sees them: the store's records turned into protocol types, and a
//! container's changes.

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

impl Session {
    pub(super) async fn images(&self, reference: Option<Ref>) {
        let rt = self.state.runtime.clone();
        match tokio::task::spawn_blocking(move || list(&rt)).await {
            Ok(Ok(images)) => self.send(ServerMsg::Images { reference, images }).await,
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
        let exists = self.state.runtime.images.record(&normalized).is_ok();
        if exists && !self.built.contains(&normalized) {
            let message = format!(
                "image {normalized:?} exists and was not built by this session: choose another name"
            );
            return self.error(reference, "image_exists", message).await;
        }
        self.building = true;
        self.built.insert(normalized);
        let limits = &self.state.limits;
        let req = crate::build::BuildRequest {
            name,
            dockerfile,
            context: None,
            memory: Some(limits.default_memory),
            cpus: Some(limits.default_cpus),
            pids_limit: Some(limits.default_pids),
        };
        let rt = self.state.runtime.clone();
        let events = self.events.clone();
        tokio::task::spawn_blocking(move || {
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
            let end = match result {
                Ok(record) => ServerMsg::Built {
                    reference,
                    image: image_info(&record),
                },
                Err(e) => ServerMsg::error(reference, "build_failed", e.to_string()),
            };
            let _ = events.send(Event::BuildEnded(end));
        });
    }
}
