//! Secret masking and safe terminal text.
//!
//! Values that reach a test from the environment through a template (`env()`), and the
//! variables named by `mask_env` in `.clnrm/config.toml` or `--mask-env NAME`, are registered
//! here once, process-wide; every report, annotation, terminal line and saved file replaces
//! them with `***`. Under GitHub Actions each value is also registered with `::add-mask::` (on
//! stderr: stdout carries data) the moment it is known, before anything could print it.
//!
//! Text from test files and step output is untrusted: [`terminal`] strips control characters
//! and escape sequences (unless colour was asked for on a terminal) and defuses lines that
//! GitHub Actions would read as workflow commands.

use std::borrow::Cow;
use std::sync::{LazyLock, RwLock};

use crate::results::RunResults;

/// What replaces a secret.
pub const MASK: &str = "***";
/// Values shorter than this are not masked: masking `1` or `on` everywhere would make every
/// report unreadable without protecting anything.
pub const MIN_SECRET_LEN: usize = 4;

static SECRETS: LazyLock<RwLock<Vec<String>>> = LazyLock::new(|| RwLock::new(Vec::new()));

fn under_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// Register a value to mask from now on. Multi-line values are also registered line by line
/// (GitHub masks per line).
pub fn register(value: &str) {
    let mut parts: Vec<&str> = vec![value];
    if value.contains('\n') {
        parts.extend(value.lines());
    }
    for v in parts {
        let v = v.trim_end_matches('\r');
        if v.chars().count() < MIN_SECRET_LEN {
            continue;
        }
        let mut list = SECRETS.write().unwrap_or_else(|e| e.into_inner());
        if list.iter().any(|s| s == v) {
            continue;
        }
        if under_actions() && !v.contains('\n') {
            eprintln!("::add-mask::{v}");
        }
        list.push(v.to_string());
        // Longest first, so a secret containing another is replaced whole.
        list.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Register the current values of the environment variables `names` (unset ones are skipped).
pub fn register_env(names: &[String]) {
    for n in names {
        if let Ok(v) = std::env::var(n) {
            register(&v);
        }
    }
}

/// Number of values registered (for tests and diagnostics; never the values).
pub fn count() -> usize {
    SECRETS.read().map_or(0, |l| l.len())
}

/// `text` with every registered value replaced by [`MASK`].
pub fn mask(text: &str) -> Cow<'_, str> {
    let list = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    if list.is_empty() || !list.iter().any(|s| text.contains(s.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for s in list.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    Cow::Owned(out)
}

/// Bytes with every registered value masked; bytes that are not UTF-8 are masked in their
/// valid stretches only.
pub fn mask_bytes(bytes: &[u8]) -> Cow<'_, [u8]> {
    if count() == 0 {
        return Cow::Borrowed(bytes);
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => match mask(s) {
            Cow::Borrowed(_) => Cow::Borrowed(bytes),
            Cow::Owned(m) => Cow::Owned(m.into_bytes()),
        },
        Err(_) => Cow::Owned(
            mask(&String::from_utf8_lossy(bytes))
                .into_owned()
                .into_bytes(),
        ),
    }
}

/// Results with every string (names, commands, outputs, messages, keys) masked, so each
/// report serialised from them is clean, including escaped forms a byte-level pass would miss.
pub fn mask_results(results: RunResults) -> RunResults {
    if count() == 0 {
        return results;
    }
    let Ok(mut v) = serde_json::to_value(&results) else {
        return results;
    };
    mask_value(&mut v);
    serde_json::from_value(v).unwrap_or(results)
}

fn mask_value(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) => {
            if let Cow::Owned(m) = mask(s) {
                *s = m;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(mask_value),
        Value::Object(o) => {
            let keys: Vec<String> = o.keys().cloned().collect();
            for k in keys {
                if let Some(mut val) = o.remove(&k) {
                    mask_value(&mut val);
                    o.insert(mask(&k).into_owned(), val);
                }
            }
        }
        _ => {}
    }
}

/// Untrusted text made safe for a log line: control characters other than newline and tab
/// removed, and escape sequences with them, except colour (SGR, `ESC [ ... m`) when
/// `keep_colour` (colour was asked for); secrets masked after that, so a secret split by
/// escape codes is still caught (when it is, the colour goes too); under GitHub Actions, a
/// line that would start with `::` (a workflow command) or hold `##[` gets a zero-width space
/// that breaks the marker without changing what a reader sees.
pub fn terminal(text: &str, keep_colour: bool) -> Cow<'_, str> {
    let has_controls = text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t');
    let mut s: Cow<'_, str> = if has_controls {
        let plain = strip_controls(text, false);
        if keep_colour && mask(&plain) == plain {
            Cow::Owned(strip_controls(text, true))
        } else {
            Cow::Owned(plain)
        }
    } else {
        Cow::Borrowed(text)
    };
    if let Cow::Owned(m) = mask(&s) {
        s = Cow::Owned(m);
    }
    if under_actions() && (s.contains("::") || s.contains("##[")) {
        s = Cow::Owned(defuse(&s));
    }
    s
}

/// Mask what is left of a secret at a cut between `head` and `tail` (text dropped between
/// them): the end of `head` that is the start of a registered value, and the start of `tail`
/// that is its end, when at least [`MIN_SECRET_LEN`] characters long. Whole values are masked
/// by [`mask`]; this catches the pieces a cut leaves.
pub fn mask_seam(head: &mut String, tail: &mut String) {
    let list = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    for secret in list.iter() {
        let starts: Vec<usize> = secret.char_indices().map(|(i, _)| i).collect();
        // Longest piece first; a piece shorter than MIN_SECRET_LEN characters stays.
        for &end in starts.iter().skip(MIN_SECRET_LEN).rev() {
            if head.ends_with(&secret[..end]) {
                head.truncate(head.len() - end);
                head.push_str(MASK);
                break;
            }
        }
        for &start in starts.iter().skip(1) {
            let piece = &secret[start..];
            if piece.chars().count() < MIN_SECRET_LEN {
                break;
            }
            if tail.starts_with(piece) {
                tail.replace_range(..piece.len(), MASK);
                break;
            }
        }
    }
}

/// Remove ESC sequences (CSI `ESC [ ... final`, OSC `ESC ] ... BEL|ST`, and two-byte ones),
/// except colour (SGR: a CSI ending in `m`) when `keep_sgr`, and every other control character
/// except newline and tab.
fn strip_controls(s: &str, keep_sgr: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\u{1b}' {
            match it.peek() {
                Some('[') => {
                    it.next();
                    let mut seq = String::from("\u{1b}[");
                    for d in it.by_ref() {
                        seq.push(d);
                        if ('\u{40}'..='\u{7e}').contains(&d) {
                            break;
                        }
                    }
                    // Only parameters (digits and `;`) between `[` and `m`: plain colour.
                    let params = &seq[2..seq.len() - 1];
                    if keep_sgr
                        && seq.ends_with('m')
                        && params.chars().all(|p| p.is_ascii_digit() || p == ';')
                    {
                        out.push_str(&seq);
                    }
                }
                Some(']') => {
                    it.next();
                    while let Some(d) = it.next() {
                        if d == '\u{7}' {
                            break;
                        }
                        if d == '\u{1b}' && it.peek() == Some(&'\\') {
                            it.next();
                            break;
                        }
                    }
                }
                Some(_) => {
                    it.next();
                }
                None => {}
            }
        } else if c == '\r' || (c.is_control() && c != '\n' && c != '\t') {
            // Dropped: `\r` could overwrite a line on a terminal and split one for the runner.
        } else {
            out.push(c);
        }
    }
    out
}

fn defuse(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let trimmed = line.trim_start();
        let lead = &line[..line.len() - trimmed.len()];
        out.push_str(lead);
        let body = match trimmed.strip_prefix("::") {
            Some(rest) => format!(":\u{200b}:{rest}"),
            None => trimmed.to_string(),
        };
        out.push_str(&body.replace("##[", "##\u{200b}["));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_are_masked_longest_first_and_short_ones_are_not() {
        register("s3cr3t-value-for-mask-test");
        register("s3cr3t");
        register("ab");
        assert_eq!(
            mask("x s3cr3t-value-for-mask-test y s3cr3t ab"),
            "x *** y *** ab"
        );
        assert_eq!(mask_bytes(b"[s3cr3t]").as_ref(), b"[***]");
    }

    #[test]
    fn controls_and_escapes_are_stripped_and_commands_defused() {
        assert_eq!(
            strip_controls(
                "a\u{1b}[31mred\u{1b}[0m\u{1b}]0;title\u{7}b\rc\u{0}d\n\te",
                false
            ),
            "aredbcd\n\te"
        );
        // Colour asked for: SGR stays, every other sequence and control goes.
        assert_eq!(
            strip_controls(
                "a\u{1b}[1;31mred\u{1b}[0m\u{1b}[2Jx\u{1b}]0;t\u{7}\r::y",
                true
            ),
            "a\u{1b}[1;31mred\u{1b}[0mx::y"
        );
        assert_eq!(
            defuse("ok\n  ::error::INJECTED\nx ##[set-env]"),
            "ok\n  :\u{200b}:error::INJECTED\nx ##\u{200b}[set-env]"
        );
        assert_eq!(terminal("plain", false), "plain");
    }

    #[test]
    fn a_secret_split_by_escape_codes_or_a_cut_is_still_masked() {
        register("tok-split-9f3k2");
        // Colour between its characters would show it whole on a terminal.
        assert_eq!(terminal("x tok-\u{1b}[0msplit-9f3k2 y", true), "x *** y");
        assert_eq!(terminal("x tok-\u{1b}[0msplit-9f3k2 y", false), "x *** y");
        let (mut head, mut tail) = ("out: tok-sp".to_string(), "it-9f3k2 rest".to_string());
        mask_seam(&mut head, &mut tail);
        assert_eq!((head.as_str(), tail.as_str()), ("out: ***", "*** rest"));
        // Pieces shorter than MIN_SECRET_LEN are not told apart from ordinary text.
        let (mut head, mut tail) = ("ends tok".to_string(), "k2 starts".to_string());
        mask_seam(&mut head, &mut tail);
        assert_eq!((head.as_str(), tail.as_str()), ("ends tok", "k2 starts"));
    }
}
