//! `isolab build`: a Dockerfile subset (FROM, RUN, COPY, ENV, WORKDIR, USER, ENTRYPOINT, CMD,
//! LABEL), where each RUN runs in a container of the image so far and its changes become a layer.

mod builder;
pub mod command;
pub mod dockerfile;

pub use builder::{build, BuildEvent, BuildRequest};

use crate::runtime::container::RuntimeError;
use crate::runtime::image::ImageError;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("Dockerfile: {0}")]
    Parse(#[from] dockerfile::ParseError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A RUN failed (its command's exit code), or its changes could not be kept.
    #[error("RUN {0}")]
    Run(String),
    /// An ENV, WORKDIR, … that cannot be applied (an empty WORKDIR, a bad name).
    #[error(transparent)]
    Settings(#[from] command::CommandError),
    /// A COPY could not be done (no context, a source outside it, …).
    #[error("COPY: {0}")]
    Copy(String),
}
