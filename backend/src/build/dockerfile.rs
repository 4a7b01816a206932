//! The Dockerfile subset isolab builds.
