//! The integration test binary: modules mirror src/.

mod seal;
