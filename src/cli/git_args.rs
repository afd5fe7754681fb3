//! The git flags of `bootstrap` and `rotate`: one name each, in both commands.

use std::path::PathBuf;

use anyhow::bail;
use capi_manage::git::{Author, HttpCredentials, SshOptions};

/// Environment variable holding an access token for HTTP(S) remotes.
const TOKEN_ENV: &str = "CAPI_MANAGE_GIT_TOKEN";
/// Environment variables holding a user name and password for HTTP(S) remotes.
const USERNAME_ENV: &str = "CAPI_MANAGE_GIT_USERNAME";
const PASSWORD_ENV: &str = "CAPI_MANAGE_GIT_PASSWORD";

#[derive(Debug, Clone, clap::Args)]
pub struct GitArgs {
    /// Push here instead of the remote `origin`'s URL.
    #[arg(long = "git-url", visible_alias = "remote-url", value_name = "URL")]
    pub git_url: Option<String>,
    /// Commit message.
    #[arg(long, short = 'm', value_name = "TEXT")]
    pub message: Option<String>,
    /// Commit author name (default: git config user.name).
    #[arg(long, value_name = "NAME", requires = "author_email")]
    pub author_name: Option<String>,
    /// Commit author email (default: git config user.email).
    #[arg(long, value_name = "EMAIL", requires = "author_name")]
    pub author_email: Option<String>,
    /// Read the access token for HTTP(S) remotes from the first line of standard input.
    /// Tokens are never flag values (they would show in the process list and shell history):
    /// else $CAPI_MANAGE_GIT_TOKEN, or $CAPI_MANAGE_GIT_USERNAME with $CAPI_MANAGE_GIT_PASSWORD,
    /// else those in the URL.
    #[arg(long)]
    pub git_token_stdin: bool,
    /// SSH private key for the push (repeatable; default: ~/.ssh/id_ed25519, id_ecdsa, id_rsa
    /// and the ssh-agent).
    #[arg(long = "ssh-identity", visible_alias = "identity", value_name = "FILE")]
    pub ssh_identity: Vec<PathBuf>,
    /// known_hosts file for the push (default: ~/.ssh/known_hosts).
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Trust and record the git host's key if known_hosts lacks it.
    #[arg(long)]
    pub accept_new_host_key: bool,
    /// Do not use the ssh-agent.
    #[arg(long)]
    pub no_agent: bool,
}

impl GitArgs {
    /// The commit author, when both flags are given.
    pub fn author(&self) -> Option<Author> {
        match (&self.author_name, &self.author_email) {
            (Some(name), Some(email)) => Some(Author {
                name: name.clone(),
                email: email.clone(),
            }),
            _ => None,
        }
    }

    /// The SSH options of the push.
    pub fn ssh(&self) -> SshOptions {
        let mut ssh = SshOptions::default();
        ssh.identity_files = self.ssh_identity.clone();
        ssh.known_hosts = self.known_hosts.clone();
        ssh.accept_new_host_key = self.accept_new_host_key;
        ssh.no_agent = self.no_agent;
        ssh
    }

    /// The push's HTTP(S) credentials: a token from standard input (--git-token-stdin) or the
    /// environment, or a user name and password from the environment.
    pub fn http_credentials(&self) -> anyhow::Result<Option<HttpCredentials>> {
        if self.git_token_stdin {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map_err(|e| {
                anyhow::anyhow!("--git-token-stdin: cannot read standard input: {e}")
            })?;
            let token = line.trim();
            if token.is_empty() {
                bail!("--git-token-stdin: standard input holds no token");
            }
            return Ok(Some(HttpCredentials::token(token)));
        }
        if let Some(t) = env_value(TOKEN_ENV) {
            return Ok(Some(HttpCredentials::token(t)));
        }
        match (env_value(USERNAME_ENV), env_value(PASSWORD_ENV)) {
            (Some(username), Some(password)) => Ok(Some(HttpCredentials { username, password })),
            (None, None) => Ok(None),
            _ => bail!("set both ${USERNAME_ENV} and ${PASSWORD_ENV}, or ${TOKEN_ENV}, or neither"),
        }
    }
}

/// An environment variable's value, when set and not empty.
pub fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
