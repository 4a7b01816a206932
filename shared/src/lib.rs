//! Types shared by the isolab server and page.

pub mod protocol;
pub mod spec;
