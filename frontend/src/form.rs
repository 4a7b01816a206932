//! The create form's fields as typed text, and their translation into a [`ContainerSpec`].
//!
//! Plain Rust (tested on the host). The spec's own checks ([`ContainerSpec::problems`]) run
//! before anything is sent, so most mistakes are marked at once, next to their field, with the
//! same codes and wording the server would use.

use isolab_shared::spec::{ContainerSpec, MemorySize, NsKind, NsMode};

use crate::network::publish_list;
use crate::state::Problem;

/// What the user typed. Empty optional fields leave the server's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct FormFields {
    pub image: String,
    pub name: String,
    pub hostname: String,
    /// Split on whitespace (no quoting); empty runs the image's ENTRYPOINT and CMD.
    pub cmd: String,
    pub memory: String,
    pub cpus: String,
    pub pids: String,
    /// Ports to publish on the server's loopback: `8080:80, 8443:443` (docker's `-p`).
    pub publish: String,
    /// Named volumes of the session: `data:/data, conf:/etc/app:ro` (docker's `-v`).
    pub volumes: String,
    /// The OCI runtime: `isolab` (empty: the default), `runc` or `crun`.
    pub runtime: String,
    /// One choice per kind, in [`NsKind::ALL`] order: `private`, `host` or `container:NAME`.
    pub namespaces: Vec<(NsKind, String)>,
}

impl Default for FormFields {
    fn default() -> Self {
        let defaults = isolab_shared::spec::Namespaces::default();
        FormFields {
            image: "busybox".to_string(),
            name: String::new(),
            hostname: String::new(),
            cmd: "sh".to_string(),
            memory: String::new(),
            cpus: String::new(),
            pids: String::new(),
            publish: String::new(),
            volumes: String::new(),
            runtime: String::new(),
            namespaces: NsKind::ALL
                .into_iter()
                .map(|kind| (kind, defaults.get(kind).to_string()))
                .collect(),
        }
    }
}

/// The form field a spec field belongs to: `cmd[2]` → `cmd`, `namespaces.net` stays.
pub fn form_field(spec_field: &str) -> &str {
    match spec_field.split_once('[') {
        Some((base, _)) => base,
        None => spec_field,
    }
}

fn problem(code: &str, field: &str, message: String) -> Problem {
    Problem {
        code: code.to_string(),
        message,
        field: Some(field.to_string()),
    }
}

fn optional(text: &str) -> Option<&str> {
    Some(text.trim()).filter(|t| !t.is_empty())
}

/// `data:/data, conf:/etc/app:ro` as entries: split on commas only (a path may hold a space).
fn volume_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

impl FormFields {
    /// Stores `value` in the field named like the spec's (`image`, `pids_limit`,
    /// `namespaces.net`, ...); unknown names are ignored.
    pub fn set(&mut self, field: &str, value: String) {
        match field {
            "image" => self.image = value,
            "name" => self.name = value,
            "hostname" => self.hostname = value,
            "cmd" => self.cmd = value,
            "memory" => self.memory = value,
            "cpus" => self.cpus = value,
            "pids_limit" => self.pids = value,
            "publish" => self.publish = value,
            "volumes" => self.volumes = value,
            "runtime" => self.runtime = value,
            _ => {
                if let Some(kind) = field
                    .strip_prefix("namespaces.")
                    .and_then(|k| k.parse::<NsKind>().ok())
                {
                    self.set_namespace(kind, value);
                }
            }
        }
    }

    pub fn set_namespace(&mut self, kind: NsKind, mode: String) {
        if let Some(slot) = self.namespaces.iter_mut().find(|(k, _)| *k == kind) {
            slot.1 = mode;
        }
    }

    pub fn namespace(&self, kind: NsKind) -> &str {
        self.namespaces
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or("private", |(_, m)| m.as_str())
    }

    /// The spec to send (always with a tty), or every problem found, by field.
    pub fn to_spec(&self) -> Result<ContainerSpec, Vec<Problem>> {
        let mut problems = Vec::new();
        let cmd = self.cmd.split_whitespace().map(str::to_string).collect();
        let mut spec = ContainerSpec::new(self.image.trim(), cmd);
        spec.tty = true;
        spec.name = optional(&self.name).map(str::to_string);
        spec.hostname = optional(&self.hostname).map(str::to_string);
        spec.publish = publish_list(&self.publish);
        spec.volumes = volume_list(&self.volumes);
        spec.runtime = optional(&self.runtime)
            .filter(|r| *r != isolab_shared::spec::RUNTIMES[0])
            .map(str::to_string);
        if let Some(text) = optional(&self.memory) {
            match text.parse::<MemorySize>() {
                Ok(size) => spec.memory = Some(size),
                Err(e) => problems.push(problem(e.code(), "memory", e.message().to_string())),
            }
        }
        if let Some(text) = optional(&self.cpus) {
            match text.parse::<f64>() {
                Ok(cpus) => spec.cpus = Some(cpus),
                Err(_) => problems.push(problem(
                    "invalid_cpus",
                    "cpus",
                    format!("{text:?} is not a number of CPUs (e.g. 0.5)"),
                )),
            }
        }
        if let Some(text) = optional(&self.pids) {
            match text.parse::<i64>() {
                Ok(pids) => spec.pids_limit = Some(pids),
                Err(_) => problems.push(problem(
                    "invalid_pids_limit",
                    "pids_limit",
                    format!("{text:?} is not a whole number of processes"),
                )),
            }
        }
        for (kind, text) in &self.namespaces {
            let field = format!("namespaces.{kind}");
            match text.parse::<NsMode>() {
                Ok(mode) => *spec.namespaces.get_mut(*kind) = mode,
                Err(e) => problems.push(problem(e.code(), &field, e.message().to_string())),
            }
        }
        problems.extend(spec.problems().into_iter().map(|e| Problem {
            code: e.code().to_string(),
            message: e.message().to_string(),
            field: Some(e.field().to_string()),
        }));
        if problems.is_empty() {
            Ok(spec)
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_make_a_busybox_shell_with_a_tty() {
        let spec = FormFields::default().to_spec().unwrap();
        assert_eq!(spec.image, "busybox");
        assert_eq!(spec.cmd, vec!["sh"]);
        assert!(spec.tty);
        assert_eq!(spec.name, None);
        assert_eq!(spec.memory, None);
        assert_eq!(spec.namespaces, isolab_shared::spec::Namespaces::default());
    }

    #[test]
    fn fields_are_parsed_into_the_spec() {
        let mut form = FormFields {
            name: "alpha".into(),
            hostname: " alpha ".into(),
            cmd: "sh -c  'top'".into(),
            memory: "64m".into(),
            cpus: "0.5".into(),
            pids: "64".into(),
            ..FormFields::default()
        };
        form.set("namespaces.net", "container:beta".into());
        form.set("nonsense", "ignored".into());
        let spec = form.to_spec().unwrap();
        assert_eq!(spec.name.as_deref(), Some("alpha"));
        assert_eq!(spec.hostname.as_deref(), Some("alpha"));
        assert_eq!(spec.cmd, vec!["sh", "-c", "'top'"]);
        assert_eq!(spec.memory, Some(MemorySize(64 * MemorySize::MIB)));
        assert_eq!(spec.cpus, Some(0.5));
        assert_eq!(spec.pids_limit, Some(64));
        assert_eq!(spec.namespaces.net, NsMode::Container("beta".into()));
        assert_eq!(form.namespace(NsKind::Net), "container:beta");
    }

    #[test]
    fn every_problem_is_reported_by_field() {
        let form = FormFields {
            image: "BusyBox".into(),
            hostname: "a/b".into(),
            cmd: "echo a\0b".into(),
            memory: "lots".into(),
            cpus: "many".into(),
            pids: "0".into(),
            ..FormFields::default()
        };
        let problems = form.to_spec().unwrap_err();
        let fields: Vec<_> = problems
            .iter()
            .map(|p| form_field(p.field.as_deref().unwrap()))
            .collect();
        for field in ["image", "hostname", "cmd", "memory", "cpus", "pids_limit"] {
            assert!(fields.contains(&field), "{field} missing from {fields:?}");
        }
    }

    #[test]
    fn an_empty_command_runs_the_images() {
        let form = FormFields {
            image: "layered".into(),
            cmd: "   ".into(),
            ..FormFields::default()
        };
        let spec = form.to_spec().unwrap();
        assert_eq!(spec.image, "layered");
        assert!(spec.cmd.is_empty());
        assert_eq!(spec.entrypoint, None);
    }

    #[test]
    fn the_runtime_is_sent_only_when_it_is_a_peer() {
        let mut form = FormFields::default();
        assert_eq!(form.to_spec().unwrap().runtime, None);
        form.set("runtime", "isolab".into());
        assert_eq!(form.to_spec().unwrap().runtime, None);
        form.set("runtime", "runc".into());
        assert_eq!(form.to_spec().unwrap().runtime.as_deref(), Some("runc"));
    }

    #[test]
    fn published_ports_are_a_comma_separated_list() {
        let mut form = FormFields::default();
        form.set("publish", " 8080:80, 5353:53/udp ,,8443:443 ".into());
        let spec = form.to_spec().unwrap();
        assert_eq!(spec.publish, vec!["8080:80", "5353:53/udp", "8443:443"]);
        assert!(FormFields::default().to_spec().unwrap().publish.is_empty());
    }

    #[test]
    fn a_bad_port_is_marked_on_the_publish_field() {
        let form = FormFields {
            publish: "8080:80, 8080".into(),
            ..FormFields::default()
        };
        let problems = form.to_spec().unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].code, "invalid_publish");
        assert_eq!(form_field(problems[0].field.as_deref().unwrap()), "publish");
        assert!(problems[0].message.contains("\"8080\""));

        let mut shared = FormFields {
            publish: "8080:80".into(),
            ..FormFields::default()
        };
        shared.set("namespaces.net", "container:alpha".into());
        let problems = shared.to_spec().unwrap_err();
        assert_eq!(problems[0].code, "conflicting_options");
        assert_eq!(problems[0].field.as_deref(), Some("publish"));
    }

    #[test]
    fn volumes_are_a_comma_separated_list_checked_by_entry() {
        let mut form = FormFields::default();
        form.set("volumes", " data:/data ,, conf:/etc/my app:ro ".into());
        let spec = form.to_spec().unwrap();
        assert_eq!(spec.volumes, vec!["data:/data", "conf:/etc/my app:ro"]);
        assert!(FormFields::default().to_spec().unwrap().volumes.is_empty());
        form.set("volumes", "data:/data, data:/proc".into());
        let problems = form.to_spec().unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].code, "invalid_volume");
        assert_eq!(problems[0].field.as_deref(), Some("volumes[1]"));
        assert_eq!(form_field("volumes[1]"), "volumes");
    }

    #[test]
    fn spec_fields_map_to_form_fields() {
        assert_eq!(form_field("publish[1]"), "publish");
        assert_eq!(form_field("cmd[2]"), "cmd");
        assert_eq!(form_field("namespaces.net"), "namespaces.net");
        assert_eq!(form_field("memory"), "memory");
    }
}
