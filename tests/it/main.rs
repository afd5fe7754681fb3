//! The integration test binary: one module per library module, each against real components.

#[path = "../support/mod.rs"]
mod support;

mod capi;
mod kind;
mod kube;
mod seal;
