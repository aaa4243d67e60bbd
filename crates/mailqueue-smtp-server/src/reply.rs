//! Replies: a code, an enhanced status code (RFC 3463) and one line of
//! text, written as `250 2.0.0 text`.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// The enhanced status code, e.g. `5.7.8`; `None` for the greeting and
    /// the intermediate replies (220, 334, 354), which carry none.
    pub status: Option<&'static str>,
    pub text: String,
}

impl Reply {
    pub fn new(code: u16, status: &'static str, text: impl Into<String>) -> Self {
        Self {
            code,
            status: Some(status),
            text: one_line(text.into()),
        }
    }

    /// A reply without an enhanced status code.
    pub fn bare(code: u16, text: impl Into<String>) -> Self {
        Self {
            code,
            status: None,
            text: one_line(text.into()),
        }
    }

    /// Whether the client is refused for good (5xx).
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(f, "{} {status} {}", self.code, self.text),
            None => write!(f, "{} {}", self.code, self.text),
        }
    }
}

/// Text that cannot break the reply into lines of its own.
fn one_line(text: String) -> String {
    if text.contains(['\r', '\n']) {
        text.replace(['\r', '\n'], " ")
    } else {
        text
    }
}

/// A multi-line reply (`250-…` then `250 …`), as EHLO answers.
pub fn write_lines(code: u16, lines: &[String], out: &mut Vec<u8>) {
    for (i, line) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { ' ' } else { '-' };
        out.extend_from_slice(format!("{code}{sep}{line}\r\n").as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_one_line_whatever_the_text() {
        let mut out = Vec::new();
        Reply::new(451, "4.3.0", "the store failed:\r\nQUIT").write_to(&mut out);
        assert_eq!(out, b"451 4.3.0 the store failed:  QUIT\r\n");
        let mut out = Vec::new();
        write_lines(250, &["mq.test".into(), "PIPELINING".into()], &mut out);
        assert_eq!(out, b"250-mq.test\r\n250 PIPELINING\r\n");
    }
}
