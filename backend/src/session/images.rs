//! Images as the page sees them: the store's records turned into protocol types, and a
//! container's changes.

use isolab_shared::protocol::{ChangeInfo, ImageInfo, LayerInfo};

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
