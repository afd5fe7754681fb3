//! What a file's name says about it, whatever its case and backup suffixes.

/// What a file name says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NameClass {
    /// `credentials.yaml` and friends: plaintext credentials by name.
    Credentials,
    /// `kubeconfig`, `*.kubeconfig`, `kind-kubeconfig`, kubeadm's `admin.conf`, ...
    Kubeconfig,
    /// OpenStack's `clouds.yaml` / `secure.yaml`.
    CloudsYaml,
    /// `*.yaml`, `*.yml`, `*.json`: must parse.
    Manifest,
    /// No extension, `.conf`, `.cfg`, ...: checked as YAML when it parses.
    MaybeConfig,
    /// Anything else: only the content rules apply.
    Other,
}

/// Suffixes editors, tools and people add to keep a copy; they do not change what a file is.
const BACKUP_SUFFIXES: &[&str] = &[
    "~",
    "#",
    ".bak",
    ".backup",
    ".orig",
    ".old",
    ".save",
    ".saved",
    ".swp",
    ".swo",
    ".tmp",
    ".temp",
    ".copy",
    ".prev",
    ".new",
    ".rej",
    ".dist",
    ".sample",
    ".example",
    ".disabled",
    ".off",
];

/// kubeadm's kubeconfig file names (`/etc/kubernetes/*.conf`).
const KUBEADM_KUBECONFIGS: &[&str] = &[
    "admin.conf",
    "super-admin.conf",
    "kubelet.conf",
    "bootstrap-kubelet.conf",
    "controller-manager.conf",
    "scheduler.conf",
];

/// Extensions of documentation and code: a file `kubeconfig.md` talks about kubeconfigs.
const PROSE_OR_CODE: &[&str] = &[
    ".md", ".rst", ".adoc", ".txt", ".rs", ".go", ".py", ".sh", ".js", ".ts", ".html", ".tpl",
];

/// The name lowercased, without leading `.`/`#` and without backup suffixes (repeatedly, also
/// numbered ones such as `.1` or `.bak2`).
pub(super) fn base_name(name: &str) -> String {
    let mut base = name.to_lowercase();
    loop {
        let before = base.len();
        let trimmed = base.trim_start_matches(['.', '#']).to_owned();
        base = trimmed;
        for suffix in BACKUP_SUFFIXES {
            if let Some(s) = base.strip_suffix(suffix)
                && !s.is_empty()
            {
                base = s.to_owned();
            }
        }
        // `name.yaml.1`, `name.yaml.bak2`: a trailing number after a dot.
        if let Some((stem, last)) = base.rsplit_once('.')
            && !stem.is_empty()
            && !last.is_empty()
            && last.bytes().all(|b| b.is_ascii_digit())
        {
            base = stem.to_owned();
        }
        if base.len() == before {
            return base;
        }
    }
}

pub(super) fn classify(name: &str) -> NameClass {
    let base = base_name(name);
    let stem = base.split('.').next().unwrap_or("");
    let extension = base.rfind('.').map(|i| &base[i..]).unwrap_or("");
    let prose = PROSE_OR_CODE.contains(&extension);
    if !prose
        && (stem == "credentials"
            || stem.ends_with("-credentials")
            || stem.ends_with("_credentials"))
    {
        return NameClass::Credentials;
    }
    if (!prose && base.contains("kubeconfig")) || KUBEADM_KUBECONFIGS.contains(&base.as_str()) {
        return NameClass::Kubeconfig;
    }
    if matches!(stem, "clouds" | "secure") && matches!(extension, ".yaml" | ".yml" | ".json") {
        return NameClass::CloudsYaml;
    }
    match extension {
        ".yaml" | ".yml" | ".json" => NameClass::Manifest,
        "" | ".conf" | ".cfg" | ".config" | ".env" => NameClass::MaybeConfig,
        _ => NameClass::Other,
    }
}

/// The example cluster's template: `clusters/example/**/credentials.yaml`, exactly so named.
pub(super) fn is_example_credentials(path: &str) -> bool {
    path.starts_with("clusters/example/")
        && matches!(
            path.rsplit('/').next(),
            Some("credentials.yaml" | "credentials.yml")
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_suffixes_and_case_do_not_hide_a_name() {
        for (name, base) in [
            ("credentials.yaml.bak", "credentials.yaml"),
            ("credentials.yaml~", "credentials.yaml"),
            (".credentials.yaml.swp", "credentials.yaml"),
            ("#credentials.yaml#", "credentials.yaml"),
            ("Values.YAML.orig.1", "values.yaml"),
            ("kubeconfig.bak2", "kubeconfig.bak2"),
            ("x.YAML", "x.yaml"),
        ] {
            assert_eq!(base_name(name), base, "{name}");
        }
        use NameClass::*;
        for (name, class) in [
            ("credentials.yaml", Credentials),
            ("CREDENTIALS.YML", Credentials),
            ("prod-credentials.json", Credentials),
            ("credentials-sealed.yaml", Manifest),
            ("kind-kubeconfig", Kubeconfig),
            ("prod.kubeconfig", Kubeconfig),
            ("admin.conf", Kubeconfig),
            ("kubeconfig.md", Other),
            ("clouds.yaml", CloudsYaml),
            ("clouds-public.yaml", Manifest),
            ("x.YAML", Manifest),
            ("config", MaybeConfig),
            ("nginx.conf", MaybeConfig),
            ("logo.png", Other),
        ] {
            assert_eq!(classify(name), class, "{name}");
        }
        assert!(is_example_credentials("clusters/example/credentials.yaml"));
        assert!(is_example_credentials(
            "clusters/example/a/credentials.yaml"
        ));
        assert!(!is_example_credentials(
            "clusters/example/credentials.yaml.bak"
        ));
        assert!(!is_example_credentials("clusters/prod/credentials.yaml"));
    }
}
