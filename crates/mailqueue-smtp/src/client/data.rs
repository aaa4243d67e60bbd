//! The DATA payload (RFC 5321 §4.1.1.4, §4.5.2): what goes on the wire
//! between the 354 reply and the relay's final reply.
//!
//! Whatever the message bytes hold, the payload has only CRLF line
//! endings: a bare LF, a bare CR and a CRLF each become one CRLF. Every line
//! that starts with `.` gets one more, and the payload ends with `.` on a
//! line of its own. Because every line ending is canonicalized before the
//! dot-stuffing looks at the line, no byte sequence in a message can end
//! the data early at a relay that (leniently) takes `LF.LF` as the end, nor
//! smuggle a second transaction behind it.
//!
//! [`DataEncoder`] works on chunks, so a large message is written as it is
//! encoded; its state (a CR waiting for a possible LF, the start of a line)
//! carries over between chunks.

/// Encodes message bytes into the DATA payload, chunk by chunk.
#[derive(Debug)]
pub struct DataEncoder {
    at_line_start: bool,
    pending_cr: bool,
}

impl Default for DataEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl DataEncoder {
    pub fn new() -> Self {
        Self {
            at_line_start: true,
            pending_cr: false,
        }
    }

    fn end_line(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\r\n");
        self.at_line_start = true;
    }

    /// Appends the encoding of `input` to `out`.
    pub fn encode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + input.len() / 32 + 2);
        for &b in input {
            if std::mem::take(&mut self.pending_cr) {
                self.end_line(out);
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\r' => self.pending_cr = true,
                b'\n' => self.end_line(out),
                _ => {
                    if self.at_line_start && b == b'.' {
                        out.push(b'.');
                    }
                    out.push(b);
                    self.at_line_start = false;
                }
            }
        }
    }

    /// Appends the end of the payload: the last line's CRLF when the
    /// message did not end with one, then `.` CRLF.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        if self.pending_cr || !self.at_line_start {
            self.end_line(out);
        }
        out.extend_from_slice(b".\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole payload for `message` at once.
    fn encode_data(message: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = DataEncoder::new();
        encoder.encode(message, &mut out);
        encoder.finish(&mut out);
        out
    }

    fn data(input: &str) -> String {
        String::from_utf8(encode_data(input.as_bytes())).unwrap()
    }

    #[test]
    fn canonicalizes_every_line_ending() {
        assert_eq!(data("a\r\nb\r\n"), "a\r\nb\r\n.\r\n");
        assert_eq!(data("a\nb\n"), "a\r\nb\r\n.\r\n");
        assert_eq!(data("a\rb\r"), "a\r\nb\r\n.\r\n");
        assert_eq!(
            data("a\n\rb"),
            "a\r\n\r\nb\r\n.\r\n",
            "LF CR is two endings"
        );
        assert_eq!(data("a\r\r\nb"), "a\r\n\r\nb\r\n.\r\n");
        assert_eq!(data("\n"), "\r\n.\r\n");
        assert_eq!(data("\r"), "\r\n.\r\n");
    }

    #[test]
    fn ends_with_a_dot_line_whether_or_not_the_message_ends_a_line() {
        assert_eq!(data(""), ".\r\n");
        assert_eq!(data("last"), "last\r\n.\r\n");
        assert_eq!(data("last\r\n"), "last\r\n.\r\n");
    }

    #[test]
    fn stuffs_every_line_that_starts_with_a_dot() {
        assert_eq!(data(".\r\n"), "..\r\n.\r\n");
        assert_eq!(data("."), "..\r\n.\r\n");
        assert_eq!(data("a\r\n.b\r\n..c\r\n"), "a\r\n..b\r\n...c\r\n.\r\n");
        assert_eq!(data("a\n.\nb"), "a\r\n..\r\nb\r\n.\r\n");
        assert_eq!(data("a\r.\rb"), "a\r\n..\r\nb\r\n.\r\n");
        assert_eq!(
            data("a.b\r\n x."),
            "a.b\r\n x.\r\n.\r\n",
            "only at line start"
        );
    }

    #[test]
    fn defuses_the_smuggling_payload() {
        let payload = "ok\n.\nMAIL FROM:<smuggled@evil.test>\nRCPT TO:<victim@example.com>\nDATA\nforged\n.\n";
        assert_eq!(
            data(payload),
            "ok\r\n..\r\nMAIL FROM:<smuggled@evil.test>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nforged\r\n..\r\n.\r\n"
        );
    }

    /// A small deterministic generator, so failures reproduce.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        /// Bytes with many CR, LF and dots among arbitrary ones.
        fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len)
                .map(|_| match self.next() % 8 {
                    0 => b'\r',
                    1 => b'\n',
                    2 | 3 => b'.',
                    _ => self.next() as u8,
                })
                .collect()
        }
    }

    /// The lines of a payload, without the final `.` line; checks that
    /// every CR and LF belongs to a CRLF.
    fn payload_lines(payload: &[u8]) -> Vec<&[u8]> {
        for (i, &b) in payload.iter().enumerate() {
            if b == b'\n' {
                assert_eq!(
                    payload.get(i.wrapping_sub(1)),
                    Some(&b'\r'),
                    "bare LF at {i}"
                );
            }
            if b == b'\r' {
                assert_eq!(payload.get(i + 1), Some(&b'\n'), "bare CR at {i}");
            }
        }
        let body = payload
            .strip_suffix(b".\r\n")
            .expect("the payload ends with the dot line");
        assert!(body.is_empty() || body.ends_with(b"\r\n"));
        let mut lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
        lines.pop();
        lines
            .into_iter()
            .map(|l| l.strip_suffix(b"\r").expect("CRLF"))
            .collect()
    }

    /// The message with every line ending made CRLF, and a final CRLF.
    fn canonical(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < input.len() {
            match input[i] {
                b'\r' if input.get(i + 1) == Some(&b'\n') => {
                    out.extend_from_slice(b"\r\n");
                    i += 1;
                }
                b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
                b => out.push(b),
            }
            i += 1;
        }
        if !out.is_empty() && !out.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    #[test]
    fn random_bytes_give_only_crlf_no_lone_dot_and_unstuff_to_the_canonical_message() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for round in 0..3000 {
            let len = (rng.next() % 300) as usize;
            let input = rng.bytes(len);
            let payload = encode_data(&input);
            let lines = payload_lines(&payload);
            let mut unstuffed = Vec::new();
            for line in &lines {
                assert_ne!(*line, b".", "round {round}: a lone dot would end the data");
                let line = if line.first() == Some(&b'.') {
                    &line[1..]
                } else {
                    line
                };
                unstuffed.extend_from_slice(line);
                unstuffed.extend_from_slice(b"\r\n");
            }
            assert_eq!(unstuffed, canonical(&input), "round {round}: {input:?}");
            // Chunk boundaries anywhere give the same bytes.
            let mut chunked = Vec::new();
            let mut encoder = DataEncoder::new();
            let mut rest = &input[..];
            while !rest.is_empty() {
                let take = 1 + (rng.next() as usize % rest.len().min(7));
                encoder.encode(&rest[..take], &mut chunked);
                rest = &rest[take..];
            }
            encoder.finish(&mut chunked);
            assert_eq!(chunked, payload, "round {round}: chunked");
        }
    }
}
