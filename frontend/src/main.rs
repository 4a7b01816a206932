//! The isolab page (Yew, built by Trunk). It arrives with the web-slice issue; until then this
//! crate only proves that the shared protocol types compile for the page's side too.

use isolab_shared::spec::ContainerSpec;

fn main() {
    let spec = ContainerSpec::new("busybox", vec!["sh".to_string()]);
    println!("{}", spec.image);
}
