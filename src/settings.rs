//! Project settings from `.clnrm/config.toml`; command-line flags override them.

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const CONFIG_PATH: &str = ".clnrm/config.toml";
pub const DEFAULT_BASELINE: &str = ".clnrm/perf-baseline.toml";

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Default paths when none is given on the command line.
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    pub jobs: Option<usize>,
    pub backend: Option<String>,
    pub baseline: Option<PathBuf>,
    /// Host paths test files may bind-mount outside the repository (relative to the project
    /// root); `--allow-mount` adds to them.
    #[serde(default)]
    pub allow_mounts: Vec<PathBuf>,
    /// Environment variables whose values are masked (`***`) in every report and log line;
    /// `--mask-env` adds to them.
    #[serde(default)]
    pub mask_env: Vec<String>,
    /// Default container memory limit of services that set none (`"1g"`, `"512m"`; `"none"`
    /// for no limit).
    pub container_memory: Option<String>,
    /// Default pids limit of services that set none (`0` for no limit).
    pub container_pids: Option<i64>,
}

impl ProjectConfig {
    /// Read `.clnrm/config.toml` under `dir`; a missing file is the default config.
    pub fn load(dir: &Path) -> Result<ProjectConfig, String> {
        let path = dir.join(CONFIG_PATH);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(format!("cannot read `{}`: {e}", path.display())),
        };
        let config: ProjectConfig =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if let Some(b) = &config.backend {
            if !["auto", "docker", "local"].contains(&b.as_str()) {
                return Err(format!(
                    "{}: `backend = \"{b}\"` must be \"auto\", \"docker\" or \"local\"",
                    path.display()
                ));
            }
        }
        if let Some(m) = &config.container_memory {
            if m != "none" && crate::suite::parse_memory(m).is_none() {
                return Err(format!(
                    "{}: `container_memory = \"{m}\"` is not a size (`\"1g\"`, `\"512m\"`) or `\"none\"`",
                    path.display()
                ));
            }
        }
        Ok(config)
    }

    /// `allow_mounts` made absolute against the project folder `dir`.
    pub fn allow_mounts_in(&self, dir: &Path) -> Vec<PathBuf> {
        self.allow_mounts.iter().map(|p| dir.join(p)).collect()
    }
}

/// Scenarios running at once: flag, else config, else the number of cores.
pub fn jobs(flag: Option<usize>, config: &ProjectConfig) -> usize {
    flag.or(config.jobs)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_config_is_default_and_unknown_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            ProjectConfig::load(dir.path()).unwrap(),
            ProjectConfig::default()
        );
        std::fs::create_dir_all(dir.path().join(".clnrm")).unwrap();
        std::fs::write(dir.path().join(CONFIG_PATH), "jobs = 3\npathz = []\n").unwrap();
        let err = ProjectConfig::load(dir.path()).unwrap_err();
        assert!(err.contains("unknown field `pathz`"), "{err}");
        std::fs::write(dir.path().join(CONFIG_PATH), "backend = \"podman\"\n").unwrap();
        let err = ProjectConfig::load(dir.path()).unwrap_err();
        assert!(err.contains("must be \"auto\""), "{err}");
    }
}
