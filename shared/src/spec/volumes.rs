//! Named volumes (docker's `-v NAME:/path[:ro]`): a folder kept by the server or the CLI, outside
//! any container, mounted at `path` in each container that names it.

/// One `volumes` entry, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    /// The volume's name: `[A-Za-z0-9][A-Za-z0-9_.-]{0,63}`.
    pub name: String,
    /// Where it appears in the container: absolute, clean, not `/` and not under `/proc`,
    /// `/sys` or `/dev`.
    pub path: String,
    /// Mounted read-only (`:ro`).
    pub read_only: bool,
}

/// Folders of the container's own kernel file systems: a volume there would hide them.
const RESERVED: [&str; 3] = ["/proc", "/sys", "/dev"];

/// Longest destination path accepted.
const MAX_PATH: usize = 1024;

/// Whether `s` is a valid volume name: `[A-Za-z0-9][A-Za-z0-9_.-]{0,63}` (it names a folder).
pub fn is_valid_volume_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && s.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl VolumeMount {
    /// Parse `NAME:/path`, `NAME:/path:ro` or `NAME:/path:rw`; the error says what is wrong.
    pub fn parse(s: &str) -> Result<VolumeMount, String> {
        let Some((name, rest)) = s.split_once(':') else {
            return Err(format!("{s:?} is not NAME:/path[:ro]"));
        };
        let (path, read_only) = match rest.rsplit_once(':') {
            Some((path, "ro")) => (path, true),
            Some((path, "rw")) => (path, false),
            Some((_, mode)) => {
                return Err(format!(
                    "{s:?}: {mode:?} is not a mode: use ro or rw (and no ':' in the path)"
                ))
            }
            None => (rest, false),
        };
        if !is_valid_volume_name(name) {
            return Err(format!(
                "{name:?} is not a valid volume name: start with a letter or digit, then \
                 letters, digits, '_', '.' or '-', at most 64 characters"
            ));
        }
        check_path(path)?;
        Ok(VolumeMount {
            name: name.to_string(),
            path: path.to_string(),
            read_only,
        })
    }
}

/// A destination must be absolute and clean (no empty, `.` or `..` part, no trailing `/`), not
/// `/` itself, and not on the container's `/proc`, `/sys` or `/dev`.
fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!(
            "{path:?} is not an absolute path (it must start with '/')"
        ));
    }
    if path == "/" {
        return Err("a volume cannot be mounted on '/' (the image is the root)".into());
    }
    if path.len() > MAX_PATH || path.chars().any(|c| c.is_control() || c == ':') {
        return Err(format!(
            "{path:?}: at most {MAX_PATH} bytes, no ':' and no control characters"
        ));
    }
    if path[1..]
        .split('/')
        .any(|part| matches!(part, "" | "." | ".."))
    {
        return Err(format!(
            "{path:?} is not a clean path: no empty, '.' or '..' parts and no trailing '/'"
        ));
    }
    if let Some(top) = RESERVED
        .iter()
        .find(|top| path == **top || path.starts_with(&format!("{top}/")))
    {
        return Err(format!(
            "{path:?} is under {top}, which the container's kernel file systems own"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_paths_and_modes_are_parsed() {
        let v = VolumeMount::parse("data:/srv/data").unwrap();
        assert_eq!(
            v,
            VolumeMount {
                name: "data".into(),
                path: "/srv/data".into(),
                read_only: false
            }
        );
        assert!(VolumeMount::parse("A.b_c-1:/x:ro").unwrap().read_only);
        assert!(!VolumeMount::parse("d:/x:rw").unwrap().read_only);
        assert!(VolumeMount::parse(&format!("{}:/x", "n".repeat(64))).is_ok());
        assert!(VolumeMount::parse("d:/a b/c").is_ok(), "spaces are fine");
    }

    #[test]
    fn bad_entries_say_why() {
        for (bad, says) in [
            ("data", "NAME:/path"),
            (":/x", "volume name"),
            ("-d:/x", "volume name"),
            ("a/b:/x", "volume name"),
            (&format!("{}:/x", "n".repeat(65)), "volume name"),
            ("d:x", "absolute"),
            ("d:", "absolute"),
            ("d:/", "'/'"),
            ("d:/a/", "clean"),
            ("d://a", "clean"),
            ("d:/a/../b", "clean"),
            ("d:/a/./b", "clean"),
            ("d:/x:rx", "mode"),
            ("d:/x:y:ro", "no ':'"),
            ("d:/proc", "/proc"),
            ("d:/proc/sys", "/proc"),
            ("d:/sys/fs/cgroup", "/sys"),
            ("d:/dev", "/dev"),
            ("d:/dev/shm", "/dev"),
            ("d:/a\nb", "control"),
        ] {
            let err = VolumeMount::parse(bad).expect_err(bad);
            assert!(err.contains(says), "{bad:?}: {err}");
        }
        // Only the folders themselves are reserved, not names that start alike.
        assert!(VolumeMount::parse("d:/devel").is_ok());
        assert!(VolumeMount::parse("d:/system").is_ok());
    }
}
