//! Text from a store, made safe to print on a terminal.
//!
//! Anything read from a chain was chosen by someone: an agent's action, a
//! requester id, a reason. Printed raw, a control sequence could rewrite what
//! a person sees (move the cursor, clear a line, recolour), and a
//! bidirectional control could show `rm -rf /` as something else. Every
//! string a command prints from a store goes through [`escape`]: control
//! characters, format characters (bidi controls, zero-width characters) and
//! line or paragraph separators are shown as `\u{XXXX}`; a backslash is
//! doubled so the escape cannot be faked.

use std::borrow::Cow;

/// Whether a character must not reach a terminal as itself.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00ad}'
            | '\u{061c}'
            | '\u{115f}' | '\u{1160}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{3164}'
            | '\u{feff}'
            | '\u{ffa0}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{e0000}'..='\u{e007f}')
}

/// `text` with every character that could change what a terminal shows
/// replaced by `\u{XXXX}` (and `\` doubled).
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c == '\\' || unsafe_char(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:04x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// An aligned table: each column as wide as its widest cell (in
/// characters), two spaces between columns, trailing spaces trimmed.
/// Cells are written as given: escape stored text first.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            let pad = widths.get(i).copied().unwrap_or(0);
            text.push_str(&" ".repeat(pad.saturating_sub(cell.chars().count())));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(escape("git push origin main"), "git push origin main");
        assert_eq!(escape("Renée 東京"), "Renée 東京");
    }

    #[test]
    fn controls_and_bidi_are_shown_not_obeyed() {
        assert_eq!(escape("a\u{1b}[2Jb"), "a\\u{001b}[2Jb");
        assert_eq!(escape("x\u{202e}fdp.exe"), "x\\u{202e}fdp.exe");
        assert_eq!(
            escape("a\u{200b}b\u{7f}\u{85}"),
            "a\\u{200b}b\\u{007f}\\u{0085}"
        );
        assert_eq!(escape("line\nbreak\r"), "line\\u{000a}break\\u{000d}");
        assert_eq!(escape("tag\u{e0041}"), "tag\\u{e0041}");
    }

    #[test]
    fn a_backslash_cannot_fake_an_escape() {
        assert_eq!(escape("\\u{202e}"), "\\\\u{202e}");
    }
}
