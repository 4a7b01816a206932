//! `exec`: one more process in a running container (its namespaces, cgroup and root), like
//! `docker exec`. The process gets the container's own settings from its `config.json`
//! (environment, capabilities, rlimits, `no_new_privs`) with the new command and terminal.

use isolab_shared::spec::SpecError;
use oci_spec::runtime::Spec;

use super::container::{hand_over, Container, Runtime, RuntimeError, StdioSpec};
use super::init::protocol::{ExecConfig, ToInit};
use super::launcher::InitProcess;

impl Runtime {
    /// Start one more process in a running container, like `docker exec`.
    pub fn exec(
        &self,
        target: &str,
        args: Vec<String>,
        env: Vec<String>,
        tty: bool,
        stdio: StdioSpec,
    ) -> Result<Container, RuntimeError> {
        if args.first().is_none_or(|a| a.is_empty()) {
            return Err(RuntimeError::InvalidSpec(SpecError::empty_command()));
        }
        if let Some(problem) = isolab_shared::spec::env_problems(&env).into_iter().next() {
            return Err(RuntimeError::InvalidSpec(problem));
        }
        let st = self.find(target)?;
        let init_ref = st
            .init
            .filter(|p| p.is_alive())
            .ok_or_else(|| RuntimeError::NotRunning(target.to_string()))?;
        let bundle = Spec::load(self.paths.container(&st.id).join("config.json"))
            .map_err(|e| RuntimeError::Protocol(format!("config.json: {e}")))?;
        let mut process = bundle.process().clone().unwrap_or_default();
        let mut all_env = process.env().clone().unwrap_or_default();
        all_env.retain(|e| !e.starts_with("TERM="));
        if tty {
            all_env.push("TERM=xterm".into());
        }
        all_env.extend(env);
        process
            .set_args(Some(args))
            .set_env(Some(all_env))
            .set_terminal(Some(tty));
        let cfg = ExecConfig {
            target_pid: init_ref.pid,
            target_start_time: init_ref.start_time,
            process,
            seccomp: bundle.linux().as_ref().and_then(|l| l.seccomp().clone()),
            cgroup_procs: self.cgroups.procs_files(&st.id),
        };
        let init = InitProcess::spawn(true)?;
        hand_over(init, ToInit::Exec(Box::new(cfg)), stdio, st.id, st.name)
    }
}
