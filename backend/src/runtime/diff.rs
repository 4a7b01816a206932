//! `isolab diff`: what a running container added, changed or deleted, read from its upper
//! folder and compared with its image's layers (as `docker diff`).

use super::container::{Runtime, RuntimeError};
use super::layer::{self, Change};

impl Runtime {
    /// The changes of a running container, sorted by path.
    pub fn diff(&self, name_or_id: &str) -> Result<Vec<Change>, RuntimeError> {
        let st = self.find(name_or_id)?;
        let upper = self.paths.layer(&st.id).join("upper");
        if !upper.is_dir() {
            // It shares another container's root (`--mnt container:NAME`): no layer of its own.
            return Ok(Vec::new());
        }
        // The state keeps the layers bottom first; the comparison looks top first.
        let lowers: Vec<_> = st.lower.iter().rev().cloned().collect();
        layer::changes(&upper, &lowers)
            .map_err(|e| RuntimeError::Protocol(format!("reading the changes of {}: {e}", st.id)))
    }
}
