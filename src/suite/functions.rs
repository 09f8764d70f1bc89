//! Custom Tera functions: `env`, `sha256`, `toml_encode`, `now_rfc3339` and seeded fake data.
//!
//! Fake data is derived from sha256 of (function, seed), so the same seed always yields the
//! same value on every machine, without a random-number crate.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tera::{Error, Result, Tera, Value};

use super::fake;

/// State the functions of one compiled template share.
pub(crate) struct FnState {
    /// `--freeze-clock` or `[determinism] freeze_clock`.
    pub freeze_clock: Option<String>,
    /// `[determinism] seed`: default seed of fake-data calls without `seed=`.
    pub seed: u64,
    /// Set when `now_rfc3339()` read the real clock: such a render must not be cached.
    pub used_real_clock: Arc<AtomicBool>,
}

pub(crate) fn register(tera: &mut Tera, state: FnState) {
    super::generators::register(
        tera,
        state.seed,
        state.freeze_clock.as_deref(),
        state.used_real_clock.clone(),
    );
    tera.register_function("env", env);
    tera.register_function("sha256", |args: &HashMap<String, Value>| {
        let v = arg(args, "sha256", "s")?;
        Ok(Value::String(hex::encode(Sha256::digest(
            as_text(v).as_bytes(),
        ))))
    });
    // `value=` is upstream's spelling of the argument.
    tera.register_function("toml_encode", |args: &HashMap<String, Value>| {
        let v = match args.get("value") {
            Some(v) => v,
            None => arg(args, "toml_encode", "v")?,
        };
        Ok(Value::String(toml_encode(v)))
    });
    tera.register_filter("toml_encode", |v: &Value, _: &HashMap<String, Value>| {
        Ok(Value::String(toml_encode(v)))
    });
    let frozen = state.freeze_clock.clone();
    let used = state.used_real_clock.clone();
    tera.register_function("now_rfc3339", move |_: &HashMap<String, Value>| {
        Ok(Value::String(match &frozen {
            Some(t) => t.clone(),
            None => {
                used.store(true, Ordering::Relaxed);
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            }
        }))
    });
    let seed = state.seed;
    for name in BASIC {
        tera.register_function(name, move |a: &HashMap<String, Value>| {
            basic(name, a, seed).expect("every BASIC name has a generator")
        });
    }
    // Upstream's name for a seeded `fake_uuid`.
    tera.register_function("fake_uuid_seeded", move |a: &HashMap<String, Value>| {
        basic("fake_uuid", a, seed).expect("fake_uuid is a BASIC generator")
    });
}

/// The first five `fake_*` functions (the rest live in `fake`).
pub(crate) const BASIC: &[&str] = &[
    "fake_uuid",
    "fake_name",
    "fake_email",
    "fake_word",
    "fake_int",
];

/// The value of the `BASIC` function `name` for `a`; `None` for any other name.
pub(crate) fn basic(name: &str, a: &HashMap<String, Value>, seed: u64) -> Option<Result<Value>> {
    Some(match name {
        "fake_uuid" => {
            let h = digest("uuid", a, seed);
            let mut b = [0u8; 16];
            b.copy_from_slice(&h[..16]);
            b[6] = (b[6] & 0x0f) | 0x40; // version 4 layout
            b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
            let x = hex::encode(b);
            Ok(Value::String(format!(
                "{}-{}-{}-{}-{}",
                &x[..8],
                &x[8..12],
                &x[12..16],
                &x[16..20],
                &x[20..]
            )))
        }
        "fake_name" => Ok(Value::String(self::name(&digest("name", a, seed)))),
        "fake_email" => {
            let h = digest("email", a, seed);
            let n = self::name(&h).to_ascii_lowercase().replace(' ', ".");
            Ok(Value::String(format!("{n}{}@example.com", h[4] % 100)))
        }
        "fake_word" => {
            let h = digest("word", a, seed);
            Ok(Value::String(pick(WORDS, h[0], h[1]).to_string()))
        }
        "fake_int" => fake_int(a, seed),
        _ => return None,
    })
}

fn fake_int(a: &HashMap<String, Value>, seed: u64) -> Result<Value> {
    let min = int_arg(a, "min", 0)?;
    let max = int_arg(a, "max", 100)?;
    if min > max {
        return Err(Error::msg(format!(
            "fake_int: `min` ({min}) is greater than `max` ({max})"
        )));
    }
    let h = digest("int", a, seed);
    let r = u64::from_le_bytes(h[..8].try_into().expect("sha256 has 32 bytes"));
    let span = (max as i128 - min as i128 + 1) as u128;
    Ok(Value::from(
        (min as i128 + (r as u128 % span) as i128) as i64,
    ))
}

fn env(args: &HashMap<String, Value>) -> Result<Value> {
    let name = arg(args, "env", "name")?;
    let Some(name) = name.as_str() else {
        return Err(Error::msg("env: `name` must be a string"));
    };
    match (std::env::var(name), args.get("default")) {
        (Ok(v), _) => {
            // A value from the environment may be a secret: it never reaches a report.
            crate::secrets::register(&v);
            Ok(Value::String(v))
        }
        (Err(_), Some(d)) => Ok(d.clone()),
        (Err(_), None) => Err(Error::msg(format!(
            "environment variable `{name}` is not set and `env()` was given no `default=`"
        ))),
    }
}

fn arg<'a>(args: &'a HashMap<String, Value>, func: &str, name: &str) -> Result<&'a Value> {
    args.get(name).ok_or_else(|| {
        Error::msg(format!(
            "{func}() needs the keyword argument `{name}=` (Tera functions take keyword arguments)"
        ))
    })
}

fn int_arg(args: &HashMap<String, Value>, name: &str, default: i64) -> Result<i64> {
    match args.get(name) {
        None => Ok(default),
        Some(v) => v
            .as_i64()
            .ok_or_else(|| Error::msg(format!("fake_int: `{name}` must be an integer"))),
    }
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn digest(func: &str, args: &HashMap<String, Value>, default_seed: u64) -> [u8; 32] {
    let seed = args
        .get("seed")
        .map_or_else(|| default_seed.to_string(), as_text);
    Sha256::digest(format!("clnrm-fake:{func}:{seed}").as_bytes()).into()
}

fn pick<'a>(list: &[&'a str], a: u8, b: u8) -> &'a str {
    list[(usize::from(a) << 8 | usize::from(b)) % list.len()]
}

fn name(h: &[u8; 32]) -> String {
    format!(
        "{} {}",
        pick(fake::FIRST, h[0], h[1]),
        pick(fake::LAST, h[2], h[3])
    )
}

const WORDS: &[&str] = &[
    "amber", "basil", "cedar", "delta", "ember", "fjord", "garnet", "harbor", "iris", "juniper",
    "kestrel", "lagoon", "maple", "nectar", "onyx", "pebble", "quartz", "raven", "sierra",
    "tundra", "umber", "violet", "willow", "xenon", "yarrow", "zephyr",
];

/// A TOML literal for any template value: strings become basic strings with every quote,
/// backslash and control character escaped, so user data cannot break the document.
pub(crate) fn toml_encode(v: &Value) -> String {
    match v {
        Value::Null => "\"\"".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => toml_string(s),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(toml_encode).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(o) => {
            let body: Vec<String> = o
                .iter()
                .map(|(k, v)| format!("{} = {}", toml_key(k), toml_encode(v)))
                .collect();
            if body.is_empty() {
                "{}".into()
            } else {
                format!("{{ {} }}", body.join(", "))
            }
        }
    }
}

fn toml_key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        k.to_string()
    } else {
        toml_string(k)
    }
}

fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn render(src: &str, seed: u64) -> String {
        let mut tera = Tera::default();
        tera.add_raw_template("t", src).expect("template compiles");
        register(
            &mut tera,
            FnState {
                freeze_clock: Some("2024-01-01T00:00:00Z".into()),
                seed,
                used_real_clock: Arc::default(),
            },
        );
        tera.render("t", &tera::Context::new()).expect("renders")
    }

    #[test]
    fn fake_data_is_stable_for_a_seed() {
        let t = "{{ fake_uuid(seed=1) }}|{{ fake_name(seed=1) }}|{{ fake_email(seed=1) }}|{{ fake_int(min=5, max=7, seed=1) }}|{{ fake_word(seed=1) }}";
        let a = render(t, 0);
        assert_eq!(a, render(t, 99), "explicit seeds ignore the default seed");
        let parts: Vec<&str> = a.split('|').collect();
        assert_eq!(parts[0].len(), 36);
        assert_eq!(&parts[0][14..15], "4");
        assert!(["5", "6", "7"].contains(&parts[3]), "{a}");
        assert_ne!(
            render("{{ fake_uuid(seed=1) }}", 0),
            render("{{ fake_uuid(seed=2) }}", 0)
        );
        assert_ne!(
            render("{{ fake_name() }}", 1),
            render("{{ fake_name() }}", 2)
        );
    }

    #[test]
    fn sha256_and_frozen_clock() {
        assert_eq!(
            render("{{ sha256(s=\"abc\") }} {{ now_rfc3339() }}", 0),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad 2024-01-01T00:00:00Z"
        );
    }

    #[test]
    fn toml_encode_escapes_everything_toml_needs() {
        let v = serde_json::json!({"a b": "q\"uo\\te\nline\u{1}", "n": [1, true, "x"]});
        let enc = toml_encode(&tera::to_value(&v).expect("json to tera"));
        assert_eq!(
            enc,
            r#"{ "a b" = "q\"uo\\te\nline\u0001", n = [1, true, "x"] }"#
        );
    }

    proptest! {
        #[test]
        fn toml_encode_round_trips_any_string(s in "\\PC*|[\"\\\\\n\t\r\u{0}-\u{1f}]*") {
            let doc = format!("x = {}\n", toml_string(&s));
            let t: toml::Table = toml::from_str(&doc).expect("valid TOML");
            prop_assert_eq!(t["x"].as_str(), Some(s.as_str()));
        }
    }
}
