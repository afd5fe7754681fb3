use super::Gvk;

/// When an object may be applied relative to the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApplyPhase {
    /// Namespaces and CustomResourceDefinitions: everything else may depend on them.
    Definitions,
    /// Everything else, once the definitions are established and discoverable.
    Resources,
}

/// The phase an object of this kind is applied in.
pub fn apply_phase(gvk: &Gvk) -> ApplyPhase {
    match (gvk.group.as_str(), gvk.kind.as_str()) {
        ("", "Namespace") | ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            ApplyPhase::Definitions
        }
        _ => ApplyPhase::Resources,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_and_crds_come_first() {
        let p = |av: &str, k: &str| apply_phase(&Gvk::from_api_version(av, k));
        assert_eq!(p("v1", "Namespace"), ApplyPhase::Definitions);
        assert_eq!(
            p("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
            ApplyPhase::Definitions
        );
        assert_eq!(p("v1", "ConfigMap"), ApplyPhase::Resources);
        // A kind named Namespace in another group is an ordinary resource.
        assert_eq!(p("example.com/v1", "Namespace"), ApplyPhase::Resources);
    }
}
