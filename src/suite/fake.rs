//! Seeded fake data (`fake_*`), upstream's list: names, internet, address, phone, company,
//! text, numbers, dates, finance, files, colours and a few technical values. Every function
//! takes an optional `seed=`; the same seed gives the same value everywhere. The word lists
//! are small and fixed on purpose: changing one changes every generated value.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tera::{Error, Result, Tera, Value};

use super::generators::{check_size, size, Draw, MAX_SIZE};

type Args = HashMap<String, Value>;

/// First names, shared with `fake_name` of the plain template functions.
pub(super) const FIRST: &[&str] = &[
    "Ada",
    "Alan",
    "Barbara",
    "Dennis",
    "Edsger",
    "Frances",
    "Grace",
    "Guido",
    "Hedy",
    "John",
    "Katherine",
    "Ken",
    "Linus",
    "Margaret",
    "Niklaus",
    "Radia",
    "Rich",
    "Sophie",
    "Tim",
    "Yukihiro",
];
pub(super) const LAST: &[&str] = &[
    "Allen",
    "Backus",
    "Hamilton",
    "Hopper",
    "Johnson",
    "Kernighan",
    "Knuth",
    "Lamarr",
    "Liskov",
    "Lovelace",
    "McCarthy",
    "Perlman",
    "Pike",
    "Ritchie",
    "Stroustrup",
    "Thompson",
    "Torvalds",
    "Turing",
    "Wilson",
    "Wirth",
];
const TITLES: &[&str] = &["Mr.", "Mrs.", "Ms.", "Miss", "Dr.", "Prof."];
const SUFFIXES: &[&str] = &["Jr.", "Sr.", "II", "III", "IV", "PhD", "MD"];
const WORDS: &[&str] = &[
    "amber", "basil", "cedar", "delta", "ember", "fjord", "garnet", "harbor", "iris", "juniper",
    "kestrel", "lagoon", "maple", "nectar", "onyx", "pebble", "quartz", "raven", "sierra",
    "tundra", "umber", "violet", "willow", "xenon", "yarrow", "zephyr",
];
const TLDS: &[&str] = &["example", "test", "invalid"];
const STREETS: &[&str] = &[
    "Main Street",
    "Oak Avenue",
    "Pine Road",
    "Maple Lane",
    "Cedar Court",
    "Elm Street",
    "Harbor Way",
    "Mill Road",
    "Park Place",
    "River Drive",
];
const CITIES: &[&str] = &[
    "Springfield",
    "Riverton",
    "Fairview",
    "Greenville",
    "Madison",
    "Georgetown",
    "Salem",
    "Franklin",
    "Clinton",
    "Arlington",
];
const STATES: &[&str] = &[
    "California",
    "Colorado",
    "Georgia",
    "Illinois",
    "Maine",
    "Nevada",
    "Oregon",
    "Texas",
    "Utah",
    "Vermont",
];
const COUNTRIES: &[&str] = &[
    "Argentina",
    "Australia",
    "Canada",
    "Denmark",
    "Finland",
    "France",
    "Germany",
    "Japan",
    "Kenya",
    "Norway",
    "Portugal",
    "Spain",
];
const COMPANY_SUFFIXES: &[&str] = &["Inc.", "LLC", "Ltd.", "GmbH", "Group", "Corp."];
const INDUSTRIES: &[&str] = &[
    "Aerospace",
    "Agriculture",
    "Banking",
    "Biotechnology",
    "Education",
    "Energy",
    "Healthcare",
    "Insurance",
    "Logistics",
    "Media",
    "Retail",
    "Telecommunications",
];
const PROFESSIONS: &[&str] = &[
    "accountant",
    "architect",
    "carpenter",
    "chemist",
    "designer",
    "engineer",
    "geologist",
    "librarian",
    "nurse",
    "pilot",
    "teacher",
    "translator",
];
const CURRENCIES: &[(&str, &str, &str)] = &[
    ("USD", "US Dollar", "$"),
    ("EUR", "Euro", "€"),
    ("GBP", "Pound Sterling", "£"),
    ("JPY", "Yen", "¥"),
    ("CHF", "Swiss Franc", "Fr"),
    ("INR", "Indian Rupee", "₹"),
];
const EXTENSIONS: &[(&str, &str)] = &[
    ("txt", "text/plain"),
    ("json", "application/json"),
    ("csv", "text/csv"),
    ("png", "image/png"),
    ("pdf", "application/pdf"),
    ("html", "text/html"),
    ("toml", "application/toml"),
    ("xml", "application/xml"),
];
const COLORS: &[&str] = &[
    "red", "orange", "yellow", "green", "blue", "indigo", "violet", "black", "white", "gray",
    "teal", "maroon",
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "curl/8.5.0",
];
const BUZZWORDS: &[&str] = &[
    "synergy",
    "paradigm",
    "bandwidth",
    "scalable",
    "holistic",
    "leverage",
    "pipeline",
    "resilient",
];
const TIMEZONES: &[&str] = &[
    "UTC",
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Australia/Sydney",
];
const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

fn int(a: &Args, func: &str, name: &str, default: i64) -> Result<i64> {
    match a.get(name) {
        None => Ok(default),
        Some(v) => v
            .as_i64()
            .ok_or_else(|| Error::msg(format!("{func}: `{name}` must be an integer"))),
    }
}

fn bounds(a: &Args, func: &str, lo: i64, hi: i64) -> Result<(i64, i64)> {
    let (min, max) = (int(a, func, "min", lo)?, int(a, func, "max", hi)?);
    if min > max {
        return Err(Error::msg(format!(
            "{func}: `min` ({min}) is greater than `max` ({max})"
        )));
    }
    Ok((min, max))
}

/// Most words `fake_words` and `fake_sentence` produce.
const MAX_WORDS: i64 = 1000;
/// Most sentences of one `fake_paragraph`.
const MAX_SENTENCES: i64 = 100;

/// `bounds` whose `max` is a size: at most `cap` (min is checked against max already).
fn size_bounds(a: &Args, func: &str, lo: i64, hi: i64, cap: i64) -> Result<(i64, i64)> {
    let (min, max) = bounds(a, func, lo, hi)?;
    check_size(func, "max", max, cap)?;
    Ok((min, max))
}

fn words(d: &mut Draw, n: usize) -> Vec<&'static str> {
    (0..n).map(|_| d.pick(WORDS)).collect()
}

fn sentence(d: &mut Draw, min: i64, max: i64) -> String {
    let n = d.range(min.max(1), max.max(1)) as usize;
    let mut s = words(d, n).join(" ");
    if let Some(f) = s.get(..1) {
        s = f.to_uppercase() + &s[1..];
    }
    s + "."
}

fn luhn_digit(digits: &[u8]) -> u8 {
    // Check digit for `digits` (the number without it): double every second from the right.
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(*d);
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

type Gen = fn(&mut Draw, &Args, DateTime<Utc>) -> Result<Value>;

fn s(v: impl Into<String>) -> Result<Value> {
    Ok(Value::String(v.into()))
}

/// `(name, generator)`: each registered as `name(seed=...)` with its own arguments.
const GENERATORS: &[(&str, Gen)] = &[
    ("fake_first_name", |d, _, _| s(d.pick(FIRST))),
    ("fake_last_name", |d, _, _| s(d.pick(LAST))),
    ("fake_title", |d, _, _| s(d.pick(TITLES))),
    ("fake_suffix", |d, _, _| s(d.pick(SUFFIXES))),
    ("fake_username", |d, _, _| {
        s(format!(
            "{}_{}{}",
            d.pick(FIRST).to_lowercase(),
            d.pick(WORDS),
            d.below(100)
        ))
    }),
    ("fake_password", |d, a, _| {
        let (min, max) = size_bounds(a, "fake_password", 8, 20, MAX_SIZE)?;
        let n = d.range(min.max(1), max.max(1)) as usize;
        s((0..n)
            .map(|_| ALNUM[d.below(ALNUM.len() as u64) as usize] as char)
            .collect::<String>())
    }),
    ("fake_domain", |d, _, _| {
        s(format!("{}.{}", d.pick(WORDS), d.pick(TLDS)))
    }),
    ("fake_domain_suffix", |d, _, _| s(d.pick(TLDS))),
    ("fake_url", |d, _, _| {
        s(format!(
            "https://{}.{}/{}",
            d.pick(WORDS),
            d.pick(TLDS),
            d.pick(WORDS)
        ))
    }),
    ("fake_ipv4", |d, _, _| {
        // 10.0.0.0/8: private, never someone's real host.
        s(format!(
            "10.{}.{}.{}",
            d.below(256),
            d.below(256),
            1 + d.below(254)
        ))
    }),
    ("fake_ipv6", |d, _, _| {
        // fd00::/8: unique local addresses.
        let groups: Vec<String> = (0..7).map(|_| format!("{:x}", d.below(0x10000))).collect();
        s(format!("fd{:02x}:{}", d.below(256), groups.join(":")))
    }),
    ("fake_user_agent", |d, _, _| s(d.pick(AGENTS))),
    ("fake_mac_address", |d, _, _| {
        let mut b = d.bytes(6);
        b[0] = (b[0] | 0x02) & 0xfe; // locally administered, unicast
        s(b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(":"))
    }),
    ("fake_street", |d, _, _| {
        s(format!("{} {}", 1 + d.below(9999), d.pick(STREETS)))
    }),
    ("fake_street_name", |d, _, _| s(d.pick(STREETS))),
    ("fake_timezone", |d, _, _| s(d.pick(TIMEZONES))),
    ("fake_city", |d, _, _| s(d.pick(CITIES))),
    ("fake_state", |d, _, _| s(d.pick(STATES))),
    ("fake_zip", |d, _, _| s(format!("{:05}", d.below(100_000)))),
    ("fake_country", |d, _, _| s(d.pick(COUNTRIES))),
    ("fake_latitude", |d, _, _| {
        Ok(Value::from(((d.unit() * 180.0 - 90.0) * 1e6).round() / 1e6))
    }),
    ("fake_longitude", |d, _, _| {
        Ok(Value::from(
            ((d.unit() * 360.0 - 180.0) * 1e6).round() / 1e6,
        ))
    }),
    ("fake_phone", |d, _, _| {
        // 555-01xx numbers are reserved for fiction.
        s(format!(
            "+1-{:03}-555-01{:02}",
            200 + d.below(800),
            d.below(100)
        ))
    }),
    ("fake_cell_phone", |d, _, _| {
        s(format!(
            "+1-{:03}-555-01{:02}",
            200 + d.below(800),
            d.below(100)
        ))
    }),
    ("fake_company", |d, _, _| {
        s(format!("{} {}", d.pick(LAST), d.pick(COMPANY_SUFFIXES)))
    }),
    ("fake_company_suffix", |d, _, _| s(d.pick(COMPANY_SUFFIXES))),
    ("fake_industry", |d, _, _| s(d.pick(INDUSTRIES))),
    ("fake_buzzword", |d, _, _| s(d.pick(BUZZWORDS))),
    ("fake_profession", |d, _, _| s(d.pick(PROFESSIONS))),
    ("fake_words", |d, a, _| {
        let n = size(a, "fake_words", "count", 3, MAX_WORDS)?;
        s(words(d, n).join(" "))
    }),
    ("fake_sentence", |d, a, _| {
        let (min, max) = size_bounds(a, "fake_sentence", 4, 10, MAX_WORDS)?;
        s(sentence(d, min, max))
    }),
    ("fake_paragraph", |d, a, _| {
        let (min, max) = size_bounds(a, "fake_paragraph", 3, 7, MAX_SENTENCES)?;
        let n = d.range(min.max(1), max.max(1));
        s((0..n)
            .map(|_| sentence(d, 4, 10))
            .collect::<Vec<_>>()
            .join(" "))
    }),
    ("fake_int_range", |d, a, _| {
        let (min, max) = bounds(a, "fake_int_range", 0, 100)?;
        Ok(Value::from(d.range(min, max)))
    }),
    ("fake_float", |d, a, _| {
        let (min, max) = bounds(a, "fake_float", 0, 1)?;
        // In f64: `max - min` overflows i64 for the widest bounds.
        let x = min as f64 + d.unit() * (max as f64 - min as f64);
        Ok(Value::from((x * 1e6).round() / 1e6))
    }),
    ("fake_bool", |d, a, _| {
        let ratio = int(a, "fake_bool", "ratio", 50)?.clamp(0, 100);
        Ok(Value::Bool((d.below(100) as i64) < ratio))
    }),
    ("fake_date", |d, _, now| {
        s(past(d, now).format("%Y-%m-%d").to_string())
    }),
    ("fake_time", |d, _, _| {
        s(format!(
            "{:02}:{:02}:{:02}",
            d.below(24),
            d.below(60),
            d.below(60)
        ))
    }),
    ("fake_datetime", |d, _, now| {
        s(past(d, now).to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    }),
    ("fake_timestamp", |d, _, now| {
        Ok(Value::from(past(d, now).timestamp()))
    }),
    ("fake_credit_card", |d, _, _| {
        // A 16-digit number with the test prefix 4000 and a valid Luhn check digit.
        let mut digits: Vec<u8> = vec![4, 0, 0, 0];
        digits.extend((0..11).map(|_| d.below(10) as u8));
        digits.push(luhn_digit(&digits));
        s(digits
            .iter()
            .map(|x| char::from(b'0' + x))
            .collect::<String>())
    }),
    ("fake_currency_code", |d, _, _| {
        s(CURRENCIES[d.below(CURRENCIES.len() as u64) as usize].0)
    }),
    ("fake_currency_name", |d, _, _| {
        s(CURRENCIES[d.below(CURRENCIES.len() as u64) as usize].1)
    }),
    ("fake_currency_symbol", |d, _, _| {
        s(CURRENCIES[d.below(CURRENCIES.len() as u64) as usize].2)
    }),
    ("fake_filename", |d, _, _| {
        let ext = EXTENSIONS[d.below(EXTENSIONS.len() as u64) as usize].0;
        s(format!("{}.{ext}", d.pick(WORDS)))
    }),
    ("fake_extension", |d, _, _| {
        s(EXTENSIONS[d.below(EXTENSIONS.len() as u64) as usize].0)
    }),
    ("fake_mime_type", |d, _, _| {
        s(EXTENSIONS[d.below(EXTENSIONS.len() as u64) as usize].1)
    }),
    ("fake_file_path", |d, _, _| {
        let ext = EXTENSIONS[d.below(EXTENSIONS.len() as u64) as usize].0;
        s(format!("/{}/{}.{ext}", d.pick(WORDS), d.pick(WORDS)))
    }),
    ("fake_color", |d, _, _| s(d.pick(COLORS))),
    ("fake_hex_color", |d, _, _| {
        s(format!("#{}", hex::encode(d.bytes(3))))
    }),
    ("fake_rgb_color", |d, _, _| {
        let b = d.bytes(3);
        s(format!("rgb({}, {}, {})", b[0], b[1], b[2]))
    }),
    ("fake_string", |d, a, _| {
        let n = size(a, "fake_string", "len", 10, MAX_SIZE)?;
        s((0..n)
            .map(|_| ALNUM[d.below(ALNUM.len() as u64) as usize] as char)
            .collect::<String>())
    }),
    ("fake_port", |d, _, _| {
        Ok(Value::from(1024 + d.below(65536 - 1024)))
    }),
    ("fake_semver", |d, _, _| {
        s(format!("{}.{}.{}", d.below(10), d.below(20), d.below(50)))
    }),
];

/// An instant in the year before `now` (the frozen clock when set).
fn past(d: &mut Draw, now: DateTime<Utc>) -> DateTime<Utc> {
    now - chrono::Duration::seconds(d.below(365 * 24 * 3600) as i64)
}

/// Number of `fake_*` functions this module adds (the other five live in `functions`).
#[cfg(test)]
pub(crate) const COUNT: usize = GENERATORS.len();

/// Upstream's `fake(kind=...)` kinds -> the function giving that value here.
const KINDS: &[(&str, &str)] = &[
    ("name.full", "fake_name"),
    ("name.first", "fake_first_name"),
    ("name.last", "fake_last_name"),
    ("name.title", "fake_title"),
    ("internet.email.safe", "fake_email"),
    ("internet.email.free", "fake_email"),
    ("internet.username", "fake_username"),
    ("internet.domain.suffix", "fake_domain_suffix"),
    ("internet.ip.any", "fake_ipv4"),
    ("internet.ip.v4", "fake_ipv4"),
    ("internet.ip.v6", "fake_ipv6"),
    ("internet.password", "fake_password"),
    ("address.city", "fake_city"),
    ("address.country", "fake_country"),
    ("address.street.name", "fake_street_name"),
    ("address.street.address", "fake_street"),
    ("address.zip", "fake_zip"),
    ("address.tz", "fake_timezone"),
    ("company.name", "fake_company"),
    ("company.buzzword", "fake_buzzword"),
    ("company.industry", "fake_industry"),
    ("company.profession", "fake_profession"),
    ("lorem.word", "fake_word"),
    ("lorem.sentence", "fake_sentence"),
    ("lorem.paragraph", "fake_paragraph"),
    ("phone.number", "fake_phone"),
    ("uuid.v4", "fake_uuid"),
];

/// At most this many values from one `fake(kind=..., n=...)`.
const MAX_N: i64 = 10_000;

/// The `fake_*` function a `kind` names: an upstream kind (`"address.city"`), a function name
/// (`"fake_city"`) or one without its prefix (`"city"`).
fn resolve(kind: &str) -> Option<&'static str> {
    if let Some((_, f)) = KINDS.iter().find(|(k, _)| *k == kind) {
        return Some(*f);
    }
    let full = if kind.starts_with("fake_") {
        kind.to_string()
    } else {
        format!("fake_{kind}")
    };
    let basic = super::functions::BASIC.iter().copied();
    basic
        .chain(GENERATORS.iter().map(|g| g.0))
        .find(|n| *n == full)
}

/// Every kind `fake()` accepts: upstream's, then each function's short name, sorted.
fn kinds() -> Vec<String> {
    let mut short: Vec<String> = super::functions::BASIC
        .iter()
        .copied()
        .chain(GENERATORS.iter().map(|g| g.0))
        .map(|n| n.trim_start_matches("fake_").to_string())
        .collect();
    short.sort();
    KINDS.iter().map(|k| k.0.to_string()).chain(short).collect()
}

/// Calls the `fake_*` function `name` (either family) as a template would.
fn call(
    name: &str,
    a: &Args,
    seed: u64,
    frozen: Option<DateTime<Utc>>,
    used_real: &AtomicBool,
) -> Result<Value> {
    if let Some(v) = super::functions::basic(name, a, seed) {
        return v;
    }
    let Some((name, gen)) = GENERATORS.iter().find(|g| g.0 == name) else {
        return Err(Error::msg(format!("no fake data function `{name}`")));
    };
    let dated = matches!(*name, "fake_date" | "fake_datetime" | "fake_timestamp");
    let now = match frozen {
        Some(t) => t,
        None if dated => {
            used_real.store(true, std::sync::atomic::Ordering::Relaxed);
            Utc::now()
        }
        None => DateTime::<Utc>::UNIX_EPOCH,
    };
    gen(&mut Draw::new(name, a, seed), a, now)
}

/// `fake(kind="address.city", seed=1)`: the value of that `fake_*` function for the same
/// arguments; with `n=3`, an array of 3 values (the first is the single value, the others
/// use seeds derived from it).
fn fake(a: &Args, seed: u64, frozen: Option<DateTime<Utc>>, used: &AtomicBool) -> Result<Value> {
    let kind =
        match a.get("kind") {
            Some(Value::String(k)) => k.as_str(),
            Some(_) => return Err(Error::msg("fake: `kind` must be a string")),
            None => return Err(Error::msg(
                "fake() needs the keyword argument `kind=` (e.g. `fake(kind=\"address.city\")`)",
            )),
        };
    let Some(func) = resolve(kind) else {
        return Err(Error::msg(format!(
            "fake: unknown kind `{kind}`; `fake_kinds()` lists them (e.g. `name.full`, `city`)"
        )));
    };
    if a.get("n").is_none() {
        return call(func, a, seed, frozen, used);
    }
    let n = int(a, "fake", "n", 1)?;
    if !(1..=MAX_N).contains(&n) {
        return Err(Error::msg(format!(
            "fake: `n` must be from 1 to {MAX_N}, found {n}"
        )));
    }
    let base = match a.get("seed") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => seed.to_string(),
    };
    let mut args = a.clone();
    (0..n)
        .map(|i| {
            // n values of a long kind add up: stop with the render deadline.
            super::render_guard::check_deadline()?;
            if i > 0 {
                args.insert("seed".into(), Value::String(format!("{base}#{i}")));
            }
            call(func, &args, seed, frozen, used)
        })
        .collect::<Result<Vec<Value>>>()
        .map(Value::Array)
}

pub(crate) fn register(
    tera: &mut Tera,
    seed: u64,
    frozen: Option<DateTime<Utc>>,
    used_real: Arc<AtomicBool>,
) {
    for (name, _) in GENERATORS {
        let used = used_real.clone();
        tera.register_function(name, move |a: &Args| call(name, a, seed, frozen, &used));
    }
    let used = used_real.clone();
    tera.register_function("fake", move |a: &Args| fake(a, seed, frozen, &used));
    tera.register_function("fake_kinds", |_: &Args| {
        Ok(Value::Array(
            kinds().into_iter().map(Value::String).collect(),
        ))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str, seed: u64) -> String {
        let mut tera = Tera::default();
        tera.add_raw_template("t", src).expect("template compiles");
        register(
            &mut tera,
            seed,
            Some(DateTime::UNIX_EPOCH + chrono::Duration::days(20_000)),
            Arc::default(),
        );
        tera.render("t", &tera::Context::new()).expect("renders")
    }

    #[test]
    fn every_generator_renders_the_same_for_a_seed_and_differs_across_seeds() {
        let mut differs = 0;
        for (name, _) in GENERATORS {
            let a = render(&format!("{{{{ {name}(seed=1) }}}}"), 0);
            assert!(!a.is_empty(), "{name}");
            assert_eq!(a, render(&format!("{{{{ {name}(seed=1) }}}}"), 9), "{name}");
            assert_eq!(
                a,
                render(&format!("{{{{ {name}() }}}}"), 1),
                "{name}: default seed"
            );
            let others: Vec<String> = (2..8)
                .map(|s| render(&format!("{{{{ {name}(seed={s}) }}}}"), 0))
                .collect();
            differs += usize::from(others.iter().any(|o| *o != a));
        }
        // `fake_bool` may legitimately repeat; everything else varies with the seed.
        assert!(differs >= GENERATORS.len() - 1, "{differs}");
        const { assert!(COUNT + 5 >= 50, "upstream has about 50 fake_* functions") };
    }

    /// Renders with the full library (the five basic functions included).
    fn render_all(src: &str, seed: u64) -> String {
        let mut tera = Tera::default();
        tera.add_raw_template("t", src).expect("template compiles");
        super::super::functions::register(
            &mut tera,
            super::super::functions::FnState {
                freeze_clock: Some("2024-01-01T00:00:00Z".into()),
                seed,
                used_real_clock: Arc::default(),
            },
        );
        tera.render("t", &tera::Context::new()).expect("renders")
    }

    #[test]
    fn fake_dispatches_to_the_family_for_every_kind() {
        for kind in kinds() {
            let func = resolve(&kind).expect("listed kinds resolve");
            let via_kind = render_all(&format!("{{{{ fake(kind=\"{kind}\", seed=3) }}}}"), 0);
            let direct = render_all(&format!("{{{{ {func}(seed=3) }}}}"), 0);
            assert_eq!(via_kind, direct, "{kind} -> {func}");
            assert!(!via_kind.is_empty(), "{kind}");
        }
        // Three spellings of one kind, and the default seed.
        assert_eq!(
            render_all(
                "{{ fake(kind=\"address.city\") }}|{{ fake(kind=\"city\") }}|{{ fake(kind=\"fake_city\") }}",
                5
            ),
            {
                let c = render_all("{{ fake_city(seed=5) }}", 0);
                format!("{c}|{c}|{c}")
            }
        );
        assert_eq!(
            render_all("{{ fake(kind=\"name.full\", seed=2) }}", 0),
            render_all("{{ fake_name(seed=2) }}", 0)
        );
        // Arguments reach the function.
        assert_eq!(
            render_all("{{ fake(kind=\"int_range\", min=7, max=7) }}", 0),
            "7"
        );
        assert_eq!(
            render_all("{{ fake_uuid_seeded(seed=4) }}", 0),
            render_all("{{ fake_uuid(seed=4) }}", 0)
        );
    }

    #[test]
    fn fake_with_n_gives_distinct_seeded_values() {
        let list = render_all(
            "{{ fake(kind=\"uuid.v4\", n=3, seed=1) | join(sep=\",\") }}",
            0,
        );
        let items: Vec<&str> = list.split(',').collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0], render_all("{{ fake_uuid(seed=1) }}", 0));
        assert!(items[0] != items[1] && items[1] != items[2], "{list}");
        assert_eq!(
            list,
            render_all(
                "{{ fake(kind=\"uuid.v4\", n=3, seed=1) | join(sep=\",\") }}",
                9
            )
        );
    }

    /// The example of docs/format.md renders to valid steps.
    #[test]
    fn documented_example_renders() {
        super::super::generators::reset_seq();
        let out = render_all(
            r#"{% for email in fake(kind="internet.email.safe", n=2, seed=7) %}
[[scenario.steps]]
name = "user {{ seq(name="user", start=1) }}"
sh = "echo '{{ email }} {{ uuid_v5(ns="url", name=email) }}'"
stdout_regex = "@example.com [0-9a-f-]{36}"
{% endfor %}"#,
            0,
        );
        let doc: toml::Table = toml::from_str(&out).expect("valid TOML");
        let steps = doc["scenario"]["steps"].as_array().expect("steps");
        let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["user 1", "user 2"]);
        let first = steps[0]["sh"].as_str().unwrap();
        assert!(
            first.starts_with(&format!(
                "echo '{}",
                render_all("{{ fake_email(seed=7) }}", 0)
            )),
            "{first}"
        );
    }

    #[test]
    fn fake_reports_bad_kinds_and_counts() {
        for (src, want) in [
            ("{{ fake(kind=\"nope\") }}", "unknown kind `nope`"),
            ("{{ fake() }}", "needs the keyword argument `kind=`"),
            (
                "{{ fake(kind=\"city\", n=0) }}",
                "`n` must be from 1 to 10000",
            ),
            ("{{ fake(kind=1) }}", "`kind` must be a string"),
        ] {
            let mut tera = Tera::default();
            tera.add_raw_template("t", src).expect("template compiles");
            register(&mut tera, 0, None, Arc::default());
            let e = tera.render("t", &tera::Context::new()).expect_err(src);
            let chain = format!("{e:?}");
            assert!(chain.contains(want), "{src}: {chain}");
        }
        let kinds = render_all("{{ fake_kinds() | join(sep=\",\") }}", 0);
        assert!(kinds.starts_with("name.full,name.first,"), "{kinds}");
        assert!(
            kinds.contains(",city,") && kinds.contains(",uuid,"),
            "{kinds}"
        );
    }

    #[test]
    fn size_arguments_above_their_cap_are_errors() {
        let huge = 9_000_000_000_000_000_000i64;
        for (src, want) in [
            (
                format!("{{{{ fake_paragraph(min={huge}, max={huge}) }}}}"),
                format!("fake_paragraph: `max` must be from 0 to 100, found {huge}"),
            ),
            (
                format!("{{{{ fake_sentence(min=1, max={huge}) }}}}"),
                format!("fake_sentence: `max` must be from 0 to 1000, found {huge}"),
            ),
            (
                format!("{{{{ fake_password(min=1, max={huge}) }}}}"),
                format!("fake_password: `max` must be from 0 to 4096, found {huge}"),
            ),
            (
                "{{ fake_words(count=1001) }}".to_string(),
                "fake_words: `count` must be from 0 to 1000, found 1001".to_string(),
            ),
            (
                "{{ fake_words(count=-1) }}".to_string(),
                "fake_words: `count` must be from 0 to 1000, found -1".to_string(),
            ),
            (
                "{{ fake_string(len=4097) }}".to_string(),
                "fake_string: `len` must be from 0 to 4096, found 4097".to_string(),
            ),
            (
                format!("{{{{ fake(kind=\"lorem.paragraph\", n=2, max={huge}) }}}}"),
                format!("fake_paragraph: `max` must be from 0 to 100, found {huge}"),
            ),
        ] {
            let mut tera = Tera::default();
            tera.add_raw_template("t", &src).expect("template compiles");
            register(&mut tera, 0, None, Arc::default());
            let e = tera.render("t", &tera::Context::new()).expect_err(&src);
            let chain = format!("{e:?}");
            assert!(chain.contains(&want), "{src}: {chain}");
        }
        // The caps themselves are accepted.
        let p = render("{{ fake_paragraph(min=100, max=100, seed=1) }}", 0);
        assert_eq!(p.matches('.').count(), 100, "{p}");
        assert_eq!(
            render("{{ fake_password(min=4096, max=4096) }}", 0).len(),
            4096
        );
        let w = render("{{ fake_sentence(min=1000, max=1000) }}", 0);
        assert_eq!(w.split(' ').count(), 1000);
        let f = render(
            "{{ fake_float(min=-9223372036854775808, max=9223372036854775807, seed=2) }}",
            0,
        );
        assert!(f.parse::<f64>().is_ok(), "{f}");
    }

    #[test]
    fn shapes() {
        let ip = render("{{ fake_ipv4(seed=3) }}", 0);
        assert!(ip.starts_with("10.") && ip.split('.').count() == 4, "{ip}");
        let card = render("{{ fake_credit_card(seed=3) }}", 0);
        let digits: Vec<u8> = card.bytes().map(|b| b - b'0').collect();
        assert_eq!(digits.len(), 16);
        assert_eq!(luhn_digit(&digits[..15]), digits[15]);
        assert_eq!(luhn_digit(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1]), 3);
        let n: usize = render("{{ fake_words(count=5, seed=1) }}", 0)
            .split(' ')
            .count();
        assert_eq!(n, 5);
        assert_eq!(render("{{ fake_string(len=7, seed=1) }}", 0).len(), 7);
        let p: i64 = render("{{ fake_int_range(min=3, max=4, seed=1) }}", 0)
            .parse()
            .expect("integer");
        assert!((3..=4).contains(&p));
        assert_eq!(render("{{ fake_bool(ratio=100, seed=1) }}", 0), "true");
        assert_eq!(render("{{ fake_bool(ratio=0, seed=1) }}", 0), "false");
        let date = render("{{ fake_date(seed=1) }}", 0);
        assert!(
            date.starts_with("2024-") || date.starts_with("2023-"),
            "{date}"
        );
        assert!(render("{{ fake_hex_color(seed=1) }}", 0).starts_with('#'));
        assert_eq!(render("{{ fake_semver(seed=1) }}", 0).split('.').count(), 3);
    }
}
