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
    /// Image of the default service, which runs steps that name no service.
    pub default_image: Option<String>,
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
        Ok(config)
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
