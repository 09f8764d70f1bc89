//! Escaping and sanitising of text that comes from tests, for each output format.
//!
//! Test output is hostile by default: it may hold ANSI colour codes, NUL bytes, `]]>`,
//! `</details>`, pipes, backtick runs, `@team` mentions and megabytes of text. Every
//! reporter passes such text through one of these functions before emitting it.

use std::borrow::Cow;

use super::units::bytes_human;

/// Zero-width joiner: placed after `@` / `#` so GitHub does not see a mention or issue ref.
const ZWJ: char = '\u{200D}';

/// Strip ANSI escape sequences, normalise line ends to `\n` and replace control characters
/// (which XML 1.0 forbids and terminals would interpret) with U+FFFD.
pub fn clean_text(s: &str) -> Cow<'_, str> {
    let needs_work = s
        .chars()
        .any(|c| (c.is_control() && c != '\n' && c != '\t') || c == '\u{FFFE}' || c == '\u{FFFF}');
    if !needs_work {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => skip_escape_sequence(&mut chars),
            '\r' => {
                // CRLF becomes LF; a lone CR (progress bars) starts a new line too.
                if chars.peek() != Some(&'\n') {
                    out.push('\n');
                }
            }
            '\n' | '\t' => out.push(c),
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Consume the rest of an escape sequence whose ESC was just read: CSI (`ESC [ ... final`),
/// OSC (`ESC ] ... BEL` or `ESC ] ... ESC \`) or a two-character escape.
fn skip_escape_sequence(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    match chars.next() {
        Some('[') => {
            for c in chars.by_ref() {
                if ('\u{40}'..='\u{7e}').contains(&c) {
                    break;
                }
            }
        }
        Some(']') => {
            while let Some(c) = chars.next() {
                if c == '\u{7}' {
                    break;
                }
                if c == '\u{1b}' {
                    chars.next();
                    break;
                }
            }
        }
        _ => {}
    }
}

/// Keep at most about `limit` bytes: a quarter from the head and the rest from the tail
/// (failures are usually reported last), with a note saying how much was cut.
pub fn clip(s: &str, limit: usize) -> Cow<'_, str> {
    if s.len() <= limit {
        return Cow::Borrowed(s);
    }
    let mut head_end = limit / 4;
    while !s.is_char_boundary(head_end) {
        head_end -= 1;
    }
    let mut tail_start = s.len() - (limit - limit / 4);
    while !s.is_char_boundary(tail_start) {
        tail_start += 1;
    }
    let cut = tail_start - head_end;
    Cow::Owned(format!(
        "{}\n[... truncated: {} cut ...]\n{}",
        &s[..head_end],
        bytes_human(cut),
        &s[tail_start..]
    ))
}

/// Whether GitHub would turn `c` followed by `next` into a link: `@name` mentions a user
/// or team, `#123` references an issue (`#word` is plain text).
fn links_after(c: char, next: char) -> bool {
    match c {
        '@' => next.is_alphanumeric(),
        _ => next.is_ascii_digit(),
    }
}

/// One line of inline markdown (a table cell, a list item): markdown punctuation is
/// backslash-escaped, HTML is entity-escaped, mentions and `#123` refs are broken with a
/// zero-width joiner, and line breaks become spaces so the text cannot leave its cell.
pub fn md_inline(s: &str) -> String {
    let s = clean_text(s);
    let mut out = String::with_capacity(s.len() + 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '~' | '|' | '!' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\t' => out.push(' '),
            '@' | '#' => {
                out.push(c);
                if chars.peek().is_some_and(|n| links_after(c, *n)) {
                    out.push(ZWJ);
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Text inside raw HTML (`<summary>`): entity-escaped, with mentions and refs broken,
/// since GitHub links mentions in HTML text as well.
pub fn md_html(s: &str) -> String {
    let s = clean_text(s);
    let mut out = String::with_capacity(s.len() + 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\n' | '\t' => out.push(' '),
            '@' | '#' => {
                out.push(c);
                if chars.peek().is_some_and(|n| links_after(c, *n)) {
                    out.push(ZWJ);
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// A fenced code block holding `body` verbatim: the fence is one backtick longer than the
/// longest backtick run inside, so no line of the body can close it.
pub fn md_fenced(body: &str) -> String {
    let body = clean_text(body);
    let longest = longest_backtick_run(&body);
    let fence = "`".repeat((longest + 1).max(3));
    let newline = if body.ends_with('\n') { "" } else { "\n" };
    format!("{fence}text\n{body}{newline}{fence}\n")
}

/// An inline code span holding `s` verbatim on one line (not for table cells: `|` would
/// still split the cell). The delimiter outgrows any backtick run inside.
pub fn md_code(s: &str) -> String {
    let s = clean_text(s).replace(['\n', '\t'], " ");
    let longest = longest_backtick_run(&s);
    let ticks = "`".repeat(longest + 1);
    // A span starting or ending with a backtick needs a space so the delimiters stay apart.
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{s}{pad}{ticks}")
}

fn longest_backtick_run(s: &str) -> usize {
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

/// Data (message) part of a GitHub workflow command.
pub fn gh_data(s: &str) -> String {
    // `##[` anywhere in a line is the runner's older command syntax: break it with a
    // zero-width space (invisible in the annotation).
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
        .replace("##[", "##\u{200b}[")
}

/// Property value (`file=`, `title=`) of a GitHub workflow command.
pub fn gh_property(s: &str) -> String {
    gh_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_text_strips_ansi_and_controls() {
        assert_eq!(
            clean_text("\u{1b}[31mred\u{1b}[0m a\u{0}b\r\nc\rd\u{1b}]0;title\u{7}e"),
            "red a\u{FFFD}b\nc\nde"
        );
        assert!(matches!(clean_text("plain\ttext\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn clip_keeps_head_and_tail_on_char_boundaries() {
        let s = "é".repeat(100); // 200 bytes
        let clipped = clip(&s, 41);
        assert!(clipped.starts_with("ééééé\n[... truncated: 160 B cut ...]\n"));
        assert!(clipped.ends_with(&"é".repeat(15)));
        assert_eq!(clip("short", 10), "short");
    }

    #[test]
    fn inline_markdown_is_inert() {
        assert_eq!(
            md_inline("a|b `c` <script>&</details> @org/team #12 *x*\nnext"),
            "a\\|b \\`c\\` &lt;script&gt;&amp;&lt;/details&gt; @\u{200D}org/team #\u{200D}12 \\*x\\* next"
        );
        assert_eq!(md_inline("mail a@ b# c#d"), "mail a@ b# c#d");
    }

    #[test]
    fn html_text_is_inert() {
        assert_eq!(
            md_html("<b>\"x\"</b> @me"),
            "&lt;b&gt;&quot;x&quot;&lt;/b&gt; @\u{200D}me"
        );
    }

    #[test]
    fn fence_outgrows_backtick_runs() {
        assert_eq!(md_fenced("a"), "```text\na\n```\n");
        assert_eq!(md_fenced("````\nx\n"), "`````text\n````\nx\n`````\n");
    }

    #[test]
    fn code_span_outgrows_backticks() {
        assert_eq!(md_code("a"), "`a`");
        assert_eq!(md_code("echo `x` ``y``\nz"), "```echo `x` ``y`` z```");
        assert_eq!(md_code("`start"), "`` `start ``");
    }

    #[test]
    fn github_escapes() {
        assert_eq!(gh_data("50%\r\ndone: a,b"), "50%25%0D%0Adone: a,b");
        assert_eq!(gh_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
    }
}
