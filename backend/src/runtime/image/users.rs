//! An image's `USER` (`name`, `uid`, `name:group`, `uid:gid`) resolved to numbers through the
//! image's own `/etc/passwd` and `/etc/group`, as docker does when it starts a container.

use std::fs;
use std::path::{Path, PathBuf};

use super::ImageError;

/// The top-most layer's copy of `file` (a path inside the root), if any layer has one.
fn read_from_layers(layers: &[PathBuf], file: &str) -> Option<String> {
    layers
        .iter()
        .rev()
        .find_map(|l| fs::read_to_string(Path::new(l).join(file)).ok())
}

/// Find `name` (field 0) in a passwd/group style file; returns fields 2 and 3.
fn lookup(text: &str, name: &str) -> Option<(u32, Option<u32>)> {
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 3 && f[0] == name {
            Some((f[2].parse().ok()?, f.get(3).and_then(|g| g.parse().ok())))
        } else {
            None
        }
    })
}

/// Resolve `USER` for an image made of `layers` (bottom first).
pub fn resolve_user(layers: &[PathBuf], user: &str) -> Result<(u32, u32), ImageError> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read_from_layers(layers, "etc/passwd").unwrap_or_default();
    let unknown = |what: &str, name: &str| ImageError::Invalid {
        what: format!(
            "the image's USER {user:?}: no {what} {name:?} in its /etc/{what_file}",
            what_file = if what == "user" { "passwd" } else { "group" }
        ),
    };
    let (uid, primary) = match u.parse::<u32>() {
        Ok(uid) => {
            let by_uid = passwd.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 4 && f[2] == u)
                    .then(|| f[3].parse::<u32>().ok())
                    .flatten()
            });
            (uid, by_uid)
        }
        Err(_) => {
            let (uid, gid) = lookup(&passwd, u).ok_or_else(|| unknown("user", u))?;
            (uid, gid)
        }
    };
    let gid = match g {
        None => primary.unwrap_or(uid),
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                let group = read_from_layers(layers, "etc/group").unwrap_or_default();
                lookup(&group, g).ok_or_else(|| unknown("group", g))?.0
            }
        },
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_resolve_through_the_top_layers_files() {
        let base = tempfile::tempdir().unwrap();
        let top = tempfile::tempdir().unwrap();
        fs::create_dir_all(base.path().join("etc")).unwrap();
        fs::create_dir_all(top.path().join("etc")).unwrap();
        fs::write(
            base.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            top.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nalice:x:1000:1001::/home/alice:/bin/sh\n",
        )
        .unwrap();
        fs::write(top.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let layers = vec![base.path().to_path_buf(), top.path().to_path_buf()];
        assert_eq!(resolve_user(&layers, "alice").unwrap(), (1000, 1001));
        assert_eq!(resolve_user(&layers, "alice:staff").unwrap(), (1000, 50));
        assert_eq!(resolve_user(&layers, "1000").unwrap(), (1000, 1001));
        assert_eq!(resolve_user(&layers, "4242").unwrap(), (4242, 4242));
        assert_eq!(resolve_user(&layers, "7:8").unwrap(), (7, 8));
        let err = resolve_user(&layers, "bob").unwrap_err().to_string();
        assert!(err.contains("no user \"bob\""), "{err}");
        assert!(
            resolve_user(&layers[..1], "alice").is_err(),
            "only the top layer knows alice"
        );
    }
}
