//! A cell's typed value: converted from its text exactly as `connectors/csv/values.py` does, and
//! written as orjson writes it (for the row digest) and as Avro writes it (for the event).
//!
//! Every converter answers `None` when it cannot be sure to agree with Python (a text Python
//! might read differently, or would refuse): the row then goes to Python, which converts it or
//! names its errors.

use std::borrow::Cow;

use crate::text;

/// A directive of a numeric date format (`%d/%m/%Y`), or a literal between them.
#[derive(Clone, Debug)]
pub enum Token {
    Literal(Vec<u8>),
    Directive(u8),
}

#[derive(Clone, Debug)]
pub enum Kind {
    String,
    Integer,
    Decimal {
        separator: u8,
    },
    Boolean {
        trues: Vec<String>,
        falses: Vec<String>,
    },
    Date {
        tokens: Option<Vec<Token>>,
    },
    Timestamp {
        tokens: Option<Vec<Token>>,
    },
    List {
        separator: String,
    },
}

#[derive(Clone, Copy, Debug)]
pub struct Instant {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub microsecond: u32,
    pub offset_minutes: i32,
}

/// A converted cell. Text borrows from the row's cells when no transform changed it: a row's
/// values are built for each row, and most of its text is used as read.
#[derive(Clone, Debug)]
pub enum Value<'a> {
    Null,
    Str(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Date(i32, u32, u32),
    Timestamp(Instant),
    List(Vec<&'a str>),
    /// A list given as a default (owned: defaults outlive the rows).
    OwnedList(Vec<String>),
}

/// The cell converted by `kind`: its text is already stripped (when the type strips) and not empty.
pub fn convert<'a>(kind: &Kind, text: Cow<'a, str>) -> Option<Value<'a>> {
    let text = match (kind, text) {
        (Kind::String, text) => return Some(Value::Str(text)),
        (Kind::List { separator }, Cow::Borrowed(text)) => {
            return Some(Value::List(
                text.split(separator.as_str())
                    .map(text::strip)
                    .filter(|item| !item.is_empty())
                    .collect(),
            ))
        }
        (_, text) => text,
    };
    let text = text.as_ref();
    match kind {
        Kind::String => unreachable!("taken above"),
        Kind::Integer => integer(text).map(Value::Int),
        Kind::Decimal { separator } => decimal(text, *separator).map(Value::Float),
        Kind::Boolean { trues, falses } => {
            let lowered = text::lower(text)?;
            if falses.contains(&lowered) {
                Some(Value::Bool(false))
            } else if trues.contains(&lowered) {
                Some(Value::Bool(true))
            } else {
                None
            }
        }
        Kind::Date { tokens } => {
            let parsed = match tokens {
                Some(tokens) => numeric(tokens, text)?,
                None => iso_instant(text)?,
            };
            Some(Value::Date(parsed.year, parsed.month, parsed.day))
        }
        Kind::Timestamp { tokens } => {
            let parsed = match tokens {
                Some(tokens) => numeric(tokens, text)?,
                None => iso_instant(text)?,
            };
            Some(Value::Timestamp(parsed))
        }
        Kind::List { separator } => Some(Value::OwnedList(
            text.split(separator.as_str())
                .map(text::strip)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect(),
        )),
    }
}

fn integer(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let digits = match bytes.first()? {
        b'+' | b'-' => &bytes[1..],
        _ => bytes,
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    text.parse::<i64>().ok()
}

fn decimal(text: &str, separator: u8) -> Option<f64> {
    // Only the plain forms (sign, digits, one separator, exponent), where float() and Rust's
    // parser both round correctly to the same double; "inf", "nan", "1_0" and the like go to Python.
    let bytes = text.as_bytes();
    let mut index = 0;
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        index = 1;
    }
    let start = index;
    while index < bytes.len() && bytes[index].is_ascii_digit() {
        index += 1;
    }
    let mut digits = index - start;
    let mut normalized: Option<String> = None;
    if index < bytes.len() && bytes[index] == separator {
        index += 1;
        let fraction = index;
        while index < bytes.len() && bytes[index].is_ascii_digit() {
            index += 1;
        }
        digits += index - fraction;
        if separator != b'.' {
            normalized = Some(text.replacen(',', ".", 1));
        }
    }
    if digits == 0 {
        return None;
    }
    if index < bytes.len() && (bytes[index] == b'e' || bytes[index] == b'E') {
        index += 1;
        if index < bytes.len() && (bytes[index] == b'+' || bytes[index] == b'-') {
            index += 1;
        }
        let exponent = index;
        while index < bytes.len() && bytes[index].is_ascii_digit() {
            index += 1;
        }
        if index == exponent {
            return None;
        }
    }
    if index != bytes.len() {
        return None;
    }
    let value = normalized.as_deref().unwrap_or(text).parse::<f64>().ok()?;
    value.is_finite().then_some(value)
}

// --- dates and times ----------------------------------------------------------------------------

fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(year) => 29,
        _ => 28,
    }
}

/// Days from 1970-01-01 (Howard Hinnant's `days_from_civil`).
pub fn epoch_days(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// What Python's `datetime(...)` accepts.
fn valid(instant: &Instant) -> bool {
    (1..=9999).contains(&instant.year)
        && (1..=12).contains(&instant.month)
        && instant.day >= 1
        && instant.day <= days_in_month(instant.year, instant.month)
        && instant.hour < 24
        && instant.minute < 60
        && instant.second < 60
}

fn midnight(year: i32, month: u32, day: u32) -> Instant {
    Instant {
        year,
        month,
        day,
        hour: 0,
        minute: 0,
        second: 0,
        microsecond: 0,
        offset_minutes: 0,
    }
}

/// A numeric `strftime` format matched like Python's compiled regular expression (greedy digit
/// runs with backtracking, then a full match).
fn numeric(tokens: &[Token], text: &str) -> Option<Instant> {
    if !text.is_ascii() {
        return None; // Python's \d also matches other scripts' digits
    }
    let mut captures: Vec<(u8, usize, usize)> = Vec::with_capacity(tokens.len());
    if !match_tokens(tokens, text.as_bytes(), 0, &mut captures) {
        return None;
    }
    let mut instant = midnight(0, 0, 0);
    let bytes = text.as_bytes();
    for (directive, start, end) in captures {
        let number: u32 = std::str::from_utf8(&bytes[start..end]).ok()?.parse().ok()?;
        match directive {
            b'Y' => instant.year = number as i32,
            b'y' => instant.year = number as i32 + if number >= 69 { 1900 } else { 2000 },
            b'm' => instant.month = number,
            b'd' => instant.day = number,
            b'H' => instant.hour = number,
            b'M' => instant.minute = number,
            b'S' => instant.second = number,
            b'f' => instant.microsecond = number * 10u32.pow(6 - (end - start) as u32),
            _ => return None,
        }
    }
    valid(&instant).then_some(instant)
}

fn digit_run(directive: u8) -> (usize, usize) {
    match directive {
        b'Y' => (4, 4),
        b'y' => (2, 2),
        b'f' => (1, 6),
        _ => (1, 2),
    }
}

fn match_tokens(
    tokens: &[Token],
    text: &[u8],
    at: usize,
    captures: &mut Vec<(u8, usize, usize)>,
) -> bool {
    let Some((token, rest)) = tokens.split_first() else {
        return at == text.len();
    };
    match token {
        Token::Literal(literal) => {
            text[at..].starts_with(literal)
                && match_tokens(rest, text, at + literal.len(), captures)
        }
        Token::Directive(directive) => {
            let (least, most) = digit_run(*directive);
            let available = text[at..]
                .iter()
                .take(most)
                .take_while(|b| b.is_ascii_digit())
                .count();
            let mut length = available;
            while length >= least {
                captures.push((*directive, at, at + length));
                if match_tokens(rest, text, at + length, captures) {
                    return true;
                }
                captures.pop();
                length -= 1;
            }
            false
        }
    }
}

fn two_digits(bytes: &[u8], at: usize) -> Option<u32> {
    let pair = bytes.get(at..at + 2)?;
    pair.iter()
        .all(u8::is_ascii_digit)
        .then(|| u32::from(pair[0] - b'0') * 10 + u32::from(pair[1] - b'0'))
}

/// The common ISO 8601 forms `datetime.fromisoformat` reads: `YYYY-MM-DD`, then optionally `T`
/// or a space, `HH:MM[:SS[.fff|.ffffff]]` and `Z` or `+HH:MM`. Other forms go to Python.
fn iso_instant(text: &str) -> Option<Instant> {
    let bytes = text.as_bytes();
    if bytes.len() < 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let head = bytes.get(0..4)?;
    if !head.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let year = std::str::from_utf8(head).ok()?.parse::<i32>().ok()?;
    let mut instant = midnight(year, two_digits(bytes, 5)?, two_digits(bytes, 8)?);
    let mut at = 10;
    if at < bytes.len() {
        if bytes[at] != b'T' && bytes[at] != b' ' {
            return None;
        }
        instant.hour = two_digits(bytes, at + 1)?;
        if bytes.get(at + 3) != Some(&b':') {
            return None;
        }
        instant.minute = two_digits(bytes, at + 4)?;
        at += 6;
        if bytes.get(at) == Some(&b':') {
            instant.second = two_digits(bytes, at + 1)?;
            at += 3;
            if bytes.get(at) == Some(&b'.') {
                let digits = bytes[at + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                if digits != 3 && digits != 6 {
                    return None;
                }
                let fraction: u32 = std::str::from_utf8(&bytes[at + 1..at + 1 + digits])
                    .ok()?
                    .parse()
                    .ok()?;
                instant.microsecond = if digits == 3 {
                    fraction * 1000
                } else {
                    fraction
                };
                at += 1 + digits;
            }
        }
        match bytes.get(at) {
            None => {}
            Some(b'Z') if at + 1 == bytes.len() => {}
            Some(sign @ (b'+' | b'-')) if at + 6 == bytes.len() && bytes[at + 3] == b':' => {
                let hours = two_digits(bytes, at + 1)?;
                let minutes = two_digits(bytes, at + 4)?;
                if hours > 23 || minutes > 59 {
                    return None;
                }
                let offset = (hours * 60 + minutes) as i32;
                instant.offset_minutes = if *sign == b'-' { -offset } else { offset };
            }
            _ => return None,
        }
    } else if text.len() != 10 {
        return None;
    }
    valid(&instant).then_some(instant)
}

impl Instant {
    /// Milliseconds since the epoch, rounded down (Python's `(value - EPOCH) // 1ms`).
    pub fn epoch_millis(&self) -> i64 {
        let seconds = epoch_days(self.year, self.month, self.day) * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - i64::from(self.offset_minutes) * 60;
        (seconds * 1_000_000 + i64::from(self.microsecond)).div_euclid(1000)
    }
}

// --- orjson's text of a value ------------------------------------------------------------------

/// The decimal digits of ``value`` (no allocation, unlike `to_string`).
pub fn push_int(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    let mut digits = [0u8; 20];
    let at = digits_of(value.unsigned_abs(), &mut digits);
    out.extend_from_slice(&digits[at..]);
}

/// Writes the decimal digits of ``number`` at the end of ``digits``; answers where they start.
pub fn digits_of(mut number: u64, digits: &mut [u8; 20]) -> usize {
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (number % 10) as u8;
        number /= 10;
        if number == 0 {
            return at;
        }
    }
}

/// ``value`` with leading zeros to ``width`` digits (values here are never negative).
fn push_padded(out: &mut Vec<u8>, value: u32, width: usize) {
    let mut digits = [0u8; 20];
    let at = digits_of(u64::from(value), &mut digits);
    let written = digits.len() - at;
    if written < width {
        out.extend(std::iter::repeat_n(b'0', width - written));
    }
    out.extend_from_slice(&digits[at..]);
}

pub fn json_string(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let needs_escape = |byte: u8| byte < 0x20 || byte == b'"' || byte == b'\\';
    out.push(b'"');
    let bytes = text.as_bytes();
    // Most text has nothing to escape: copied in one go up to the first byte that has.
    let plain = bytes
        .iter()
        .position(|&byte| needs_escape(byte))
        .unwrap_or(bytes.len());
    out.extend_from_slice(&bytes[..plain]);
    for &byte in &bytes[plain..] {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0x00..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0xf)]);
            }
            _ => out.push(byte),
        }
    }
    out.push(b'"');
}

/// A double as orjson 3.13 writes it: the shortest digits that read back the same, in plain
/// notation for decimal exponents -5..=15, otherwise as `1.5e+16` / `1e-7`. ``value`` is finite
/// (decimal cells and defaults are checked when read).
pub fn json_float(out: &mut Vec<u8>, value: f64) {
    let mut buffer = ryu::Buffer::new();
    let shortest = Shortest::of(buffer.format_finite(value));
    let (digits, exponent) = (shortest.digits(), shortest.exponent);
    if shortest.negative {
        out.push(b'-');
    }
    if (-5..16).contains(&exponent) {
        if exponent < 0 {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-exponent - 1) as usize));
            out.extend_from_slice(digits);
        } else {
            let whole = exponent as usize + 1;
            if digits.len() <= whole {
                out.extend_from_slice(digits);
                out.extend(std::iter::repeat_n(b'0', whole - digits.len()));
                out.extend_from_slice(b".0");
            } else {
                out.extend_from_slice(&digits[..whole]);
                out.push(b'.');
                out.extend_from_slice(&digits[whole..]);
            }
        }
    } else {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.extend_from_slice(if exponent > 0 { b"e+" } else { b"e" });
        push_int(out, i64::from(exponent));
    }
}

/// A double's shortest round-trip digits (no leading or trailing zeros; ``0`` for zero) and the
/// decimal exponent of the first, read off ryu's text (``123.45``, ``0.001``, ``1.5e-7``...).
struct Shortest {
    negative: bool,
    buffer: [u8; 24],
    length: usize,
    exponent: i32,
}

impl Shortest {
    fn of(text: &str) -> Self {
        let (negative, text) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = match text.split_once('e') {
            Some((mantissa, exponent)) => (mantissa, exponent.parse().expect("ryu's exponent")),
            None => (text, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let mut shortest = Self {
            negative,
            buffer: [0; 24],
            length: 0,
            exponent: 0,
        };
        let all = whole.bytes().chain(fraction.bytes());
        let Some(first) = all.clone().position(|digit| digit != b'0') else {
            shortest.buffer[0] = b'0';
            shortest.length = 1;
            return shortest;
        };
        shortest.exponent = exponent + whole.len() as i32 - 1 - first as i32;
        for digit in all.skip(first) {
            shortest.buffer[shortest.length] = digit;
            shortest.length += 1;
        }
        while shortest.length > 1 && shortest.buffer[shortest.length - 1] == b'0' {
            shortest.length -= 1;
        }
        shortest
    }

    fn digits(&self) -> &[u8] {
        &self.buffer[..self.length]
    }
}

fn json_date(out: &mut Vec<u8>, year: i32, month: u32, day: u32) {
    push_padded(out, year as u32, 4);
    out.push(b'-');
    push_padded(out, month, 2);
    out.push(b'-');
    push_padded(out, day, 2);
}

/// The value as orjson writes it inside the row's value list.
pub fn write_json(out: &mut Vec<u8>, value: &Value<'_>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Str(text) => json_string(out, text),
        Value::Int(number) => push_int(out, *number),
        Value::Float(number) => json_float(out, *number),
        Value::Bool(flag) => out.extend_from_slice(if *flag { b"true" } else { b"false" }),
        Value::Date(year, month, day) => {
            out.push(b'"');
            json_date(out, *year, *month, *day);
            out.push(b'"');
        }
        Value::Timestamp(t) => {
            out.push(b'"');
            json_date(out, t.year, t.month, t.day);
            for (separator, number) in [(b'T', t.hour), (b':', t.minute), (b':', t.second)] {
                out.push(separator);
                push_padded(out, number, 2);
            }
            if t.microsecond != 0 {
                out.push(b'.');
                push_padded(out, t.microsecond, 6);
            }
            out.push(if t.offset_minutes < 0 { b'-' } else { b'+' });
            let offset = t.offset_minutes.unsigned_abs();
            push_padded(out, offset / 60, 2);
            out.push(b':');
            push_padded(out, offset % 60, 2);
            out.push(b'"');
        }
        Value::List(items) => json_list(out, items),
        Value::OwnedList(items) => json_list(out, items),
    }
}

// --- Avro --------------------------------------------------------------------------------------

pub fn avro_long(out: &mut Vec<u8>, value: i64) {
    let mut number = ((value << 1) ^ (value >> 63)) as u64;
    while number > 0x7f {
        out.push((number as u8 & 0x7f) | 0x80);
        number >>= 7;
    }
    out.push(number as u8);
}

pub fn avro_string(out: &mut Vec<u8>, text: &str) {
    avro_long(out, text.len() as i64);
    out.extend_from_slice(text.as_bytes());
}

/// Union branch indexes of the attribute value types, as encoded Avro longs.
pub struct Branches {
    pub string: Vec<u8>,
    pub long: Vec<u8>,
    pub double: Vec<u8>,
    pub boolean: Vec<u8>,
    pub date: Vec<u8>,
    pub timestamp: Vec<u8>,
    pub list: Vec<u8>,
}

/// The value's union branch and body (the `set` map's value).
pub fn write_avro(out: &mut Vec<u8>, value: &Value<'_>, branches: &Branches) {
    match value {
        Value::Null => unreachable!("empty values are left out of the map"),
        Value::Str(text) => {
            out.extend_from_slice(&branches.string);
            avro_string(out, text);
        }
        Value::Int(number) => {
            out.extend_from_slice(&branches.long);
            avro_long(out, *number);
        }
        Value::Float(number) => {
            out.extend_from_slice(&branches.double);
            out.extend_from_slice(&number.to_le_bytes());
        }
        Value::Bool(flag) => {
            out.extend_from_slice(&branches.boolean);
            out.push(u8::from(*flag));
        }
        Value::Date(year, month, day) => {
            out.extend_from_slice(&branches.date);
            avro_long(out, epoch_days(*year, *month, *day));
        }
        Value::Timestamp(instant) => {
            out.extend_from_slice(&branches.timestamp);
            avro_long(out, instant.epoch_millis());
        }
        Value::List(items) => avro_list(out, items, branches),
        Value::OwnedList(items) => avro_list(out, items, branches),
    }
}

fn json_list<S: AsRef<str>>(out: &mut Vec<u8>, items: &[S]) {
    out.push(b'[');
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        json_string(out, item.as_ref());
    }
    out.push(b']');
}

fn avro_list<S: AsRef<str>>(out: &mut Vec<u8>, items: &[S], branches: &Branches) {
    out.extend_from_slice(&branches.list);
    if !items.is_empty() {
        avro_long(out, items.len() as i64);
        for item in items {
            avro_string(out, item.as_ref());
        }
    }
    out.push(0);
}
