//! The layout of a cluster's folder `clusters/<name>/`: the one place that spells the names of
//! its files (values, credentials, sealed credentials, kustomization, kubeconfig) and of its
//! state folder `.capi-manage/` (run lock, resume state, move journals, the kind cluster's
//! kubeconfig, Flux's deploy key).

use std::path::{Path, PathBuf};

/// The folder, under the repository's root, that holds one folder per cluster.
pub const CLUSTERS_DIR: &str = "clusters";
/// The cluster's values ConfigMap.
pub const VALUES: &str = "values.yaml";
/// The cluster's plaintext credentials Secret (gitignored, never committed).
pub const CREDENTIALS: &str = "credentials.yaml";
/// The credentials sealed for the cluster's sealed-secrets controller (committed).
pub const SEALED_CREDENTIALS: &str = "credentials-sealed.yaml";
/// The cluster folder's kustomization.
pub const KUSTOMIZATION: &str = "kustomization.yaml";
/// The self-managed cluster's kubeconfig (0600, gitignored).
pub const KUBECONFIG: &str = "kubeconfig";
/// The state folder of a cluster (gitignored, 0700).
pub const STATE_DIR: &str = ".capi-manage";

/// The paths of one cluster's folder in a config repository. Nothing is checked on disk:
/// [`Repo::cluster`](super::Repo::cluster) checks the folder. Derefs to the folder's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDir {
    root: PathBuf,
    name: String,
    dir: PathBuf,
}

impl ClusterDir {
    /// `clusters/<name>` in the repository at `root`.
    pub fn new(root: impl Into<PathBuf>, name: impl Into<String>) -> ClusterDir {
        let (root, name) = (root.into(), name.into());
        let dir = root.join(CLUSTERS_DIR).join(&name);
        ClusterDir { root, name, dir }
    }

    /// The repository's root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The cluster's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The folder: `<root>/clusters/<name>`.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `path` relative to the repository's root (as git names it); `path` itself when it is
    /// outside the repository.
    pub fn relative(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.root).unwrap_or(path).to_path_buf()
    }

    /// `values.yaml`.
    pub fn values(&self) -> PathBuf {
        self.dir.join(VALUES)
    }

    /// `credentials.yaml`: the plaintext credentials.
    pub fn credentials(&self) -> PathBuf {
        self.dir.join(CREDENTIALS)
    }

    /// `credentials-sealed.yaml`: the sealed credentials.
    pub fn sealed_credentials(&self) -> PathBuf {
        self.dir.join(SEALED_CREDENTIALS)
    }

    /// `kustomization.yaml`.
    pub fn kustomization(&self) -> PathBuf {
        self.dir.join(KUSTOMIZATION)
    }

    /// `kubeconfig`: the self-managed cluster's kubeconfig.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join(KUBECONFIG)
    }

    /// `.capi-manage/`: the state folder.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join(STATE_DIR)
    }

    /// `.capi-manage/state.json`: what the bootstrap has done.
    pub fn bootstrap_state(&self) -> PathBuf {
        self.state_dir().join("state.json")
    }

    /// `.capi-manage/teardown.json`: what the teardown has done.
    pub fn teardown_state(&self) -> PathBuf {
        self.state_dir().join("teardown.json")
    }

    /// `.capi-manage/kind-kubeconfig`: the ephemeral kind cluster's kubeconfig.
    pub fn kind_kubeconfig(&self) -> PathBuf {
        self.state_dir().join("kind-kubeconfig")
    }

    /// `.capi-manage/move-journal.json`: the journal of a move to the self-managed cluster
    /// (bootstrap, `capi-manage move --cluster`).
    pub fn move_journal(&self) -> PathBuf {
        self.state_dir().join("move-journal.json")
    }

    /// `.capi-manage/teardown-move-journal.json`: the journal of the move back to kind.
    pub fn teardown_move_journal(&self) -> PathBuf {
        self.state_dir().join("teardown-move-journal.json")
    }

    /// `.capi-manage/deploy-key`: Flux's deploy key, private half (0600).
    pub fn deploy_key(&self) -> PathBuf {
        self.state_dir().join("deploy-key")
    }

    /// `.capi-manage/deploy-key.pub`: its public line.
    pub fn deploy_key_pub(&self) -> PathBuf {
        self.state_dir().join("deploy-key.pub")
    }

    /// Takes the cluster's run lock ([`lock_state_dir`](super::lock_state_dir) on the state
    /// folder).
    ///
    /// # Errors
    ///
    /// [`Error::Locked`](super::Error::Locked) naming the holder when another run holds it,
    /// [`Error::Lock`](super::Error::Lock) when the folder or file cannot be made.
    pub fn lock(&self) -> Result<super::RunLock, super::Error> {
        super::lock_state_dir(&self.state_dir())
    }
}

impl std::ops::Deref for ClusterDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.dir
    }
}

impl AsRef<Path> for ClusterDir {
    fn as_ref(&self) -> &Path {
        &self.dir
    }
}

impl From<ClusterDir> for PathBuf {
    fn from(d: ClusterDir) -> PathBuf {
        d.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_under_the_cluster_folder() {
        let d = ClusterDir::new("/repo", "prod");
        assert_eq!(d.path(), Path::new("/repo/clusters/prod"));
        assert_eq!(
            d.sealed_credentials(),
            Path::new("/repo/clusters/prod/credentials-sealed.yaml")
        );
        assert_eq!(
            d.move_journal(),
            Path::new("/repo/clusters/prod/.capi-manage/move-journal.json")
        );
        assert_eq!(
            d.relative(&d.kustomization()),
            Path::new("clusters/prod/kustomization.yaml")
        );
        assert_eq!(d.relative(Path::new("/else")), Path::new("/else"));
    }
}
