//! Types shared by the isolab server and page.

pub mod spec;
