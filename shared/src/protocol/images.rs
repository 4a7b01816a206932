//! Images in the protocol: the list with each image's layer stack, builds that stream their log
//! and grow the stack layer by layer, and a container's changes (`docker diff`).

use serde::{Deserialize, Serialize};

/// An image and its layers, bottom first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    pub name: String,
    /// The manifest's digest (`sha256:…`): the image's identity.
    pub id: String,
    pub created: String,
    pub layers: Vec<LayerInfo>,
    /// What a container of it runs by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// One layer: its blob, its content, and the instruction that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// The blob's digest (compressed as stored).
    pub digest: String,
    /// The uncompressed content's digest.
    pub diff_id: String,
    /// The blob's size in bytes.
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

/// One entry of a container's changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeInfo {
    /// `A` (added), `C` (changed) or `D` (deleted), as `docker diff` prints them.
    pub kind: String,
    /// The path inside the container.
    pub path: String,
}
