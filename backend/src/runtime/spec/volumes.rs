//! Named volumes in the OCI spec: a bind mount of each volume's folder.

use std::path::Path;

use isolab_shared::spec::{ContainerSpec, NsMode};
use oci_spec::runtime::Mount;

use super::{base, user_mapping, SpecBuildError, SpecContext};

/// The option that asks runc (1.2) and crun for an idmapped bind mount; with `uidMappings` and
/// `gidMappings` beside it they give the mapping, without them it is the container's own.
pub const IDMAP: &str = "idmap";

/// Each of `spec`'s volumes (its user namespace resolved) as a bind mount of
/// `<volume_root>/<NAME>`, `nosuid` and `nodev`, read-only with `:ro`. With a user namespace of
/// the container's own it is idmapped: the folder's 0-based owners are seen through the
/// namespace's mapping, so its root owns what is stored as root's, whatever its uid range. With
/// the host's it is a plain bind.
pub fn volume_mounts(
    spec: &ContainerSpec,
    ctx: &SpecContext<'_>,
) -> Result<Vec<Mount>, SpecBuildError> {
    let volumes = spec.volume_mounts();
    if volumes.is_empty() {
        return Ok(Vec::new());
    }
    let root = ctx.volume_root.ok_or(SpecBuildError::NoVolumeRoot)?;
    // A joined user namespace's mapping is not ours to know here: `idmap` alone says "the
    // container's".
    let map = match spec.namespaces.user {
        NsMode::Private => Some(user_mapping(ctx.uid_base)?),
        _ => None,
    };
    Ok(volumes
        .iter()
        .map(|v| {
            let mut options = vec!["bind", "nosuid", "nodev"];
            options.push(if v.read_only { "ro" } else { "rw" });
            if spec.namespaces.user != NsMode::Host {
                options.push(IDMAP);
            }
            let source = folder(root, &v.name);
            let mut m = base::mount(&v.path, "bind", &source, &options);
            if let Some(map) = map {
                m.set_uid_mappings(Some(vec![map]));
                m.set_gid_mappings(Some(vec![map]));
            }
            m
        })
        .collect())
}

fn folder(root: &Path, name: &str) -> String {
    root.join(name).to_string_lossy().into_owned()
}

/// Whether a spec mount asks to be idmapped (`idmap`/`ridmap`, or mappings of its own).
pub fn is_idmapped(m: &Mount) -> bool {
    m.uid_mappings().is_some()
        || m.gid_mappings().is_some()
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == IDMAP || o == "ridmap")
}
