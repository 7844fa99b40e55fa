//! Python's text operations, exactly: `str.strip`, `str.lower` and `str.upper`.
//!
//! A cell converted here must give the value Python's converter gives, so these follow CPython's
//! definitions. Case mapping is done here only for Latin-1 text (where Rust's and Python's Unicode
//! tables agree); other text answers `None` and the row goes to Python.

/// CPython's `str.isspace()` characters (the ones `str.strip()` removes).
pub fn is_python_space(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | '\u{1c}'..='\u{20}'
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// `text.strip()`.
pub fn strip(text: &str) -> &str {
    text.trim_matches(is_python_space)
}

/// `text.lower()`, or None when the text has characters beyond Latin-1.
pub fn lower(text: &str) -> Option<String> {
    mapped(text, str::to_ascii_lowercase, str::to_lowercase)
}

/// `text.upper()`, or None when the text has characters beyond Latin-1.
pub fn upper(text: &str) -> Option<String> {
    mapped(text, str::to_ascii_uppercase, str::to_uppercase)
}

fn mapped(text: &str, ascii: fn(&str) -> String, latin1: fn(&str) -> String) -> Option<String> {
    if text.is_ascii() {
        return Some(ascii(text));
    }
    if text.chars().any(|c| c as u32 > 0xff) {
        return None;
    }
    Some(latin1(text))
}
