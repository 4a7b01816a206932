//! A session's named volumes: `<state_root>/volumes/<session tag>/NAME`, made with the first
//! container that names one, shared by the session's containers and kept across them, removed
//! when the session ends. The set's lock is held meanwhile, so a server starting up (`gc`)
//! removes only the sets of sessions that are gone.

use std::path::PathBuf;

use isolab_shared::protocol::{codes, Ref};
use isolab_shared::spec::ContainerSpec;

use super::Session;
use crate::runtime::volumes::VolumeSet;

impl Session {
    /// The volume root for a new container: the session's set, opened with its first volume
    /// (None inside when the spec names none). None when it cannot be made: an error has been
    /// sent.
    pub(super) async fn volume_root(
        &mut self,
        reference: Option<Ref>,
        spec: &ContainerSpec,
    ) -> Option<Option<PathBuf>> {
        if spec.volumes.is_empty() {
            return Some(None);
        }
        if self.volumes.is_none() {
            let root = self.state.runtime.paths.volumes().join(&self.tag);
            match VolumeSet::open(root) {
                Ok(set) => self.volumes = Some(set),
                Err(e) => {
                    tracing::warn!(session = %self.tag, "volumes: {e}");
                    self.error(reference, codes::RUNTIME, e.to_string()).await;
                    return None;
                }
            }
        }
        Some(self.volumes.as_ref().map(|set| set.root().to_path_buf()))
    }

    /// The session ended and its containers are removed: its volumes go.
    pub(super) async fn drop_volumes(&mut self) {
        let Some(set) = self.volumes.take() else {
            return;
        };
        let tag = self.tag.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = set.remove() {
                tracing::warn!(session = %tag, "remove the session's volumes: {e}");
            }
        })
        .await;
    }
}
