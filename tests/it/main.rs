//! The integration test binary: one module per library module, each against real components.

#[path = "../support/mod.rs"]
mod support;

mod bootstrap;
mod capi;
mod chart;
mod cli_rotate;
mod flux;
mod git;
mod kind;
mod kube;
mod render;
mod seal;
mod vendor;
