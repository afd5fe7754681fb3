//! Kubernetes objects as data: multi-document YAML in and out, group/version/kind, apply order.
//!
//! Pure: nothing here talks to a cluster or the network. Objects keep their fields in the order
//! they were written, so what is read and written back stays recognisable.

mod emit;
mod object;
mod order;
mod subst;
mod yaml;

pub use emit::{needs_quotes, to_yaml_of, to_yaml_value};
pub use object::{Gvk, Object, Origin};
pub use order::{ApplyPhase, apply_phase};
#[cfg(test)]
pub(crate) use subst::tests::vars as test_vars;
pub use subst::{SUBSTITUTE_ANNOTATION, SubstError, substitute, substitute_str};
pub use yaml::{ParseOptions, parse_file, parse_file_with, parse_str, parse_str_with, to_yaml};

use std::path::PathBuf;

/// What went wrong reading or interpreting manifests.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A YAML document does not parse.
    #[error("{origin}: invalid YAML")]
    Yaml {
        /// Where the document is.
        origin: Origin,
        /// The parser's complaint (with the line and column inside the document).
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// A document is valid YAML but not a Kubernetes object.
    #[error("{origin}: {problem}")]
    NotAnObject {
        /// Where the document is.
        origin: Origin,
        /// What is missing or malformed, with the fix.
        problem: String,
    },
}
