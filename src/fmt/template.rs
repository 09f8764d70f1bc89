//! Tera tag scanning and the placeholder scheme that lets fmt touch templates safely.
//!
//! Rule (documented in docs/lint.md, "fmt and templates"): every Tera region is replaced by a
//! placeholder derived from its content, the result must parse as TOML, and it is formatted
//! like any other file; the regions are then put back byte for byte. `{{ }}` and `{# #}` may
//! sit in strings, keys, headers or comments (moving a whole key or table does not change what
//! they render to). `{% %}` statements may only sit inside one string value, balanced within
//! it (`if`/`endif` in the same string), because a statement spanning lines or keys decides
//! which lines exist and reordering would change that. Anything else is refused and the file
//! is left unchanged.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

/// Kind of a Tera region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagKind {
    /// `{{ ... }}`
    Expr,
    /// `{% ... %}` (a `{% raw %}...{% endraw %}` block is one region)
    Stmt,
    /// `{# ... #}`
    Comment,
}

/// One Tera region, as a byte range of the source including its delimiters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tag {
    pub start: usize,
    pub end: usize,
    pub kind: TagKind,
}

impl Tag {
    /// Text between the delimiters, without whitespace-control dashes.
    pub fn inner<'a>(&self, src: &'a str) -> &'a str {
        let s = &src[self.start + 2..self.end - 2];
        s.trim_start_matches('-').trim_end_matches('-').trim()
    }

    /// First word of a statement (`if`, `for`, `endif`, ...).
    pub fn keyword<'a>(&self, src: &'a str) -> &'a str {
        self.inner(src).split_whitespace().next().unwrap_or("")
    }
}

/// A scanning failure: byte offset and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanError {
    pub offset: usize,
    pub reason: String,
}

/// True when the text contains any Tera delimiter (cheap pre-check).
pub(crate) fn has_tags(src: &str) -> bool {
    src.contains("{{") || src.contains("{%") || src.contains("{#")
}

/// Finds every Tera region. String literals inside a tag are skipped so `{{ "}}" }}` is one tag.
pub(crate) fn scan_tags(src: &str) -> Result<Vec<Tag>, ScanError> {
    let bytes = src.as_bytes();
    let mut tags = Vec::new();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] != b'{' {
            i += 1;
            continue;
        }
        let kind = match bytes[i + 1] {
            b'{' => TagKind::Expr,
            b'%' => TagKind::Stmt,
            b'#' => TagKind::Comment,
            _ => {
                i += 1;
                continue;
            }
        };
        let end = find_close(bytes, i + 2, kind).ok_or_else(|| ScanError {
            offset: i,
            reason: format!("unclosed Tera tag `{}`", &src[i..i + 2]),
        })?;
        let mut tag = Tag {
            start: i,
            end,
            kind,
        };
        if kind == TagKind::Stmt && tag.keyword(src) == "raw" {
            // Everything up to `endraw` is literal text for Tera: keep it as one region.
            tag.end = find_endraw(src, end).ok_or_else(|| ScanError {
                offset: i,
                reason: "`{% raw %}` without `{% endraw %}`".into(),
            })?;
        }
        i = tag.end;
        tags.push(tag);
    }
    Ok(tags)
}

fn find_close(bytes: &[u8], mut i: usize, kind: TagKind) -> Option<usize> {
    let close = match kind {
        TagKind::Expr => b'}',
        TagKind::Stmt => b'%',
        TagKind::Comment => b'#',
    };
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if kind != TagKind::Comment && matches!(c, b'"' | b'\'' | b'`') => quote = Some(c),
            None if c == close && bytes.get(i + 1) == Some(&b'}') => return Some(i + 2),
            None => {}
        }
        i += 1;
    }
    None
}

fn find_endraw(src: &str, from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(rel) = src[at..].find("{%") {
        let start = at + rel;
        let end = find_close(src.as_bytes(), start + 2, TagKind::Stmt)?;
        let tag = Tag {
            start,
            end,
            kind: TagKind::Stmt,
        };
        if tag.keyword(src) == "endraw" {
            return Some(end);
        }
        at = end;
    }
    None
}

/// The source with every Tera region replaced by a placeholder, and the way back.
#[derive(Debug)]
pub(crate) struct Masked {
    pub text: String,
    /// placeholder -> (original region text, kind, statement keyword)
    pub regions: HashMap<String, (String, TagKind, String)>,
    /// (masked offset, original offset) at the start of each region, for error positions.
    offsets: Vec<(usize, usize, usize)>,
}

pub(crate) const PLACEHOLDER_PREFIX: &str = "__clnrmtag";

/// Replaces each region with `__clnrmtag<hash>__`. The name depends only on the region's text
/// so that formatting twice numbers nothing differently (services sorted by a templated id
/// must sort the same way the second time).
pub(crate) fn mask(src: &str, tags: &[Tag]) -> Masked {
    let mut text = String::with_capacity(src.len());
    let mut regions = HashMap::new();
    let mut offsets = Vec::with_capacity(tags.len());
    let mut last = 0;
    for tag in tags {
        text.push_str(&src[last..tag.start]);
        let region = &src[tag.start..tag.end];
        let digest = Sha256::digest(region.as_bytes());
        let name = format!("{PLACEHOLDER_PREFIX}{}__", hex::encode(&digest[..8]));
        offsets.push((text.len(), tag.start, tag.end - tag.start));
        text.push_str(&name);
        let keyword = if tag.kind == TagKind::Stmt {
            tag.keyword(src).to_string()
        } else {
            String::new()
        };
        regions.insert(name, (region.to_string(), tag.kind, keyword));
        last = tag.end;
    }
    text.push_str(&src[last..]);
    Masked {
        text,
        regions,
        offsets,
    }
}

impl Masked {
    /// Maps a byte offset in the masked text back to the original source.
    pub fn original_offset(&self, masked: usize) -> usize {
        let mut shift: isize = 0;
        for &(m_at, o_at, o_len) in &self.offsets {
            if m_at > masked {
                break;
            }
            let placeholder_len = PLACEHOLDER_PREFIX.len() + 16 + 2;
            if masked < m_at + placeholder_len {
                return o_at;
            }
            shift += o_len as isize - placeholder_len as isize;
        }
        (masked as isize + shift).max(0) as usize
    }

    /// Puts the original regions back.
    pub fn unmask(&self, formatted: &str) -> String {
        let mut out = String::with_capacity(formatted.len() + 64);
        let mut rest = formatted;
        while let Some(pos) = rest.find(PLACEHOLDER_PREFIX) {
            out.push_str(&rest[..pos]);
            let cand = &rest[pos..];
            let len = PLACEHOLDER_PREFIX.len() + 16 + 2;
            match cand.get(..len).and_then(|name| self.regions.get(name)) {
                Some((region, _, _)) => {
                    out.push_str(region);
                    rest = &cand[len..];
                }
                None => {
                    out.push_str(PLACEHOLDER_PREFIX);
                    rest = &cand[PLACEHOLDER_PREFIX.len()..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// Placeholders in `text`, in order, with their region info.
    pub fn placeholders_in<'a>(&'a self, text: &str) -> Vec<(&'a str, TagKind, &'a str)> {
        let len = PLACEHOLDER_PREFIX.len() + 16 + 2;
        let mut found = Vec::new();
        let mut at = 0;
        while let Some(pos) = text[at..].find(PLACEHOLDER_PREFIX) {
            let start = at + pos;
            if let Some((name, (_, kind, kw))) = text
                .get(start..start + len)
                .and_then(|n| self.regions.get_key_value(n))
            {
                found.push((name.as_str(), *kind, kw.as_str()));
                at = start + len;
            } else {
                at = start + PLACEHOLDER_PREFIX.len();
            }
        }
        found
    }
}

/// Statements allowed inside a string value; everything else (set, include, macro, block...)
/// has effects beyond its own text and is refused.
const STRING_LOCAL_STATEMENTS: &[&str] = &[
    "if",
    "elif",
    "else",
    "endif",
    "for",
    "endfor",
    "filter",
    "endfilter",
    "raw",
    "break",
    "continue",
];

/// Checks that the statements found in one string value are allowed and balanced.
pub(crate) fn check_string_statements(keywords: &[&str]) -> Result<(), String> {
    let mut stack: Vec<&str> = Vec::new();
    for kw in keywords {
        if !STRING_LOCAL_STATEMENTS.contains(kw) {
            return Err(format!("`{{% {kw} %}}` has effects outside its string"));
        }
        match *kw {
            "if" | "for" | "filter" => stack.push(kw),
            "endif" | "endfor" | "endfilter" => {
                let open = &kw[3..];
                if stack.pop() != Some(open) {
                    return Err(format!(
                        "`{{% {kw} %}}` does not close a block opened in the same string"
                    ));
                }
            }
            _ => {}
        }
    }
    match stack.last() {
        Some(open) => Err(format!(
            "`{{% {open} %}}` is not closed within the same string"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_all_three_kinds_and_skips_quoted_closers() {
        let src = r#"a = "{{ "}}" }}" {# c #} {% if x %}"#;
        let tags = scan_tags(src).expect("scan");
        let kinds: Vec<_> = tags.iter().map(|t| t.kind).collect();
        assert_eq!(kinds, vec![TagKind::Expr, TagKind::Comment, TagKind::Stmt]);
        assert_eq!(&src[tags[0].start..tags[0].end], r#"{{ "}}" }}"#);
        assert_eq!(tags[2].keyword(src), "if");
    }

    #[test]
    fn raw_block_is_one_region() {
        let src = "x = '{% raw %}{{ not a tag }}{% endraw %}'";
        let tags = scan_tags(src).expect("scan");
        assert_eq!(tags.len(), 1);
        assert_eq!(
            &src[tags[0].start..tags[0].end],
            "{% raw %}{{ not a tag }}{% endraw %}"
        );
    }

    #[test]
    fn unclosed_tag_is_an_error_with_offset() {
        let err = scan_tags("a = 1\nb = \"{{ x\"").expect_err("unclosed");
        assert_eq!(err.offset, 11);
    }

    #[test]
    fn mask_unmask_round_trips_and_maps_offsets() {
        let src = "a = \"{{ one\n }}\"\nb = {{ two }}\n";
        let tags = scan_tags(src).expect("scan");
        let m = mask(src, &tags);
        assert!(!m.text.contains("{{"));
        assert_eq!(m.unmask(&m.text), src);
        let b_masked = m.text.find("b =").expect("b");
        assert_eq!(m.original_offset(b_masked), src.find("b =").expect("b"));
    }

    #[test]
    fn statement_balance_rules() {
        assert!(check_string_statements(&["if", "else", "endif"]).is_ok());
        assert!(check_string_statements(&["for", "if", "endif", "endfor"]).is_ok());
        assert!(check_string_statements(&["if"]).is_err());
        assert!(check_string_statements(&["endif"]).is_err());
        assert!(check_string_statements(&["set"]).is_err());
    }
}
