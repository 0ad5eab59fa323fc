//! Spaces around fields, read as IDM's CSV connector reads them. IDM's samples write
//! `"firstName", "uid", "lastName"` (a space after each delimiter, before the quote), and IDM's
//! connector ignores spaces and tabs outside quotes at both ends of a field; the csv crate would
//! read `␣"uid"` as a field of six characters, quotes included.
//!
//! [`Spaces`] is a reader between the file and the csv crate that drops those spaces, so that
//! the crate sees `"firstName","uid","lastName"`. It is switched on per file, when the header
//! line has such spaces ([`header_has_spaces`]): a file whose header is written without them
//! is read byte for byte as before (a value's own leading space is kept). A switched-on reader
//! changes byte offsets, so it remembers where each row starts in the file
//! ([`Spaces::file_offset`]): the sorted-file fast path (read.rs) resumes at file offsets in
//! both kinds of file.
//!
//! Spaces inside quotes and between the words of an unquoted value are kept.

use std::io::{Read, Seek, SeekFrom};

/// Where the reader is in the current field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a field: spaces are skipped.
    Start,
    /// Inside an unquoted value: spaces are held until the next character shows whether they
    /// are inside the value (kept) or at its end (dropped).
    Unquoted,
    /// Inside quotes: everything is kept.
    Quoted,
    /// Just after a quote inside a quoted value: a second quote is an escaped quote, anything
    /// else ends the quoted part.
    QuoteSeen,
    /// After the closing quote: spaces are skipped up to the delimiter.
    AfterQuote,
}

/// The most row starts a reader remembers (16 bytes each).
const MAX_STARTS: usize = 1 << 17;

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The field-space filter over `inner` (see the module documentation). Inactive, it passes the
/// bytes and seeks through unchanged.
pub(crate) struct Spaces<R> {
    inner: R,
    active: bool,
    delimiter: u8,
    quote: u8,
    state: State,
    /// Spaces held inside an unquoted value.
    held: usize,
    /// Input read from `inner` and not yet filtered.
    input: Vec<u8>,
    /// `input[next..]` is still to filter.
    next: usize,
    /// Output owed to the caller before more input is filtered (held spaces being released).
    owed: Vec<u8>,
    /// File offset of the next input byte, and stream offset of the next output byte.
    raw: u64,
    out: u64,
    /// (stream offset, file offset) of the row starts not yet asked for, in order; at most
    /// [`MAX_STARTS`] (a reader that asks for every row it reads keeps far fewer: the rows
    /// between its read point and the end of what its buffers hold).
    starts: std::collections::VecDeque<(u64, u64)>,
}

impl<R: Read> Spaces<R> {
    pub fn new(inner: R, active: bool, delimiter: u8, quote: u8) -> Self {
        Spaces {
            inner,
            active,
            delimiter,
            quote,
            state: State::Start,
            held: 0,
            input: Vec::new(),
            next: 0,
            owed: Vec::new(),
            raw: 0,
            out: 0,
            starts: std::collections::VecDeque::new(),
        }
    }

    /// The file offset of the row starting at `offset` of the filtered stream (the csv crate's
    /// byte position). Inactive, the two are the same. `None` when the row start is unknown
    /// (already forgotten).
    pub fn file_offset(&mut self, offset: u64) -> Option<u64> {
        if !self.active {
            return Some(offset);
        }
        while self.starts.front().is_some_and(|(o, _)| *o < offset) {
            self.starts.pop_front();
        }
        match self.starts.front() {
            Some((o, raw)) if *o == offset => Some(*raw),
            _ => None,
        }
    }

    /// Filters one byte; returns whether it is kept. Held spaces released by it go to `owed`.
    fn step(&mut self, b: u8) -> bool {
        let end = b == self.delimiter || b == b'\n' || b == b'\r';
        match self.state {
            State::Start => {
                if end {
                    true
                } else if is_space(b) {
                    false
                } else {
                    self.state = if b == self.quote {
                        State::Quoted
                    } else {
                        State::Unquoted
                    };
                    true
                }
            }
            State::Unquoted => {
                if end {
                    self.held = 0;
                    self.state = State::Start;
                    true
                } else if is_space(b) {
                    self.held += 1;
                    false
                } else {
                    if self.held > 0 {
                        // The held bytes were spaces or tabs; a run of them inside a value is
                        // rare enough that keeping them as spaces is not worth storing them.
                        self.owed.extend(std::iter::repeat_n(b' ', self.held));
                        self.held = 0;
                    }
                    true
                }
            }
            State::Quoted => {
                if b == self.quote {
                    self.state = State::QuoteSeen;
                }
                true
            }
            State::QuoteSeen => {
                if b == self.quote {
                    self.state = State::Quoted;
                    true
                } else if end {
                    self.state = State::Start;
                    true
                } else if is_space(b) {
                    self.state = State::AfterQuote;
                    false
                } else {
                    // Text after a closing quote: kept, as the csv crate keeps it.
                    self.state = State::Unquoted;
                    true
                }
            }
            State::AfterQuote => {
                if end {
                    self.state = State::Start;
                    true
                } else if is_space(b) {
                    false
                } else {
                    self.state = State::Unquoted;
                    true
                }
            }
        }
    }
}

impl<R: Read> Read for Spaces<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.active {
            return self.inner.read(buf);
        }
        let mut n = 0;
        loop {
            while n < buf.len() {
                if !self.owed.is_empty() {
                    let k = self.owed.len().min(buf.len() - n);
                    buf[n..n + k].copy_from_slice(&self.owed[..k]);
                    self.owed.drain(..k);
                    n += k;
                    self.out += k as u64;
                    continue;
                }
                let Some(&b) = self.input.get(self.next) else {
                    break;
                };
                self.next += 1;
                self.raw += 1;
                if self.step(b) {
                    if self.owed.is_empty() {
                        buf[n] = b;
                        n += 1;
                        self.out += 1;
                        // A line break outside quotes: a row may start after it.
                        if (b == b'\n' || b == b'\r') && self.state == State::Start {
                            if self.starts.len() >= MAX_STARTS {
                                self.starts.pop_front();
                            }
                            self.starts.push_back((self.out, self.raw));
                        }
                    } else {
                        // The byte goes after the spaces it released.
                        self.owed.push(b);
                    }
                }
            }
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // Nothing to give yet: read more (a chunk of dropped spaces gives nothing).
            self.input.resize(1 << 16, 0);
            let got = self.inner.read(&mut self.input)?;
            self.input.truncate(got);
            self.next = 0;
            if got == 0 {
                return Ok(0);
            }
        }
    }
}

/// Seeking goes to a file offset, which must be a row start (the csv crate seeks to the
/// positions it was given, and read.rs gives it file offsets from [`Spaces::file_offset`]); the
/// filtered stream then counts from there.
impl<R: Read + Seek> Seek for Spaces<R> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        if !self.active {
            return self.inner.seek(to);
        }
        let SeekFrom::Start(at) = to else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "a CSV file read with spaces around its fields seeks to row starts only",
            ));
        };
        let at = self.inner.seek(SeekFrom::Start(at))?;
        self.state = State::Start;
        self.held = 0;
        self.input.clear();
        self.next = 0;
        self.owed.clear();
        self.raw = at;
        self.out = at;
        self.starts.clear();
        self.starts.push_back((at, at));
        Ok(at)
    }
}

/// Whether the header line `head` (the file's first bytes; only its first line is looked at)
/// has spaces or tabs outside quotes around a field, as IDM's sample files do.
pub(crate) fn header_has_spaces(head: &[u8], delimiter: u8, quote: u8) -> bool {
    let line = match head.iter().position(|&b| b == b'\n') {
        Some(end) => &head[..=end],
        None => head,
    };
    let mut f = Spaces::new(std::io::empty(), true, delimiter, quote);
    let mut kept = 0;
    for &b in line {
        if f.step(b) {
            kept += 1 + f.owed.len();
            f.owed.clear();
        }
    }
    // Spaces still held at the end of the text were at the end of the last field.
    kept + f.owed.len() != line.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(text: &str) -> String {
        let mut out = String::new();
        Spaces::new(text.as_bytes(), true, b',', b'"')
            .read_to_string(&mut out)
            .unwrap_or_else(|e| panic!("{e}"));
        out
    }

    #[test]
    fn spaces_outside_quotes_are_dropped_and_inside_kept() {
        assert_eq!(filter("\"a\", \"b\"\n"), "\"a\",\"b\"\n");
        assert_eq!(filter(" x ,\t y \r\n"), "x,y\r\n");
        assert_eq!(
            filter("\" a \" , Mary  Ann ,\"q\"\"x\" \n"),
            "\" a \",Mary  Ann,\"q\"\"x\"\n"
        );
        assert_eq!(filter("a,,b\n"), "a,,b\n");
        assert_eq!(filter("a,   \n"), "a,\n");
    }

    #[test]
    fn a_tab_delimiter_is_not_a_space() {
        let mut out = String::new();
        Spaces::new(" a \t b \n".as_bytes(), true, b'\t', b'"')
            .read_to_string(&mut out)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out, "a\tb\n");
    }

    #[test]
    fn spaces_split_across_reads_are_still_handled() {
        // A reader that gives one byte at a time.
        struct OneByte<'a>(&'a [u8]);
        impl Read for OneByte<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                match (self.0.split_first(), buf.first_mut()) {
                    (Some((b, rest)), Some(slot)) => {
                        *slot = *b;
                        self.0 = rest;
                        Ok(1)
                    }
                    _ => Ok(0),
                }
            }
        }
        let mut out = Vec::new();
        let mut r = Spaces::new(OneByte(b"\"a\",    \"b c\" ,  d  e  \n"), true, b',', b'"');
        let mut one = [0u8; 1];
        while r.read(&mut one).unwrap_or_else(|e| panic!("{e}")) == 1 {
            out.push(one[0]);
        }
        assert_eq!(String::from_utf8_lossy(&out), "\"a\",\"b c\",d  e\n");
    }

    #[test]
    fn row_starts_map_to_file_offsets_and_seeking_resumes_there() {
        let text = b"\"a\", \"b\"\n\"1\", \"x, y\"\r\n 2 , 3\n";
        let mut r = Spaces::new(std::io::Cursor::new(&text[..]), true, b',', b'"');
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            String::from_utf8_lossy(&out),
            "\"a\",\"b\"\n\"1\",\"x, y\"\r\n2,3\n"
        );
        // The filtered rows start at 8 and 20; in the file at 9 and 22.
        assert_eq!(r.file_offset(8), Some(9));
        assert_eq!(r.file_offset(20), Some(22));
        assert_eq!(r.file_offset(8), None, "forgotten once passed");
        r.seek(SeekFrom::Start(22))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut rest = String::new();
        r.read_to_string(&mut rest)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rest, "2,3\n");
        assert_eq!(r.file_offset(22), Some(22));
    }

    #[test]
    fn the_header_decides() {
        assert!(header_has_spaces(b"\"a\", \"b\"\n1,2\n", b',', b'"'));
        assert!(header_has_spaces(b"a ,b\n", b',', b'"'));
        assert!(header_has_spaces(b"a,b \r\n", b',', b'"'));
        assert!(!header_has_spaces(b"a,b\n1, 2\n", b',', b'"'));
        assert!(!header_has_spaces(b"\"a b\",\"c\"\r\n", b',', b'"'));
        assert!(!header_has_spaces(b"first name,b", b',', b'"'));
    }

    #[test]
    fn inactive_passes_everything() {
        let mut out = String::new();
        Spaces::new(" a , b \n".as_bytes(), false, b',', b'"')
            .read_to_string(&mut out)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out, " a , b \n");
    }
}
