//! `isolab`: the container playground's server, CLI and runtime in one binary.
//!
//! `isolab init` is not for people: it is the single-threaded helper the runtime re-executes to
//! build a container (as `runc init` is), so it is dispatched before anything else starts.

fn main() -> std::process::ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == "init") {
        isolab::runtime::init::main();
    }
    isolab::cli::main()
}
