//! SMTP replies (RFC 5321 §4.2): one or more lines `ddd-text`, the last one
//! `ddd text` (or `ddd` alone), all with the same code.
//!
//! [`parse_reply`] takes one reply from the front of a buffer without
//! copying the rest, so the session can keep what follows it (the next
//! reply of a pipelined group, or bytes nobody asked for). Line length and
//! line count are limited, so a relay that talks without end cannot make
//! us buffer without end.

use std::fmt;

/// The longest reply line we accept, its line ending included. RFC 5321
/// §4.5.3.1.5 sets 512; real relays exceed it now and then.
pub const MAX_LINE: usize = 2048;
/// The most lines in one reply (an EHLO reply has a dozen or two).
pub const MAX_LINES: usize = 100;

/// A complete reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// The text of each line, without the code and separator.
    pub lines: Vec<String>,
}

impl Reply {
    /// 2xx: the command succeeded.
    pub fn is_completion(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 4xx or 5xx: the command was refused.
    pub fn is_refusal(&self) -> bool {
        (400..600).contains(&self.code)
    }

    /// The lines' text joined with spaces.
    pub fn text(&self) -> String {
        self.lines.join(" ")
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.text();
        if text.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{} {text}", self.code)
        }
    }
}

/// Why the bytes at the front of the buffer are not a reply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("a reply line is longer than {MAX_LINE} bytes")]
    LineTooLong,
    #[error("a reply has more than {MAX_LINES} lines")]
    TooManyLines,
    #[error("`{0}` is not an SMTP reply line")]
    Garbled(String),
    #[error("one reply mixes the codes {0} and {1}")]
    MixedCodes(u16, u16),
}

/// One line: its code, whether it is the last of the reply, and its text.
fn parse_line(line: &[u8]) -> Result<(u16, bool, String), ReplyError> {
    let garbled = || ReplyError::Garbled(String::from_utf8_lossy(line).escape_debug().to_string());
    let digits = line.get(..3).ok_or_else(garbled)?;
    let valid_code = (b'2'..=b'5').contains(&digits[0])
        && (b'0'..=b'5').contains(&digits[1])
        && digits[2].is_ascii_digit();
    if !valid_code {
        return Err(garbled());
    }
    let code = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    let (last, text) = match line.get(3) {
        None => (true, &[][..]),
        Some(b' ') => (true, &line[4..]),
        Some(b'-') => (false, &line[4..]),
        Some(_) => return Err(garbled()),
    };
    Ok((code, last, String::from_utf8_lossy(text).into_owned()))
}

/// Takes one complete reply from the front of `buf`: `Ok(None)` when more
/// bytes are needed, else the reply and how many bytes it used. Lines end
/// with CRLF; a bare LF is tolerated on input.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
    let mut lines = Vec::new();
    let mut code = None;
    let mut at = 0;
    loop {
        let rest = &buf[at..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            if rest.len() >= MAX_LINE {
                return Err(ReplyError::LineTooLong);
            }
            return Ok(None);
        };
        if end + 1 > MAX_LINE {
            return Err(ReplyError::LineTooLong);
        }
        let line = rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]);
        let (line_code, last, text) = parse_line(line)?;
        match code {
            Some(c) if c != line_code => return Err(ReplyError::MixedCodes(c, line_code)),
            _ => code = Some(line_code),
        }
        lines.push(text);
        at += end + 1;
        if last {
            return Ok(Some((
                Reply {
                    code: line_code,
                    lines,
                },
                at,
            )));
        }
        if lines.len() >= MAX_LINES {
            return Err(ReplyError::TooManyLines);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(input: &[u8]) -> Reply {
        let (reply, used) = parse_reply(input).unwrap().unwrap();
        assert_eq!(used, input.len());
        reply
    }

    #[test]
    fn parses_single_and_multi_line_replies() {
        assert_eq!(
            one(b"250 2.0.0 Ok: queued\r\n"),
            Reply {
                code: 250,
                lines: vec!["2.0.0 Ok: queued".into()]
            }
        );
        let ehlo = one(b"250-relay.test\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n");
        assert_eq!(ehlo.code, 250);
        assert_eq!(ehlo.lines, ["relay.test", "PIPELINING", "AUTH PLAIN LOGIN"]);
        assert_eq!(one(b"354\r\n").lines, [""]);
        assert_eq!(one(b"221 bye\n").code, 221, "a bare LF is tolerated");
        assert_eq!(one(b"535 5.7.8 no\r\n").to_string(), "535 5.7.8 no");
    }

    #[test]
    fn waits_for_the_last_line() {
        assert_eq!(parse_reply(b"").unwrap(), None);
        assert_eq!(parse_reply(b"250 ok").unwrap(), None);
        assert_eq!(parse_reply(b"250-a\r\n250-b\r\n").unwrap(), None);
    }

    #[test]
    fn leaves_what_follows_the_reply() {
        let input = b"250 first\r\n354 go ahead\r\n";
        let (reply, used) = parse_reply(input).unwrap().unwrap();
        assert_eq!(reply.code, 250);
        assert_eq!(&input[used..], b"354 go ahead\r\n");
    }

    #[test]
    fn refuses_what_is_not_a_reply() {
        for bad in [
            &b"hello\r\n"[..],
            b"25 x\r\n",
            b"250x\r\n",
            b"150 old style\r\n",
            b"650 x\r\n",
            b"2a0 x\r\n",
            b"\r\n",
        ] {
            assert!(
                matches!(parse_reply(bad), Err(ReplyError::Garbled(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_reply(b"250-a\r\n251 b\r\n"),
            Err(ReplyError::MixedCodes(250, 251))
        );
    }

    #[test]
    fn limits_line_length_and_line_count() {
        let long = format!("250 {}\r\n", "x".repeat(MAX_LINE));
        assert_eq!(parse_reply(long.as_bytes()), Err(ReplyError::LineTooLong));
        let unterminated = "2".repeat(MAX_LINE);
        assert_eq!(
            parse_reply(unterminated.as_bytes()),
            Err(ReplyError::LineTooLong)
        );
        let many = "250-x\r\n".repeat(MAX_LINES + 1);
        assert_eq!(parse_reply(many.as_bytes()), Err(ReplyError::TooManyLines));
        let fits = format!("{}250 end\r\n", "250-x\r\n".repeat(MAX_LINES - 1));
        assert_eq!(one(fits.as_bytes()).lines.len(), MAX_LINES);
    }
}
