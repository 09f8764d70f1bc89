//! The rest of the template library of upstream clnrm: ids (`uuid_v4`, `uuid_v5`, `uuid_v7`,
//! `ulid`, `seq`),
//! clock helpers (`now_unix`, `now_ms`, `now_plus`, `date_rfc3339`), telemetry ids
//! (`trace_id`, `span_id`, `traceparent`, `baggage`), collections (`pick`, `weighted`,
//! `shuffle`, `sample`), string transforms (`slug`, `kebab`, `snake`, `camel`, `pascal`, also
//! as filters) and the seeded `fake_*` family (with `fake(kind=...)` in `fake`).
//!
//! Everything random is drawn from sha256 of (function, seed, counter): the same seed gives the
//! same value on every machine and every run, with no random-number crate. Without `seed=`,
//! `[determinism] seed` (default 0) is used. Everything clock-based reads `--freeze-clock` /
//! `[determinism] freeze_clock` when set; otherwise it reads the real clock and the render is
//! not cached.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tera::{Error, Result, Tera, Value};

type Args = HashMap<String, Value>;

/// A deterministic stream of u64 drawn from sha256(function, seed, counter).
pub(crate) struct Draw {
    prefix: String,
    counter: u64,
}

impl Draw {
    pub(crate) fn new(func: &str, args: &Args, default_seed: u64) -> Draw {
        let seed = match args.get("seed") {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => default_seed.to_string(),
        };
        Draw {
            prefix: format!("clnrm-gen:{func}:{seed}:"),
            counter: 0,
        }
    }

    pub(crate) fn u64(&mut self) -> u64 {
        let h = Sha256::digest(format!("{}{}", self.prefix, self.counter).as_bytes());
        self.counter += 1;
        u64::from_le_bytes(h[..8].try_into().expect("sha256 has 32 bytes"))
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.u64() % n
        }
    }

    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi as i128 - lo as i128 + 1) as u128;
        (lo as i128 + (self.u64() as u128 % span) as i128) as i64
    }

    pub(crate) fn unit(&mut self) -> f64 {
        (self.u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.u64().to_le_bytes());
        }
        out.truncate(n);
        out
    }

    pub(crate) fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.below(list.len() as u64) as usize]
    }
}

/// The instant clock functions use: frozen, or the real clock (recorded as used).
#[derive(Clone)]
struct Clock {
    frozen: Option<DateTime<Utc>>,
    used_real: Arc<AtomicBool>,
}

impl Clock {
    fn now(&self) -> DateTime<Utc> {
        match self.frozen {
            Some(t) => t,
            None => {
                self.used_real.store(true, Ordering::Relaxed);
                Utc::now()
            }
        }
    }
}

fn int(args: &Args, func: &str, name: &str, default: i64) -> Result<i64> {
    match args.get(name) {
        None => Ok(default),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| Error::msg(format!("{func}: `{name}` must be an integer"))),
    }
}

/// Largest length or count any generator argument accepts (characters, words).
pub(crate) const MAX_SIZE: i64 = 4096;

/// A size argument (a length or a count) from 0 to `max`; anything else is an error, never a
/// silent clamp, so `n=9000000000000000000` cannot make a render allocate without bound.
pub(crate) fn size(args: &Args, func: &str, name: &str, default: i64, max: i64) -> Result<usize> {
    let n = int(args, func, name, default)?;
    check_size(func, name, n, max)?;
    Ok(n as usize)
}

/// `n` from 0 to `max`, else the error every generator gives for a size argument.
pub(crate) fn check_size(func: &str, name: &str, n: i64, max: i64) -> Result<()> {
    if (0..=max).contains(&n) {
        Ok(())
    } else {
        Err(Error::msg(format!(
            "{func}: `{name}` must be from 0 to {max}, found {n}"
        )))
    }
}

fn text(args: &Args, func: &str, name: &str) -> Result<String> {
    match args.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Ok(v.to_string()),
        None => Err(Error::msg(format!(
            "{func}() needs the keyword argument `{name}=` (Tera functions take keyword arguments)"
        ))),
    }
}

fn list<'a>(args: &'a Args, func: &str, name: &str) -> Result<&'a Vec<Value>> {
    match args.get(name) {
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(Error::msg(format!("{func}: `{name}` must be an array"))),
        None => Err(Error::msg(format!(
            "{func}() needs the keyword argument `{name}=` (an array)"
        ))),
    }
}

fn uuid_text(b: [u8; 16]) -> String {
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

/// RFC 9562 UUID v7: 48-bit unix milliseconds, version, 74 seeded random bits.
pub(crate) fn uuid_v7(ms: u64, d: &mut Draw) -> String {
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6..].copy_from_slice(&d.bytes(10));
    b[6] = (b[6] & 0x0f) | 0x70;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid_text(b)
}

/// RFC 9562 namespaces, by the names `uuid_v5(ns=...)` accepts for them.
const NAMESPACES: &[(&str, &str)] = &[
    ("dns", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"),
    ("url", "6ba7b811-9dad-11d1-80b4-00c04fd430c8"),
    ("oid", "6ba7b812-9dad-11d1-80b4-00c04fd430c8"),
    ("x500", "6ba7b814-9dad-11d1-80b4-00c04fd430c8"),
];

fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let hex_only: String = s.chars().filter(|c| *c != '-').collect();
    if hex_only.len() != 32 || s.len() != 36 {
        return None;
    }
    hex::decode(hex_only).ok()?.try_into().ok()
}

/// RFC 9562 UUID v5: SHA-1 of the namespace's 16 bytes and the name.
pub(crate) fn uuid_v5(ns: [u8; 16], name: &str) -> String {
    let mut input = ns.to_vec();
    input.extend_from_slice(name.as_bytes());
    let h = sha1::Sha1::digest(&input);
    let mut b: [u8; 16] = h[..16].try_into().expect("SHA-1 has 20 bytes");
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid_text(b)
}

thread_local! {
    /// Counters of `seq()`, per render: a render runs on one thread, and
    /// `Compiled::render` clears them first, so a template's numbering never depends on an
    /// earlier render.
    static SEQ: RefCell<HashMap<String, i64>> = RefCell::new(HashMap::new());
}

/// Start a new render's `seq()` numbering.
pub(crate) fn reset_seq() {
    SEQ.with(|s| s.borrow_mut().clear());
}

const CROCKFORD: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// ULID: 48-bit unix milliseconds + 80 seeded random bits, Crockford base32 (26 characters).
fn ulid(ms: u64, d: &mut Draw) -> String {
    let mut v: u128 = u128::from(ms & 0xFFFF_FFFF_FFFF) << 80;
    let r = d.bytes(10);
    for (i, byte) in r.iter().enumerate() {
        v |= u128::from(*byte) << (8 * (9 - i));
    }
    (0..26)
        .rev()
        .map(|i| CROCKFORD[((v >> (5 * i)) & 31) as usize] as char)
        .collect()
}

/// Words of `s`, split at non-alphanumerics and lower-to-upper case changes.
fn words(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in s.chars() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn pascal(s: &str) -> String {
    words(s)
        .iter()
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

fn camel(s: &str) -> String {
    words(s)
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i == 0 {
                w.clone()
            } else {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect())
                    .unwrap_or_default()
            }
        })
        .collect()
}

/// String transforms: `(name, function)`, registered both as `name(s=...)` and `| name`.
type Transform = fn(&str) -> String;

const TRANSFORMS: &[(&str, Transform)] = &[
    ("slug", |s| words(s).join("-")),
    ("slugify", |s| words(s).join("-")),
    ("kebab", |s| words(s).join("-")),
    ("snake", |s| words(s).join("_")),
    ("camel", camel),
    ("pascal", pascal),
];

pub(crate) fn register(
    tera: &mut Tera,
    seed: u64,
    freeze_clock: Option<&str>,
    used_real: Arc<AtomicBool>,
) {
    let clock = Clock {
        frozen: freeze_clock
            .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
            .map(|t| t.with_timezone(&Utc)),
        used_real,
    };

    // Ids.
    tera.register_function("uuid_v4", move |a: &Args| {
        let mut b: [u8; 16] = Draw::new("uuid_v4", a, seed)
            .bytes(16)
            .try_into()
            .expect("16 bytes drawn");
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Ok(Value::String(uuid_text(b)))
    });
    let c = clock.clone();
    tera.register_function("uuid_v7", move |a: &Args| {
        let ms = time_arg(a, "uuid_v7", &c)?.timestamp_millis().max(0) as u64;
        Ok(Value::String(uuid_v7(
            ms,
            &mut Draw::new("uuid_v7", a, seed),
        )))
    });
    let c = clock.clone();
    tera.register_function("ulid", move |a: &Args| {
        let ms = time_arg(a, "ulid", &c)?.timestamp_millis().max(0) as u64;
        Ok(Value::String(ulid(ms, &mut Draw::new("ulid", a, seed))))
    });
    tera.register_function("uuid_v5", |a: &Args| {
        let ns_text = text(a, "uuid_v5", "ns")?;
        let name = text(a, "uuid_v5", "name")?;
        let ns = NAMESPACES
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&ns_text))
            .map_or(ns_text.as_str(), |n| n.1);
        let ns = parse_uuid(ns).ok_or_else(|| {
            Error::msg(format!(
                "uuid_v5: `ns` must be a UUID or one of `dns`, `url`, `oid`, `x500`, found `{ns_text}`"
            ))
        })?;
        Ok(Value::String(uuid_v5(ns, &name)))
    });
    // `seq(name="id", start=1, step=1)`: start, start + step, ... for each call with that name
    // in one render (numbering restarts with every render).
    tera.register_function("seq", |a: &Args| {
        let name = match a.get("name") {
            Some(v) => as_str(v),
            None => String::new(),
        };
        let start = int(a, "seq", "start", 0)?;
        let step = int(a, "seq", "step", 1)?;
        SEQ.with(|s| {
            let mut s = s.borrow_mut();
            let next = s.entry(name).or_insert(start);
            let v = *next;
            *next = next
                .checked_add(step)
                .ok_or_else(|| Error::msg("seq: the counter overflowed"))?;
            Ok(Value::from(v))
        })
    });
    tera.register_function("rand_hex", move |a: &Args| {
        let n = size(a, "rand_hex", "n", 16, MAX_SIZE)?;
        let mut s = hex::encode(Draw::new("rand_hex", a, seed).bytes(n.div_ceil(2)));
        s.truncate(n);
        Ok(Value::String(s))
    });

    // Clock.
    let c = clock.clone();
    tera.register_function("now_unix", move |_: &Args| {
        Ok(Value::from(c.now().timestamp()))
    });
    let c = clock.clone();
    tera.register_function("now_ms", move |_: &Args| {
        Ok(Value::from(c.now().timestamp_millis()))
    });
    for (name, key) in [("now_plus", "seconds"), ("date_rfc3339", "offset_seconds")] {
        let c = clock.clone();
        tera.register_function(name, move |a: &Args| {
            let secs = int(a, name, key, 0)?;
            // Large offsets overflow chrono's range: an error, not a panic.
            let t = chrono::TimeDelta::try_seconds(secs)
                .and_then(|d| c.now().checked_add_signed(d))
                .ok_or_else(|| {
                    Error::msg(format!(
                        "{name}: `{key}` ({secs}) moves the time out of the range of dates"
                    ))
                })?;
            Ok(Value::String(
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ))
        });
    }

    // Telemetry ids (W3C trace context).
    tera.register_function("trace_id", move |a: &Args| {
        Ok(Value::String(hex::encode(
            Draw::new("trace_id", a, seed).bytes(16),
        )))
    });
    tera.register_function("span_id", move |a: &Args| {
        Ok(Value::String(hex::encode(
            Draw::new("span_id", a, seed).bytes(8),
        )))
    });
    tera.register_function("traceparent", move |a: &Args| {
        let trace = match a.get("trace_id") {
            Some(v) => text(a, "traceparent", "trace_id").map(|_| as_str(v))?,
            None => hex::encode(Draw::new("trace_id", a, seed).bytes(16)),
        };
        let span = match a.get("span_id") {
            Some(v) => as_str(v),
            None => hex::encode(Draw::new("span_id", a, seed).bytes(8)),
        };
        let sampled = int(a, "traceparent", "sampled", 1)? != 0;
        Ok(Value::String(format!(
            "00-{trace}-{span}-{}",
            if sampled { "01" } else { "00" }
        )))
    });
    tera.register_function("baggage", |a: &Args| match a.get("map") {
        Some(Value::Object(m)) => Ok(Value::String(
            m.iter()
                .map(|(k, v)| format!("{k}={}", as_str(v)))
                .collect::<Vec<_>>()
                .join(","),
        )),
        _ => Err(Error::msg(
            "baggage: `map` must be a table (Tera has no table literals: pass a `[vars]` table)",
        )),
    });

    // Collections.
    tera.register_function("pick", move |a: &Args| {
        let l = list(a, "pick", "list")?;
        if l.is_empty() {
            return Err(Error::msg("pick: `list` is empty"));
        }
        let i = Draw::new("pick", a, seed).below(l.len() as u64) as usize;
        Ok(l[i].clone())
    });
    tera.register_function("shuffle", move |a: &Args| {
        let mut l = list(a, "shuffle", "list")?.clone();
        let mut d = Draw::new("shuffle", a, seed);
        for i in (1..l.len()).rev() {
            l.swap(i, d.below(i as u64 + 1) as usize);
        }
        Ok(Value::Array(l))
    });
    tera.register_function("sample", move |a: &Args| {
        let mut l = list(a, "sample", "list")?.clone();
        let k = int(a, "sample", "k", 1)?.clamp(0, l.len() as i64) as usize;
        let mut d = Draw::new("sample", a, seed);
        for i in 0..k {
            let j = i + d.below((l.len() - i) as u64) as usize;
            l.swap(i, j);
        }
        l.truncate(k);
        Ok(Value::Array(l))
    });
    // Tera has no nested array literals: `pairs` comes from a variable (`[vars]` may hold
    // arrays), or the call gives `values=[...]` and `weights=[...]`.
    tera.register_function("weighted", move |a: &Args| {
        let zipped: Vec<Value>;
        let pairs = match (a.get("values"), a.get("weights")) {
            (Some(Value::Array(v)), Some(Value::Array(w))) if v.len() == w.len() => {
                zipped = v
                    .iter()
                    .zip(w)
                    .map(|(v, w)| Value::Array(vec![v.clone(), w.clone()]))
                    .collect();
                &zipped
            }
            (Some(_), _) | (_, Some(_)) => {
                return Err(Error::msg(
                    "weighted: `values` and `weights` must be arrays of the same length",
                ))
            }
            _ => list(a, "weighted", "pairs")?,
        };
        let mut items = Vec::new();
        for p in pairs {
            match p.as_array().map(Vec::as_slice) {
                Some([v, w]) if w.as_f64().is_some_and(|w| w >= 0.0) => {
                    items.push((v.clone(), w.as_f64().unwrap_or(0.0)));
                }
                _ => {
                    return Err(Error::msg(
                        "weighted: `pairs` must be [[value, weight], ...] with weights >= 0",
                    ))
                }
            }
        }
        let total: f64 = items.iter().map(|i| i.1).sum();
        if total <= 0.0 {
            return Err(Error::msg("weighted: the weights add up to zero"));
        }
        let mut x = Draw::new("weighted", a, seed).unit() * total;
        for (v, w) in &items {
            if x < *w {
                return Ok(v.clone());
            }
            x -= w;
        }
        Ok(items.last().map(|i| i.0.clone()).unwrap_or(Value::Null))
    });

    // String transforms, as functions (`slug(s="...")`) and filters (`| slug`).
    for (name, f) in TRANSFORMS {
        let f = *f;
        tera.register_function(name, move |a: &Args| {
            Ok(Value::String(f(&text(a, name, "s")?)))
        });
        tera.register_filter(name, move |v: &Value, _: &Args| {
            Ok(Value::String(f(&as_str(v))))
        });
    }

    super::fake::register(tera, seed, clock.frozen, clock.used_real.clone());
}

fn as_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `time=` (RFC 3339) if given, else the clock.
fn time_arg(a: &Args, func: &str, clock: &Clock) -> Result<DateTime<Utc>> {
    match a.get("time") {
        None => Ok(clock.now()),
        Some(v) => DateTime::parse_from_rfc3339(&as_str(v))
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| Error::msg(format!("{func}: `time` is not RFC 3339: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str, seed: u64, clock: Option<&str>) -> String {
        reset_seq();
        let mut tera = Tera::default();
        tera.add_raw_template("t", src).expect("template compiles");
        register(&mut tera, seed, clock, Arc::default());
        let mut ctx = tera::Context::new();
        ctx.insert("tags", &serde_json::json!({"svc": "api", "env": "ci"}));
        ctx.insert("temps", &serde_json::json!([["hot", 1.0], ["cold", 0.0]]));
        tera.render("t", &ctx).expect("renders")
    }

    const T0: &str = "2024-01-01T00:00:00Z";

    #[test]
    fn ids_have_their_layout_and_follow_the_seed() {
        let v4 = render("{{ uuid_v4(seed=1) }}", 0, None);
        assert_eq!((v4.len(), &v4[14..15]), (36, "4"));
        assert!(matches!(&v4[19..20], "8" | "9" | "a" | "b"), "{v4}");
        assert_ne!(v4, render("{{ uuid_v4(seed=2) }}", 0, None));
        assert_eq!(
            render("{{ uuid_v4() }}", 5, None),
            render("{{ uuid_v4(seed=5) }}", 0, None)
        );
        let v7 = render("{{ uuid_v7(seed=1) }}", 0, Some(T0));
        // 2024-01-01T00:00:00Z = 1704067200000 ms = 0x018cc251f400.
        assert_eq!(&v7[..13], "018cc251-f400");
        assert_eq!(&v7[14..15], "7");
        let u = render("{{ ulid(seed=1) }}", 0, Some(T0));
        assert_eq!(u.len(), 26);
        assert!(u.starts_with("01HK153X00"), "{u}");
        assert!(u.chars().all(|c| CROCKFORD.contains(&(c as u8))));
        assert_eq!(render("{{ rand_hex(n=5, seed=3) }}", 0, None).len(), 5);
    }

    #[test]
    fn uuid_v5_matches_the_published_vectors() {
        // RFC 9562 appendix A.4 / Python's uuid.uuid5(NAMESPACE_DNS, "www.example.com").
        assert_eq!(
            render(
                "{{ uuid_v5(ns=\"dns\", name=\"www.example.com\") }}",
                0,
                None
            ),
            "2ed6657d-e927-568b-95e1-2665a8aea6a2"
        );
        assert_eq!(
            render(
                "{{ uuid_v5(ns=\"6ba7b811-9dad-11d1-80b4-00c04fd430c8\", name=\"https://example.com/\") }}",
                3,
                None
            ),
            render("{{ uuid_v5(ns=\"URL\", name=\"https://example.com/\") }}", 7, None)
        );
    }

    #[test]
    fn bad_arguments_are_errors_not_panics() {
        for (src, want) in [
            (
                "{{ uuid_v5(ns=\"nope\", name=\"x\") }}",
                "`ns` must be a UUID",
            ),
            (
                "{{ uuid_v5(ns=\"dns\") }}",
                "needs the keyword argument `name=`",
            ),
            (
                "{{ seq(name=\"a\", step=\"x\") }}",
                "`step` must be an integer",
            ),
            (
                "{{ seq(name=\"a\", start=9223372036854775807) }}{{ seq(name=\"a\") }}",
                "overflowed",
            ),
            (
                "{{ now_plus(seconds=9223372036854775807) }}",
                "now_plus: `seconds` (9223372036854775807) moves the time out of the range",
            ),
            (
                "{{ date_rfc3339(offset_seconds=-9223372036854775807) }}",
                "date_rfc3339: `offset_seconds` (-9223372036854775807) moves the time",
            ),
            (
                "{{ now_plus(seconds=9000000000000) }}",
                "`seconds` (9000000000000) moves the time out of the range",
            ),
            (
                "{{ rand_hex(n=4097) }}",
                "rand_hex: `n` must be from 0 to 4096",
            ),
            (
                "{{ rand_hex(n=-1) }}",
                "rand_hex: `n` must be from 0 to 4096",
            ),
        ] {
            reset_seq();
            let mut tera = Tera::default();
            tera.add_raw_template("t", src).expect("template compiles");
            register(&mut tera, 0, None, Arc::default());
            let e = tera.render("t", &tera::Context::new()).expect_err(src);
            assert!(format!("{e:?}").contains(want), "{src}: {e:?}");
        }
    }

    #[test]
    fn seq_counts_per_name_and_restarts_with_each_render() {
        let src = "{{ seq(name=\"a\") }},{{ seq(name=\"a\") }},{{ seq(name=\"b\", start=10, step=5) }},{{ seq(name=\"b\") }},{{ seq(name=\"a\") }}";
        assert_eq!(render(src, 0, None), "0,1,10,15,2");
        // A compiled template rendered twice numbers the same way both times.
        let mut tera = Tera::default();
        tera.add_raw_template(
            "t",
            "{% for i in range(end=3) %}{{ seq(name=\"x\", start=1) }} {% endfor %}",
        )
        .expect("compiles");
        register(&mut tera, 0, None, Arc::default());
        let mut outs = Vec::new();
        for _ in 0..2 {
            reset_seq();
            outs.push(tera.render("t", &tera::Context::new()).expect("renders"));
        }
        assert_eq!(outs, ["1 2 3 ", "1 2 3 "]);
    }

    #[test]
    fn clock_functions_follow_the_frozen_clock() {
        assert_eq!(
            render(
                "{{ now_unix() }} {{ now_ms() }} {{ now_plus(seconds=90) }} {{ date_rfc3339(offset_seconds=-60) }}",
                0,
                Some(T0)
            ),
            "1704067200 1704067200000 2024-01-01T00:01:30Z 2023-12-31T23:59:00Z"
        );
    }

    #[test]
    fn trace_context_is_well_formed() {
        let tp = render("{{ traceparent(seed=4) }}", 0, None);
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [2, 32, 16, 2]
        );
        assert_eq!((parts[0], parts[3]), ("00", "01"));
        assert_eq!(parts[1], render("{{ trace_id(seed=4) }}", 0, None));
        assert_eq!(
            render(
                "{{ traceparent(trace_id=\"a\", span_id=\"b\", sampled=0) }}",
                0,
                None
            ),
            "00-a-b-00"
        );
        assert_eq!(render("{{ baggage(map=tags) }}", 0, None), "env=ci,svc=api");
    }

    #[test]
    fn collections_are_seeded_permutations_and_choices() {
        let l = "[\"a\",\"b\",\"c\",\"d\"]";
        let pick = render(&format!("{{{{ pick(list={l}, seed=1) }}}}"), 0, None);
        assert!(["a", "b", "c", "d"].contains(&pick.as_str()));
        let sh = render(
            &format!("{{{{ shuffle(list={l}, seed=1) | join(sep=\",\") }}}}"),
            0,
            None,
        );
        let mut sorted: Vec<&str> = sh.split(',').collect();
        sorted.sort_unstable();
        assert_eq!(sorted, ["a", "b", "c", "d"]);
        let sa = render(
            &format!("{{{{ sample(list={l}, k=2, seed=1) | join(sep=\",\") }}}}"),
            0,
            None,
        );
        assert_eq!(sa.split(',').count(), 2);
        assert_eq!(
            render("{{ weighted(pairs=temps, seed=9) }}", 0, None),
            "hot"
        );
        assert_eq!(
            render(
                "{{ weighted(values=[\"a\", \"b\"], weights=[0, 2], seed=9) }}",
                0,
                None
            ),
            "b"
        );
        assert_eq!(
            sh,
            render(
                &format!("{{{{ shuffle(list={l}, seed=1) | join(sep=\",\") }}}}"),
                7,
                None
            )
        );
    }

    #[test]
    fn string_transforms() {
        assert_eq!(
            render(
                "{{ slug(s=\"My Company, Inc.\") }}|{{ \"MyVariable\" | kebab }}|{{ snake(s=\"MyVariable name\") }}|{{ \"api gateway\" | camel }}|{{ \"A b\" | slugify }}|{{ \"api_gateway v2\" | pascal }}|{{ pascal(s=\"order-id\") }}|{{ \"Ab\" | upper }}{{ \"Ab\" | lower }}",
                0,
                None
            ),
            "my-company-inc|my-variable|my_variable_name|apiGateway|a-b|ApiGatewayV2|OrderId|ABab"
        );
    }

    #[test]
    fn real_clock_use_is_recorded() {
        let used = Arc::new(AtomicBool::new(false));
        let mut tera = Tera::default();
        tera.add_raw_template("t", "{{ now_ms() }}")
            .expect("compiles");
        register(&mut tera, 0, None, used.clone());
        tera.render("t", &tera::Context::new()).expect("renders");
        assert!(used.load(Ordering::Relaxed));
    }
}
