//! The built-in lessons are compiled into the binary (`include_dir!`): rebuild when they change.

fn main() {
    println!("cargo:rerun-if-changed=../lessons");
    println!("cargo:rerun-if-changed=build.rs");
}
