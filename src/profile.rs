//! Profiles of `.clnrm/config.toml`: named sets of run settings, as nextest has them.
//! `[profile.default]` applies to every run; `[profile.NAME]` goes on top of it when selected,
//! by `--profile NAME` or, when `CI` is set, `ci`. Flags win over both. Only `settings` reads
//! them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::report::FailureOutput;

/// The profile every run starts from.
pub const DEFAULT_PROFILE: &str = "default";
/// The profile selected when the `CI` environment variable is set and no `--profile` is given.
pub const CI_PROFILE: &str = "ci";

/// One `[profile.NAME]` table; every key is optional.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Scenarios running at once.
    pub jobs: Option<usize>,
    /// Retries of a failing scenario (overrides the test files' `retries`).
    pub retries: Option<u32>,
    pub fail_fast: Option<bool>,
    pub flaky_fail: Option<bool>,
    /// A scenario still running after this is reported `SLOW` (`"60s"`, `"2m"`; `"0s"`: never).
    #[serde(default, deserialize_with = "duration")]
    pub slow_timeout: Option<Duration>,
    /// When the output of a failed step is shown.
    pub failure_output: Option<FailureOutput>,
    /// Report paths (relative to the project root).
    pub junit: Option<PathBuf>,
    pub json: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
}

impl Profile {
    /// `self` with every value `over` sets replaced by it.
    pub fn overlay(&self, over: &Profile) -> Profile {
        Profile {
            jobs: over.jobs.or(self.jobs),
            retries: over.retries.or(self.retries),
            fail_fast: over.fail_fast.or(self.fail_fast),
            flaky_fail: over.flaky_fail.or(self.flaky_fail),
            slow_timeout: over.slow_timeout.or(self.slow_timeout),
            failure_output: over.failure_output.or(self.failure_output),
            junit: over.junit.clone().or_else(|| self.junit.clone()),
            json: over.json.clone().or_else(|| self.json.clone()),
            markdown: over.markdown.clone().or_else(|| self.markdown.clone()),
        }
    }
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map(Some).map_err(|e| {
        serde::de::Error::custom(format!(
            "`{text}` is not a duration ({e}); e.g. `\"60s\"`, `\"2m\"`"
        ))
    })
}

/// A profile asked for by name that the config does not define.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unknown profile `{name}`{}", defined_list(.defined))]
pub struct UnknownProfile {
    pub name: String,
    /// Profiles the config defines, sorted.
    pub defined: Vec<String>,
}

fn defined_list(defined: &[String]) -> String {
    if defined.is_empty() {
        "; the config defines no profile".to_string()
    } else {
        let names: Vec<String> = defined.iter().map(|n| format!("`{n}`")).collect();
        format!("; defined: {}", names.join(", "))
    }
}

impl UnknownProfile {
    /// "did you mean", or where profiles are defined.
    pub fn hint(&self) -> String {
        let close = self
            .defined
            .iter()
            .map(|d| (strsim::jaro_winkler(&self.name, d), d))
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        match close {
            Some((_, d)) => format!("did you mean `{d}`?"),
            None => format!(
                "define it as `[profile.{}]` in `.clnrm/config.toml`",
                self.name
            ),
        }
    }
}

/// The profile a run uses: its name (`None`: only `[profile.default]`) and its values,
/// `[profile.default]` with the selected one on top. `flag` is `--profile`; an explicit name
/// must be defined (`default` always is), the automatic `ci` need not be.
pub fn select(
    flag: Option<&str>,
    ci: bool,
    profiles: &BTreeMap<String, Profile>,
) -> Result<(Option<String>, Profile), UnknownProfile> {
    let base = profiles.get(DEFAULT_PROFILE).cloned().unwrap_or_default();
    let name = match flag {
        Some(DEFAULT_PROFILE) => return Ok((Some(DEFAULT_PROFILE.to_string()), base)),
        Some(n) if !profiles.contains_key(n) => {
            return Err(UnknownProfile {
                name: n.to_string(),
                defined: profiles.keys().cloned().collect(),
            })
        }
        Some(n) => n,
        None if ci => CI_PROFILE,
        None => return Ok((None, base)),
    };
    let values = match profiles.get(name) {
        Some(p) => base.overlay(p),
        None => base,
    };
    Ok((Some(name.to_string()), values))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles(text: &str) -> BTreeMap<String, Profile> {
        #[derive(Deserialize)]
        struct C {
            profile: BTreeMap<String, Profile>,
        }
        toml::from_str::<C>(text).unwrap().profile
    }

    const CONFIG: &str = r#"
[profile.default]
retries = 1
slow_timeout = "30s"

[profile.ci]
retries = 2
junit = "target/junit.xml"
failure_output = "immediate-final"
"#;

    #[test]
    fn the_selected_profile_goes_on_top_of_default() {
        let p = profiles(CONFIG);
        let (name, v) = select(None, false, &p).unwrap();
        assert_eq!(name, None);
        assert_eq!(v.retries, Some(1));
        assert_eq!(v.junit, None);
        let (name, v) = select(None, true, &p).unwrap();
        assert_eq!(name.as_deref(), Some("ci"));
        assert_eq!(v.retries, Some(2));
        assert_eq!(v.slow_timeout, Some(Duration::from_secs(30)));
        assert_eq!(v.junit, Some(PathBuf::from("target/junit.xml")));
        assert_eq!(v.failure_output, Some(FailureOutput::ImmediateFinal));
        // `--profile default` in CI: the flag wins over the environment.
        let (name, v) = select(Some("default"), true, &p).unwrap();
        assert_eq!(name.as_deref(), Some("default"));
        assert_eq!(v.retries, Some(1));
    }

    #[test]
    fn ci_need_not_be_defined_but_a_named_profile_must() {
        let (name, v) = select(None, true, &BTreeMap::new()).unwrap();
        assert_eq!((name.as_deref(), v), (Some("ci"), Profile::default()));
        let err = select(Some("cii"), false, &profiles(CONFIG)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown profile `cii`; defined: `ci`, `default`"
        );
        assert_eq!(err.hint(), "did you mean `ci`?");
        let err = select(Some("nightly"), false, &BTreeMap::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown profile `nightly`; the config defines no profile"
        );
        assert_eq!(
            err.hint(),
            "define it as `[profile.nightly]` in `.clnrm/config.toml`"
        );
    }

    #[test]
    fn bad_values_and_unknown_keys_are_errors() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct C {
            profile: BTreeMap<String, Profile>,
        }
        let e = toml::from_str::<C>("[profile.ci]\nslow_timeout = \"soon\"\n").unwrap_err();
        assert!(e.to_string().contains("`soon` is not a duration"), "{e}");
        let e = toml::from_str::<C>("[profile.ci]\nretry = 2\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `retry`"), "{e}");
        let e = toml::from_str::<C>("[profile.ci]\nfailure_output = \"later\"\n").unwrap_err();
        assert!(e.to_string().contains("unknown variant `later`"), "{e}");
    }
}
