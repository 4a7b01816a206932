//! Entry point of the page (Trunk builds this bin for wasm32).

#[cfg(target_arch = "wasm32")]
fn main() {
    isolab_frontend::start();
}

/// On the host the crate only exists for its unit tests.
#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("isolab-frontend is the browser page: build it with `trunk build` (see Trunk.toml)");
}
