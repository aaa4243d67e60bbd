//! Header field values that fit on the wire (RFC 5322 §2.1.1: at most 998
//! octets a line, 78 recommended).
//!
//! lettre's `HeaderValue::new` folds at spaces but writes a word longer than
//! a line as it is, so a 998-byte value without spaces made a 1006-octet
//! line. [`encode_header_value`] does instead:
//! - a printable ASCII value is folded before whitespace, lines aimed at 78
//!   octets. Folding only inserts CRLF before existing whitespace, so
//!   unfolding gives the value back byte for byte, in any field;
//! - a value with a word too long for a line (or non-ASCII text) becomes
//!   RFC 2047 encoded-words, `=?utf-8?b?…?=`, one per line, each whole
//!   characters and under 76 octets. Decoders join adjacent encoded-words
//!   without the folding whitespace, so the value decodes to itself.
//!   Encoded-words are defined for unstructured fields; a structured value
//!   with a 990-byte token has no correct form at all, and this one at
//!   least keeps the message deliverable and readable.

use base64::Engine;

/// The line length folding aims for.
const SOFT_LIMIT: usize = 78;
/// The longest line allowed, CRLF not counted.
pub const HARD_LIMIT: usize = 998;
/// The longest line holding encoded-words (RFC 2047 §2).
const ENCODED_LINE_LIMIT: usize = 76;
/// `=?utf-8?b?` and `?=`.
const ENCODED_WORD_OVERHEAD: usize = 12;

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The value as written after `name: `, folded with CRLF + whitespace
/// where needed.
pub fn encode_header_value(name: &str, value: &str) -> String {
    let printable = value
        .bytes()
        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b));
    if printable {
        if let Some(folded) = fold_at_whitespace(name.len() + 2, value) {
            return folded;
        }
    }
    encoded_words(name.len() + 2, value)
}

/// Splits a value into pieces that each start with the whitespace before a
/// word (the first may have none), so a fold can go before any piece.
fn pieces(value: &str) -> Vec<&str> {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        while i < bytes.len() && is_wsp(bytes[i]) {
            i += 1;
        }
        while i < bytes.len() && !is_wsp(bytes[i]) {
            i += 1;
        }
        out.push(&value[start..i]);
        start = i;
    }
    out
}

/// `None` when some word does not fit on a line even on its own.
fn fold_at_whitespace(first_column: usize, value: &str) -> Option<String> {
    let mut out = String::with_capacity(value.len() + value.len() / 30);
    let mut column = first_column;
    let mut line_has_text = false;
    for piece in pieces(value) {
        // A fold never leaves a line of whitespace only (RFC 5322 §3.2.2).
        let has_word = piece.bytes().any(|b| !is_wsp(b));
        if line_has_text && has_word && column + piece.len() > SOFT_LIMIT {
            out.push_str("\r\n");
            column = 0;
        }
        out.push_str(piece);
        column += piece.len();
        line_has_text = true;
        if column > HARD_LIMIT {
            return None;
        }
    }
    Some(out)
}

/// How many bytes of text fit in an encoded-word that starts at `column`.
fn encoded_word_capacity(column: usize) -> usize {
    ENCODED_LINE_LIMIT.saturating_sub(column + ENCODED_WORD_OVERHEAD) / 4 * 3
}

/// One encoded-word a line; the first shares its line with the field name
/// when there is room for a few characters, else it starts on the next.
fn encoded_words(first_column: usize, value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut column = first_column;
    let mut on_first_line = true;
    while !rest.is_empty() {
        if !on_first_line || encoded_word_capacity(column) < 6 {
            out.push_str("\r\n ");
            column = 1;
        }
        on_first_line = false;
        // At least 6 bytes fit, so at least one character does.
        let mut end = rest.len().min(encoded_word_capacity(column));
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        out.push_str("=?utf-8?b?");
        base64::engine::general_purpose::STANDARD.encode_string(&rest[..end], &mut out);
        out.push_str("?=");
        rest = &rest[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(name: &str, encoded: &str) -> Vec<String> {
        format!("{name}: {encoded}")
            .split("\r\n")
            .map(String::from)
            .collect()
    }

    fn unfold(encoded: &str) -> String {
        encoded.replace("\r\n", "")
    }

    fn decode_words(encoded: &str) -> String {
        let mut bytes = Vec::new();
        for word in encoded.split("\r\n ").filter(|w| !w.is_empty()) {
            let inner = word
                .strip_prefix("=?utf-8?b?")
                .and_then(|w| w.strip_suffix("?="))
                .expect("an encoded-word");
            bytes.extend(
                base64::engine::general_purpose::STANDARD
                    .decode(inner)
                    .unwrap(),
            );
        }
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn short_values_are_left_alone() {
        assert_eq!(encode_header_value("X-Campaign", "spring"), "spring");
        assert_eq!(encode_header_value("X-Empty", ""), "");
        assert_eq!(encode_header_value("X-Tab", "a\tb"), "a\tb");
    }

    #[test]
    fn long_values_with_spaces_fold_and_unfold_to_themselves() {
        let value = (0..200)
            .map(|i| format!("word{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let value = &value[..998];
        let encoded = encode_header_value("X-Long", value);
        assert_eq!(unfold(&encoded), value);
        for line in lines("X-Long", &encoded) {
            assert!(line.len() <= SOFT_LIMIT, "{line}");
        }
        let odd = "  leading and trailing  \t ";
        assert_eq!(unfold(&encode_header_value("X", odd)), odd);
    }

    #[test]
    fn a_long_word_fits_when_a_line_can_hold_it() {
        let value = format!("short {}", "x".repeat(900));
        let encoded = encode_header_value("List-Unsubscribe", &value);
        assert_eq!(encoded, format!("short\r\n {}", "x".repeat(900)));
    }

    #[test]
    fn a_word_too_long_for_any_line_becomes_encoded_words() {
        let value = "y".repeat(998);
        let encoded = encode_header_value("X-Token", &value);
        for line in lines("X-Token", &encoded) {
            assert!(line.len() <= 76, "{line}");
        }
        assert_eq!(decode_words(&encoded), value);
        let long_name = "X-".to_string() + &"n".repeat(74);
        let encoded = encode_header_value(&long_name, &value);
        assert!(encoded.starts_with("\r\n =?utf-8?b?"), "{encoded}");
        for line in lines(&long_name, &encoded).iter().skip(1) {
            assert!(line.len() <= 76, "{line}");
        }
        assert_eq!(decode_words(&encoded), value);
    }

    #[test]
    fn non_ascii_becomes_encoded_words_of_whole_characters() {
        let value = "Grüße aus Köln — ✓ ".repeat(20);
        let encoded = encode_header_value("Subject", &value);
        assert_eq!(decode_words(&encoded), value);
        for line in lines("Subject", &encoded) {
            assert!(line.len() <= 76 && line.is_ascii(), "{line}");
        }
    }
}
