//! Test harness (the lead's full version lives on main; this branch adds `git_server`).
#![allow(dead_code)]

pub mod git_server;
