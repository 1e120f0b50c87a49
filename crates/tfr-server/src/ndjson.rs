//! Splitting a streamed body into lines without holding more than one line in memory.

/// One line of input, numbered from 1.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Text {
        number: usize,
        bytes: Vec<u8>,
    },
    /// The line exceeded the limit; its bytes were dropped as they arrived.
    TooLong {
        number: usize,
    },
}

/// Feeds chunks in, gets complete lines out. Lines end with `\n` (a `\r` before it is
/// dropped); a last line without a newline is returned by [`LineSplitter::finish`].
pub struct LineSplitter {
    buffer: Vec<u8>,
    max_line: usize,
    number: usize,
    overflowed: bool,
}

impl LineSplitter {
    pub fn new(max_line: usize) -> Self {
        Self {
            buffer: Vec::new(),
            max_line,
            number: 0,
            overflowed: false,
        }
    }

    pub fn push(&mut self, mut chunk: &[u8], lines: &mut Vec<Line>) {
        while let Some(end) = chunk.iter().position(|b| *b == b'\n') {
            self.append(&chunk[..end]);
            lines.push(self.take_line());
            chunk = &chunk[end + 1..];
        }
        self.append(chunk);
    }

    pub fn finish(&mut self, lines: &mut Vec<Line>) {
        if !self.buffer.is_empty() || self.overflowed {
            lines.push(self.take_line());
        }
    }

    /// Lines seen so far.
    pub fn count(&self) -> usize {
        self.number
    }

    fn append(&mut self, bytes: &[u8]) {
        if self.overflowed {
            return;
        }
        if self.buffer.len() + bytes.len() > self.max_line {
            self.overflowed = true;
            self.buffer = Vec::new();
        } else {
            self.buffer.extend_from_slice(bytes);
        }
    }

    fn take_line(&mut self) -> Line {
        self.number += 1;
        if std::mem::take(&mut self.overflowed) {
            return Line::TooLong {
                number: self.number,
            };
        }
        let mut bytes = std::mem::take(&mut self.buffer);
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        Line::Text {
            number: self.number,
            bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], max: usize) -> Vec<Line> {
        let mut splitter = LineSplitter::new(max);
        let mut lines = Vec::new();
        for chunk in chunks {
            splitter.push(chunk, &mut lines);
        }
        splitter.finish(&mut lines);
        lines
    }

    fn text(number: usize, bytes: &[u8]) -> Line {
        Line::Text {
            number,
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn lines_across_chunks() {
        assert_eq!(
            split(&[b"ab", b"c\nde", b"f\r\n", b"\n", b"last"], 100),
            vec![
                text(1, b"abc"),
                text(2, b"def"),
                text(3, b""),
                text(4, b"last")
            ]
        );
    }

    #[test]
    fn too_long_lines_are_dropped_but_counted() {
        assert_eq!(
            split(&[b"12345", b"678\nok\n"], 5),
            vec![Line::TooLong { number: 1 }, text(2, b"ok")]
        );
        assert_eq!(split(&[b"123456"], 5), vec![Line::TooLong { number: 1 }]);
    }

    #[test]
    fn empty_body_has_no_lines() {
        assert!(split(&[], 10).is_empty());
        assert_eq!(split(&[b"\n"], 10), vec![text(1, b"")]);
    }
}
