//! The DATA phase: lines up to the lone `.`, dot-unstuffed (RFC 5321
//! §4.5.2), with the limits a public server needs. Memory stays bounded
//! whatever the client sends: the message is kept only up to its size
//! limit and a line only up to the longest allowed; what is beyond is read
//! and dropped, so that the client hears the reason once it has finished.

use std::fmt;

/// The longest line a message may hold, without its CRLF (RFC 5322 §2.1.1).
pub const MAX_LINE_OCTETS: usize = 998;

/// Why a message is refused once it has been read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataRefusal {
    /// Larger than the server takes (`SIZE`).
    TooLarge { limit: usize },
    /// A NUL byte, which no message may hold (RFC 5322 §2.3).
    NulByte { line: usize },
    /// A line over 998 octets.
    LineTooLong { line: usize },
    /// A CR or an LF that is not part of a CRLF: refused, as servers do
    /// against SMTP smuggling, rather than guessed at.
    BareLineBreak { line: usize },
}

impl fmt::Display for DataRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataRefusal::TooLarge { limit } => {
                write!(f, "the message is larger than {limit} octets")
            }
            DataRefusal::NulByte { line } => write!(f, "line {line} holds a NUL byte"),
            DataRefusal::LineTooLong { line } => {
                write!(f, "line {line} is longer than {MAX_LINE_OCTETS} octets")
            }
            DataRefusal::BareLineBreak { line } => {
                write!(f, "line {line} holds a CR or LF outside a CRLF")
            }
        }
    }
}

/// Reads one message's DATA from whatever the connection delivers.
#[derive(Debug)]
pub struct DataReader {
    limit: usize,
    /// The line being read, kept up to a CRLF past the longest allowed.
    line: Vec<u8>,
    line_overflowed: bool,
    lines: usize,
    size: usize,
    message: Vec<u8>,
    refusal: Option<DataRefusal>,
}

impl DataReader {
    /// A reader for a message of at most `limit` octets (after unstuffing).
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            line: Vec::with_capacity(128),
            line_overflowed: false,
            lines: 0,
            size: 0,
            message: Vec::new(),
            refusal: None,
        }
    }

    /// Takes bytes from `input`; returns how many it consumed and, once the
    /// lone `.` line has been read, the message or why it is refused. Bytes
    /// after the `.` line are not consumed: they are the next commands.
    pub fn ingest(&mut self, input: &[u8]) -> (usize, Option<Result<Vec<u8>, DataRefusal>>) {
        for (i, &b) in input.iter().enumerate() {
            if self.line.len() <= MAX_LINE_OCTETS + 2 {
                self.line.push(b);
            } else {
                self.line_overflowed = true;
            }
            if b == b'\n' {
                if let Some(end) = self.end_line() {
                    return (i + 1, Some(end));
                }
            }
        }
        (input.len(), None)
    }

    /// Takes the line just read; returns the outcome at the lone `.`.
    fn end_line(&mut self) -> Option<Result<Vec<u8>, DataRefusal>> {
        self.lines += 1;
        let line = std::mem::take(&mut self.line);
        let overflowed = std::mem::take(&mut self.line_overflowed);
        if !overflowed && line == b".\r\n" {
            let message = std::mem::take(&mut self.message);
            return Some(match self.refusal.take() {
                Some(refusal) => Err(refusal),
                None => Ok(message),
            });
        }
        let n = self.lines;
        let content = match line.strip_suffix(b"\r\n") {
            Some(content) => content,
            None => {
                self.refuse(DataRefusal::BareLineBreak { line: n });
                &line[..line.len() - 1]
            }
        };
        let content = content.strip_prefix(b".").unwrap_or(content);
        if overflowed || content.len() > MAX_LINE_OCTETS {
            self.refuse(DataRefusal::LineTooLong { line: n });
        }
        if content.contains(&0) {
            self.refuse(DataRefusal::NulByte { line: n });
        }
        if content.contains(&b'\r') || content.contains(&b'\n') {
            self.refuse(DataRefusal::BareLineBreak { line: n });
        }
        self.size = self.size.saturating_add(content.len() + 2);
        if self.size > self.limit {
            self.refuse(DataRefusal::TooLarge { limit: self.limit });
        }
        if self.refusal.is_none() {
            self.message.extend_from_slice(content);
            self.message.extend_from_slice(b"\r\n");
        } else {
            self.message = Vec::new();
        }
        // Keep the allocation of a typical line for the next one.
        self.line = line;
        self.line.clear();
        None
    }

    /// Notes the first reason to refuse; a message too large says so over
    /// any other reason (the client may retry it smaller elsewhere).
    fn refuse(&mut self, refusal: DataRefusal) {
        match (&self.refusal, &refusal) {
            (None, _) | (Some(_), DataRefusal::TooLarge { .. }) => self.refusal = Some(refusal),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read_all(limit: usize, input: &[u8]) -> (usize, Option<Result<Vec<u8>, DataRefusal>>) {
        DataReader::new(limit).ingest(input)
    }

    #[test]
    fn unstuffs_dots_and_stops_at_the_lone_dot() {
        let input = b"Subject: x\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n";
        let (used, end) = read_all(1000, input);
        assert_eq!(
            end,
            Some(Ok(b"Subject: x\r\n\r\n.leading dot\r\n".to_vec()))
        );
        assert_eq!(&input[used..], b"QUIT\r\n");
    }

    #[test]
    fn an_empty_message_ends_at_once() {
        assert_eq!(read_all(10, b".\r\n"), (3, Some(Ok(Vec::new()))));
    }

    #[test]
    fn takes_the_message_in_pieces_of_any_size() {
        let input = b"a: b\r\n\r\nbody\r\n.\r\n";
        for split in 0..input.len() {
            let mut reader = DataReader::new(100);
            let (used, end) = reader.ingest(&input[..split]);
            assert_eq!((used, &end), (split, &None));
            let (_, end) = reader.ingest(&input[split..]);
            assert_eq!(end, Some(Ok(b"a: b\r\n\r\nbody\r\n".to_vec())));
        }
    }

    #[test]
    fn refuses_what_no_message_may_hold() {
        let long = format!("{}\r\n.\r\n", "x".repeat(MAX_LINE_OCTETS + 1));
        let cases: [(&[u8], usize, DataRefusal); 5] = [
            (
                b"a\r\nb\0c\r\n.\r\n",
                2000,
                DataRefusal::NulByte { line: 2 },
            ),
            (long.as_bytes(), 2000, DataRefusal::LineTooLong { line: 1 }),
            (
                b"a\nb\r\n.\r\n",
                2000,
                DataRefusal::BareLineBreak { line: 1 },
            ),
            (
                b"a\rb\r\n.\r\n",
                2000,
                DataRefusal::BareLineBreak { line: 1 },
            ),
            (
                b"0123456789\r\n.\r\n",
                11,
                DataRefusal::TooLarge { limit: 11 },
            ),
        ];
        for (input, limit, refusal) in cases {
            assert_eq!(read_all(limit, input).1, Some(Err(refusal)));
        }
    }

    #[test]
    fn a_line_of_exactly_998_octets_is_fine() {
        let input = format!("{}\r\n.\r\n", "x".repeat(MAX_LINE_OCTETS));
        assert!(matches!(read_all(2000, input.as_bytes()).1, Some(Ok(_))));
    }

    #[test]
    fn a_lone_dot_after_a_bare_lf_does_not_end_the_message() {
        // "\n.\n" is not the end of DATA: only CRLF . CRLF is (SMTP smuggling).
        let input = b"a\r\n\n.\nMAIL FROM:<x@y>\r\n.\r\n";
        let (used, end) = read_all(1000, input);
        assert_eq!(used, input.len());
        assert_eq!(end, Some(Err(DataRefusal::BareLineBreak { line: 2 })));
    }

    proptest! {
        #[test]
        fn never_panics_and_keeps_at_most_its_limit(input in proptest::collection::vec(any::<u8>(), 0..4096), limit in 0usize..2048) {
            let mut reader = DataReader::new(limit);
            let (used, end) = reader.ingest(&input);
            prop_assert!(used <= input.len());
            prop_assert!(reader.message.len() <= limit);
            prop_assert!(reader.line.len() <= MAX_LINE_OCTETS + 3);
            if let Some(Ok(message)) = end {
                prop_assert!(message.len() <= limit);
            }
        }

        #[test]
        fn dot_stuffed_lines_come_back_as_they_were(lines in proptest::collection::vec("[ -~]{0,80}", 0..40)) {
            let mut wire = Vec::new();
            let mut expected = Vec::new();
            for line in &lines {
                if line.starts_with('.') {
                    wire.push(b'.');
                }
                wire.extend_from_slice(line.as_bytes());
                wire.extend_from_slice(b"\r\n");
                expected.extend_from_slice(line.as_bytes());
                expected.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b".\r\n");
            let (used, end) = DataReader::new(1 << 20).ingest(&wire);
            prop_assert_eq!(used, wire.len());
            prop_assert_eq!(end, Some(Ok(expected)));
        }
    }
}
