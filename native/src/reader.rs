//! `CsvRecords`: CSV text split into records exactly as Python's `csv.reader` splits it.
//!
//! The import reads its file as text (`newline=""`) in large blocks and feeds them here, instead
//! of having the csv module build a Python string per cell. This is CPython 3.11's `_csv.c`
//! parser for the dialect the import uses (a delimiter, `"` quoting with doubled quotes, no
//! escape character, not strict), fed line by line as the csv module is (lines end after `\n`,
//! `\r\n` or a lone `\r`), with the same line numbers. Where the csv module would raise or take
//! its end-of-file path (a quoted field still open at the end, a field over its size limit), it
//! stops: `python_from` gives the line and the text from the start of that record, and Python's
//! csv module reads the rest of the file.

use std::collections::VecDeque;

use pyo3::prelude::*;

/// The csv module's default `field_size_limit`, in characters.
const FIELD_LIMIT: usize = 131_072;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    StartRecord,
    StartField,
    InField,
    InQuotedField,
    QuoteInQuotedField,
    EatCrnl,
}

/// How a record's parse ended.
enum Parsed {
    /// The record, the byte offset just after its last line, and its number of lines.
    Complete(Record, usize, i64),
    /// The text ran out inside the record (more is needed, or the file ended in quotes).
    Incomplete,
    /// What the csv module would refuse or treat specially: Python takes it from here.
    Python,
}

#[pyclass(module = "connectors.csv._native")]
pub struct CsvRecords {
    delimiter: char,
    /// Text from the start of the first record not parsed yet.
    pending: String,
    /// The line that record starts on.
    next_line: i64,
    /// Parsed records and the line each starts on (blank lines are empty records).
    pub records: VecDeque<(i64, Record)>,
    /// Where Python's csv module must go on: (line, the text from there), once set.
    python_from: Option<(i64, String)>,
    /// Whether the first record that is not a blank line (the header) is still to be dropped.
    header: bool,
    /// Cells the records are expected to have (the last record's count, at least 8).
    cells_hint: usize,
}

#[pymethods]
impl CsvRecords {
    /// Records of text split on ``delimiter``, the first of them on line ``first_line``; with
    /// ``header``, the first record that is not a blank line is dropped.
    #[new]
    #[pyo3(signature = (delimiter, first_line, header = false))]
    pub fn new(delimiter: char, first_line: i64, header: bool) -> Self {
        Self {
            delimiter,
            pending: String::new(),
            next_line: first_line,
            records: VecDeque::new(),
            python_from: None,
            header,
            cells_hint: 8,
        }
    }

    /// Parse the records ``text`` completes (``last``: the file ends with it). Answers how many
    /// records (blank lines included) are waiting to be encoded.
    pub fn feed(&mut self, text: &str, last: bool) -> usize {
        if let Some((_, rest)) = &mut self.python_from {
            rest.push_str(text); // the csv module reads it all, from where this reader stopped
            return self.records.len();
        }
        self.pending.push_str(text);
        let buffer = std::mem::take(&mut self.pending);
        let mut start = 0;
        while start < buffer.len() {
            match self.parse_record(&buffer, start, last) {
                Parsed::Complete(record, end, lines) => {
                    self.cells_hint = self.cells_hint.max(record.ends.len());
                    if self.header && !record.is_empty() {
                        self.header = false;
                    } else {
                        self.records.push_back((self.next_line, record));
                    }
                    self.next_line += lines;
                    start = end;
                }
                Parsed::Incomplete if !last => break,
                Parsed::Incomplete | Parsed::Python => {
                    self.python_from = Some((self.next_line, buffer[start..].to_owned()));
                    start = buffer.len();
                }
            }
        }
        self.pending = buffer[start..].to_owned();
        self.records.len()
    }

    /// Records parsed and not taken yet.
    fn __len__(&self) -> usize {
        self.records.len()
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next parsed record and the line it starts on (a blank line is an empty record).
    fn __next__(&mut self) -> Option<(i64, Vec<String>)> {
        let (line, record) = self.records.pop_front()?;
        Some((
            line,
            record.cells().into_iter().map(str::to_owned).collect(),
        ))
    }

    /// Whether Python's csv module is to read the rest of the file (this reader only keeps
    /// what it is fed from then on, for ``python_from``).
    pub fn handed_over(&self) -> bool {
        self.python_from.is_some()
    }

    /// (line, text) from which Python's csv module must read the rest of the file, once the
    /// parsed records before it are encoded; None while this reader goes on.
    fn python_from(&self) -> Option<(i64, String)> {
        if self.records.is_empty() {
            self.python_from.clone()
        } else {
            None
        }
    }
}

/// The end of the line starting at ``start`` (after its terminator), or None when the line may go
/// on in text still to come.
fn line_end(buffer: &str, start: usize, last: bool) -> Option<usize> {
    let bytes = buffer.as_bytes();
    match memchr::memchr2(b'\n', b'\r', &bytes[start..]) {
        Some(offset) => {
            let at = start + offset;
            if bytes[at] == b'\n' {
                Some(at + 1)
            } else if at + 1 < bytes.len() {
                Some(if bytes[at + 1] == b'\n' {
                    at + 2
                } else {
                    at + 1
                })
            } else if last {
                Some(at + 1)
            } else {
                None // a \r at the end: a \n may follow
            }
        }
        None if last => Some(bytes.len()),
        None => None,
    }
}

impl CsvRecords {
    /// The record starting at ``start``, parsed line by line as `_csv.c` does. Its states are
    /// taken a run of bytes at a time: the characters that change a state (the delimiter, the
    /// quote, CR, LF) are ASCII, which never occurs inside a multi-byte UTF-8 character.
    fn parse_record(&self, buffer: &str, start: usize, last: bool) -> Parsed {
        let bytes = buffer.as_bytes();
        let delimiter = self.delimiter as u8;
        let mut state = State::StartRecord;
        let mut record = Record {
            text: String::new(),
            ends: Vec::with_capacity(self.cells_hint),
        };
        let mut field_start = 0; // in record.text
        let mut at = start;
        let mut lines = 0; // each turn of the loop takes one line, as the csv module reads them
        loop {
            if at >= bytes.len() {
                return Parsed::Incomplete;
            }
            let Some(end) = line_end(buffer, at, last) else {
                return Parsed::Incomplete;
            };
            if record.text.capacity() == 0 {
                // Room for a record on one line: its cells never regrow the text.
                record.text.reserve(end - at);
            }
            let mut index = at;
            while index < end {
                let c = bytes[index];
                let is_break = c == b'\n' || c == b'\r';
                match state {
                    State::StartRecord if is_break => {
                        state = State::EatCrnl;
                        index += 1;
                    }
                    State::StartRecord | State::StartField => {
                        if is_break {
                            record.end_field(&mut field_start);
                            state = State::EatCrnl;
                            index += 1;
                        } else if c == b'"' {
                            state = State::InQuotedField;
                            index += 1;
                        } else if c == delimiter {
                            record.end_field(&mut field_start);
                            state = State::StartField;
                            index += 1;
                        } else {
                            state = State::InField;
                        }
                    }
                    State::InField => {
                        // Everything up to the delimiter or the line's end is the field's.
                        let run = memchr::memchr3(delimiter, b'\n', b'\r', &bytes[index..end])
                            .map_or(end, |offset| index + offset);
                        record.text.push_str(&buffer[index..run]);
                        if record.too_long(field_start) {
                            return Parsed::Python; // "field larger than field limit"
                        }
                        index = run;
                        if index < end {
                            record.end_field(&mut field_start);
                            state = if bytes[index] == delimiter {
                                State::StartField
                            } else {
                                State::EatCrnl
                            };
                            index += 1;
                        }
                    }
                    State::InQuotedField => {
                        // Everything up to the next quote is the field's, line breaks included.
                        let run = memchr::memchr(b'"', &bytes[index..end])
                            .map_or(end, |offset| index + offset);
                        record.text.push_str(&buffer[index..run]);
                        if record.too_long(field_start) {
                            return Parsed::Python;
                        }
                        index = run;
                        if index < end {
                            state = State::QuoteInQuotedField;
                            index += 1;
                        }
                    }
                    State::QuoteInQuotedField => {
                        if c == b'"' {
                            record.text.push('"');
                            if record.too_long(field_start) {
                                return Parsed::Python;
                            }
                            state = State::InQuotedField;
                        } else if c == delimiter {
                            record.end_field(&mut field_start);
                            state = State::StartField;
                        } else if is_break {
                            record.end_field(&mut field_start);
                            state = State::EatCrnl;
                        } else {
                            state = State::InField; // not strict: the character is the field's
                            continue;
                        }
                        index += 1;
                    }
                    State::EatCrnl if is_break => index += 1,
                    State::EatCrnl => return Parsed::Python, // "new-line character seen in unquoted field"
                }
            }
            // The end of the line (the csv module's EOL).
            state = match state {
                State::StartRecord | State::EatCrnl => State::StartRecord,
                State::StartField | State::InField | State::QuoteInQuotedField => {
                    record.end_field(&mut field_start);
                    State::StartRecord
                }
                State::InQuotedField => State::InQuotedField,
            };
            at = end;
            lines += 1;
            if state == State::StartRecord {
                return Parsed::Complete(record, end, lines);
            }
            if at >= bytes.len() && last {
                return Parsed::Python; // the file ends inside quotes
            }
        }
    }
}

/// A record's cells, in one string: each cell followed by a NUL, ``ends`` where each cell ends
/// in ``text``. The cells joined by NUL, what a row's raw pre-digest reads, are then one slice.
#[derive(Default)]
pub struct Record {
    pub text: String,
    pub ends: Vec<usize>,
}

impl Record {
    fn end_field(&mut self, field_start: &mut usize) {
        self.ends.push(self.text.len());
        self.text.push('\0');
        *field_start = self.text.len();
    }

    /// Whether the cell being read has more characters than the csv module takes.
    fn too_long(&self, field_start: usize) -> bool {
        self.text.len() - field_start > FIELD_LIMIT
            && self.text[field_start..].chars().count() > FIELD_LIMIT
    }

    /// A record of these cells.
    pub fn from_cells(cells: &[String]) -> Self {
        let mut record = Self::default();
        let mut start = 0;
        for cell in cells {
            record.text.push_str(cell);
            record.end_field(&mut start);
        }
        record
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The cells, borrowed.
    pub fn cells(&self) -> Vec<&str> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let cell = &self.text[start..end];
                start = end + 1;
                cell
            })
            .collect()
    }

    /// The cells joined by NUL.
    pub fn joined(&self) -> &[u8] {
        let text = self.text.as_bytes();
        &text[..text.len().saturating_sub(1)]
    }
}
