//! `isolab build`: a Dockerfile subset, where each RUN is a layer.

pub mod dockerfile;
