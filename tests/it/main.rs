//! The integration test binary: one module per library module, each against real components.

#[path = "../support/mod.rs"]
mod support;

mod bootstrap;
mod bootstrap_airgap;
mod bootstrap_state;
mod capi;
mod capi_orc;
mod capi_safety;
mod chart;
mod cli_exit;
mod cli_habits;
mod cli_plan;
mod cli_rotate;
mod cli_signals;
mod cloud;
mod components;
mod e2e_timing;
mod flux;
mod git;
mod images;
mod kind;
mod kind_airgap;
mod kube;
mod kube_proxy;
mod plan;
mod preflight;
mod render;
mod seal;
mod status;
mod status_e2e;
mod vendor;
mod webhooks;
mod yaml11;
