//! Configuration: flags > `TFR_*` environment > `tfr.toml` > defaults.
//!
//! Flags and environment variables are resolved by clap (`#[arg(env = ..)]`); this module reads
//! the file layer and holds the defaults, so each setting is resolved in one expression.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./tfr-data";
pub const DEFAULT_CONFIG_FILE: &str = "tfr.toml";

/// The settings a `tfr.toml` may hold. Unknown keys are refused, so a typo is not ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Client commands: the server's base URL.
    pub server: Option<String>,
    /// Client commands: the API token.
    pub token: Option<String>,
    /// `serve`: the address to listen on.
    pub listen: Option<String>,
    /// `serve`: the data directory of the embedded store.
    pub data: Option<PathBuf>,
    /// `serve`: the PostgreSQL URL of the shared store (instead of `data`).
    pub database: Option<String>,
    /// `serve`: connections each node opens to PostgreSQL.
    pub pool_size: Option<u32>,
    /// `serve`: largest request body, in bytes.
    pub body_limit: Option<usize>,
    /// `serve`: largest diff of one event, in bytes.
    pub max_diff_bytes: Option<usize>,
    /// `serve`: seconds a request may take before it is answered 503.
    pub request_timeout_secs: Option<u64>,
    /// `serve`: monitoring links shown on every event, `[[monitoring]] name = .. url = ..`.
    #[serde(default)]
    pub monitoring: Vec<tfr_server::MonitoringLink>,
    /// `serve`: minutes the monitoring links show either side of an event (default 30).
    pub monitoring_window_minutes: Option<u32>,
    /// `serve`: the GitHub webhook secret of `/integrations/github` (never printed).
    pub github_secret: Option<tfr_server::Secret>,
    /// `serve`: record GitHub pushes to the default branch only.
    pub github_default_branch_only: Option<bool>,
    /// `serve`: GitHub workflows whose completed runs are recorded (`"*"`: all).
    pub github_workflows: Option<Vec<String>>,
    /// `serve`: the GitLab webhook token of `/integrations/gitlab` (never printed).
    pub gitlab_token: Option<tfr_server::Secret>,
    /// `serve`: accept writes without a token, on any address and even once tokens exist.
    pub allow_anonymous_writes: Option<bool>,
    /// `serve`: let callers without a token read (default: on loopback only).
    pub anonymous_read: Option<bool>,
    /// `serve`: requests per token (or anonymous address), `"20/s"`, `"600/m"`.
    pub rate_limit: Option<String>,
    /// `serve`: connections served at once.
    pub max_connections: Option<usize>,
    /// `serve`: live streams open at once.
    pub max_streams: Option<usize>,
    /// `serve`: seconds a connection may stay without sending a complete request head.
    pub idle_timeout_secs: Option<u64>,
}

impl FileConfig {
    /// Reads the file named by `--config`/`TFR_CONFIG` (which must exist), or `./tfr.toml`
    /// when present, or nothing.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let path = match path {
            Some(path) => path.to_owned(),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => PathBuf::from(DEFAULT_CONFIG_FILE),
            None => return Ok(Self::default()),
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("invalid configuration file {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_layer() {
        let config: FileConfig =
            toml::from_str("listen = \"0.0.0.0:9000\"\nbody_limit = 1024\n").unwrap();
        assert_eq!(config.listen.as_deref(), Some("0.0.0.0:9000"));
        assert_eq!(config.body_limit, Some(1024));
        let err = toml::from_str::<FileConfig>("lisen = \"x\"").unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn integration_secrets_are_read_and_never_printed() {
        let config: FileConfig = toml::from_str(
            "github_secret = \"gh-s3cret\"\ngitlab_token = \"gl-t0ken\"\ngithub_workflows = [\"Deploy\"]\n",
        )
        .unwrap();
        assert_eq!(
            config.github_secret,
            Some(tfr_server::Secret::new("gh-s3cret"))
        );
        assert_eq!(config.github_workflows, Some(vec!["Deploy".to_owned()]));
        let printed = format!("{config:?}");
        assert!(
            !printed.contains("gh-s3cret") && !printed.contains("gl-t0ken"),
            "{printed}"
        );
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        assert!(FileConfig::load(Some(Path::new("/nonexistent/tfr.toml"))).is_err());
    }
}
