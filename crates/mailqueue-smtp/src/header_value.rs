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
//!
//! Address lists (`From`, `To`, `Cc`, `Reply-To`) have their own encoder,
//! [`encode_mailbox_list`]: each display name becomes atoms, a quoted
//! string or encoded-words, and the list is folded at the whitespace
//! between and inside mailboxes. Every piece between two fold points is
//! short (a quoted name of 256 characters, an address of 254), so the lines
//! aim at 78 octets and never pass 998.

use base64::Engine;
use mailqueue_core::Mailbox;

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

/// An address list as written after `name: `, folded at 78 octets where a
/// fold point allows; `None` if some piece could not fit on a line (the
/// limits on names and addresses rule it out).
pub fn encode_mailbox_list(name: &str, mailboxes: &[Mailbox]) -> Option<String> {
    let mut value = String::new();
    for (i, m) in mailboxes.iter().enumerate() {
        if i > 0 {
            value.push_str(", ");
        }
        match &m.name {
            Some(display) => {
                push_display_name(&mut value, display);
                value.push_str(" <");
                value.push_str(m.address.as_str());
                value.push('>');
            }
            None => value.push_str(m.address.as_str()),
        }
    }
    fold_at_whitespace(name.len() + 2, &value)
}

/// A display name as a phrase (RFC 5322 §3.2.5): atoms when it holds only
/// atom characters and spaces, a quoted string when it is other printable
/// ASCII, encoded-words (RFC 2047 §5(3)) separated by spaces otherwise.
fn push_display_name(out: &mut String, name: &str) {
    const ATEXT_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~";
    let printable = name.bytes().all(|b| (0x20..0x7f).contains(&b));
    let atoms = printable
        && !name.contains("=?")
        && name
            .chars()
            .all(|c| c == ' ' || c.is_ascii_alphanumeric() || ATEXT_SPECIALS.contains(c));
    if atoms {
        out.push_str(name);
    } else if printable {
        out.push('"');
        for c in name.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    } else {
        let mut rest = name;
        let capacity = (ENCODED_LINE_LIMIT - 1 - ENCODED_WORD_OVERHEAD) / 4 * 3;
        let mut first = true;
        while !rest.is_empty() {
            if !std::mem::take(&mut first) {
                out.push(' ');
            }
            let mut end = rest.len().min(capacity);
            while !rest.is_char_boundary(end) {
                end -= 1;
            }
            out.push_str("=?utf-8?b?");
            base64::engine::general_purpose::STANDARD.encode_string(&rest[..end], out);
            out.push_str("?=");
            rest = &rest[end..];
        }
    }
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

    fn mailboxes(list: &[&str]) -> Vec<Mailbox> {
        list.iter().map(|m| Mailbox::parse(m).unwrap()).collect()
    }

    #[test]
    fn address_lists_fold_between_mailboxes() {
        let list: Vec<String> = (0..24)
            .map(|i| format!("recipient-number-{i:02}-padding-xx@example.com"))
            .collect();
        let refs: Vec<&str> = list.iter().map(String::as_str).collect();
        let encoded = encode_mailbox_list("To", &mailboxes(&refs)).unwrap();
        for line in lines("To", &encoded) {
            assert!(line.len() <= SOFT_LIMIT, "{line}");
        }
        assert_eq!(unfold(&encoded), list.join(", "));
    }

    #[test]
    fn display_names_are_atoms_quoted_or_encoded() {
        let encoded = encode_mailbox_list(
            "To",
            &mailboxes(&[
                "Acme Billing <a@x.io>",
                r#""Doe, \"JD\" Jane" <b@x.io>"#,
                "Zoë <c@x.io>",
                "=?not-a-word <d@x.io>",
            ]),
        )
        .unwrap();
        assert_eq!(
            unfold(&encoded),
            r#"Acme Billing <a@x.io>, "Doe, \"JD\" Jane" <b@x.io>, =?utf-8?b?Wm/Dqw==?= <c@x.io>, "=?not-a-word" <d@x.io>"#
        );
    }

    #[test]
    fn long_names_fold_inside_and_stay_under_the_hard_limit() {
        let spaced = "word ".repeat(51).trim_end().to_string();
        let solid = "n".repeat(256);
        let accented = "é".repeat(256);
        let list: Vec<String> = [&spaced, &solid, &accented]
            .iter()
            .map(|n| format!("\"{n}\" <someone@example.com>"))
            .collect();
        let refs: Vec<&str> = list.iter().map(String::as_str).collect();
        let encoded = encode_mailbox_list("Reply-To", &mailboxes(&refs)).unwrap();
        for line in lines("Reply-To", &encoded) {
            assert!(line.len() <= HARD_LIMIT, "{} octets", line.len());
            if !line.contains(&solid) {
                assert!(line.len() <= SOFT_LIMIT, "{line}");
            }
        }
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
