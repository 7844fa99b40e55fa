//! `RowEncoder`: a sync's rows, from CSV records to the import's outputs.
//!
//! For each row: its digest-store key and raw pre-digest, the stored digests looked up through a
//! Python callable (an unchanged text stops there), the cells converted, the row digest (BLAKE2b
//! of the values as orjson writes them), and the encoded `CustomerUpdate` Envelope, byte for byte
//! what `RowPlan` and `Codec.encode_event` make. A row it cannot convert with certainty (a bad
//! cell, a text only Python reads) is handed back, in file order, for Python to take.
//! `encode_block` runs these phases over a block of text, the heavy ones without the GIL;
//! `encode` over lists of cells, one row at a time.

use std::borrow::Cow;

use blake2b_simd::{Params, State};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use crate::reader::{CsvRecords, Record};
use crate::text;
use crate::values::{self, Branches, Kind, Token, Value};

const DIGEST_BYTES: usize = 16;

struct Column {
    position: usize,
    kind: Kind,
    /// Every type but strings ignores surrounding spaces.
    strip: bool,
    /// `trim`, `lower`, `upper`, in order.
    transforms: Vec<u8>,
    /// The value of an empty cell, when the column has a default.
    default: Option<Value<'static>>,
    required: bool,
}

/// What one call did: the records to produce, the digests to store once they are acked, the
/// key-index entries, how many rows were unchanged, how many made records, and where it stopped
/// (``encode``) or how many rows it read (a part of ``encode_block``'s outcome).
type Encoded<'py> = (
    ListPair<'py>,
    ListPair<'py>,
    ListPair<'py>,
    usize,
    usize,
    usize,
);

/// (keys, values): two lists of bytes, entry by entry.
type ListPair<'py> = (Bound<'py, PyList>, Bound<'py, PyList>);

#[pyclass(frozen, module = "connectors.csv._native")]
pub struct RowEncoder {
    width: usize,
    key_index: usize,
    columns: Vec<Column>,
    /// (slot in the values, Avro string of the attribute name), in the map's order.
    stored: Vec<(usize, Vec<u8>)>,
    /// (field name, slot) of the stored string attributes the key index records.
    identities: Vec<(String, usize)>,
    unset_empty: bool,
    /// Names of the stored attributes (for `unset`), by position in `stored`.
    stored_names: Vec<Vec<u8>>,
    /// The Envelope header (single-object marker and fingerprint).
    header: Vec<u8>,
    /// occurred_at, received_at, source and the payload's union index.
    middle: Vec<u8>,
    /// The `campaign_id` field.
    campaign: Vec<u8>,
    branches: Branches,
    event_ids: State,
    raw_key: Vec<u8>,
    row_salt: Vec<u8>,
    row_person: Vec<u8>,
    /// `sync id + NUL`, the start of every digest-store key.
    store_prefix: Vec<u8>,
}

fn tokens(spec: Option<Vec<(String, String)>>) -> PyResult<Option<Vec<Token>>> {
    let Some(spec) = spec else { return Ok(None) };
    let mut tokens = Vec::with_capacity(spec.len());
    for (kind, value) in spec {
        tokens.push(match kind.as_str() {
            "literal" => Token::Literal(value.into_bytes()),
            "directive" if value.len() == 1 && "YymdHMSf".contains(value.as_str()) => {
                Token::Directive(value.as_bytes()[0])
            }
            _ => {
                return Err(PyValueError::new_err(format!(
                    "unknown format token {kind} {value:?}"
                )))
            }
        });
    }
    Ok(Some(tokens))
}

fn kind_of(spec: &Bound<'_, PyTuple>) -> PyResult<Kind> {
    let name: String = spec.get_item(0)?.extract()?;
    Ok(match name.as_str() {
        "string" => Kind::String,
        "integer" => Kind::Integer,
        "decimal" => {
            let separator: String = spec.get_item(1)?.extract()?;
            Kind::Decimal {
                separator: if separator == "," { b',' } else { b'.' },
            }
        }
        "boolean" => Kind::Boolean {
            trues: spec.get_item(1)?.extract()?,
            falses: spec.get_item(2)?.extract()?,
        },
        "date" => Kind::Date {
            tokens: tokens(spec.get_item(1)?.extract()?)?,
        },
        "timestamp" => Kind::Timestamp {
            tokens: tokens(spec.get_item(1)?.extract()?)?,
        },
        "list" => Kind::List {
            separator: spec.get_item(1)?.extract()?,
        },
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown column type {other}"
            )))
        }
    })
}

/// A default as Python describes it: None, or (type, value) with dates and timestamps as tuples
/// of their fields (a timestamp's last field is its UTC offset in minutes).
fn default_of(spec: &Bound<'_, PyAny>) -> PyResult<Option<Value<'static>>> {
    if spec.is_none() {
        return Ok(None);
    }
    let (kind, value): (String, Bound<'_, PyAny>) = spec.extract()?;
    Ok(Some(match kind.as_str() {
        "string" => Value::Str(Cow::Owned(value.extract()?)),
        "integer" => Value::Int(value.extract()?),
        "decimal" => Value::Float(value.extract()?),
        "boolean" => Value::Bool(value.extract()?),
        "date" => {
            let (year, month, day): (i32, u32, u32) = value.extract()?;
            Value::Date(year, month, day)
        }
        "timestamp" => {
            let fields: (i32, u32, u32, u32, u32, u32, u32, i32) = value.extract()?;
            let (year, month, day, hour, minute, second, microsecond, offset_minutes) = fields;
            Value::Timestamp(values::Instant {
                year,
                month,
                day,
                hour,
                minute,
                second,
                microsecond,
                offset_minutes,
            })
        }
        "list" => Value::OwnedList(value.extract()?),
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown default type {other}"
            )))
        }
    }))
}

fn digest(params: &Params, data: &[u8]) -> [u8; DIGEST_BYTES] {
    let mut out = [0u8; DIGEST_BYTES];
    out.copy_from_slice(params.hash(data).as_bytes());
    out
}

#[pymethods]
impl RowEncoder {
    /// Built by `connectors.csv.native.row_encoder` from a compiled `RowPlan`; see there.
    #[new]
    #[pyo3(signature = (*, width, key_index, columns, stored, identities, unset_empty, header, middle, campaign, branches, event_id_opening, raw_key, row_salt, row_person, store_prefix))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        width: usize,
        key_index: usize,
        columns: Vec<Bound<'_, PyTuple>>,
        stored: Vec<(usize, String)>,
        identities: Vec<(String, usize)>,
        unset_empty: bool,
        header: Vec<u8>,
        middle: Vec<u8>,
        campaign: Vec<u8>,
        branches: Vec<Vec<u8>>,
        event_id_opening: Vec<u8>,
        raw_key: Vec<u8>,
        row_salt: Vec<u8>,
        row_person: Vec<u8>,
        store_prefix: Vec<u8>,
    ) -> PyResult<Self> {
        let mut compiled = Vec::with_capacity(columns.len());
        for column in &columns {
            // (position, type spec, strip, transforms, default or None, required)
            let transforms: Vec<String> = column.get_item(3)?.extract()?;
            let transforms = transforms
                .iter()
                .map(|name| match name.as_str() {
                    "trim" => Ok(b't'),
                    "lower" => Ok(b'l'),
                    "upper" => Ok(b'u'),
                    other => Err(PyValueError::new_err(format!("unknown transform {other}"))),
                })
                .collect::<PyResult<Vec<u8>>>()?;
            compiled.push(Column {
                position: column.get_item(0)?.extract()?,
                kind: kind_of(column.get_item(1)?.downcast::<PyTuple>()?)?,
                strip: column.get_item(2)?.extract()?,
                transforms,
                default: default_of(&column.get_item(4)?)?,
                required: column.get_item(5)?.extract()?,
            });
        }
        if branches.len() != 7 {
            return Err(PyValueError::new_err("seven value branches are needed"));
        }
        let mut branches = branches.into_iter();
        let mut next = || branches.next().expect("checked");
        let branches = Branches {
            string: next(),
            long: next(),
            double: next(),
            boolean: next(),
            date: next(),
            timestamp: next(),
            list: next(),
        };
        let mut stored_names = Vec::with_capacity(stored.len());
        let stored = stored
            .into_iter()
            .map(|(slot, name)| {
                let mut encoded = Vec::new();
                values::avro_string(&mut encoded, &name);
                stored_names.push(encoded.clone());
                (slot, encoded)
            })
            .collect();
        let event_ids = Params::new()
            .hash_length(16)
            .to_state()
            .update(&event_id_opening)
            .clone();
        if raw_key.len() > 64 || row_salt.len() != 16 || row_person.len() != 16 {
            return Err(PyValueError::new_err("bad digest parameters"));
        }
        Ok(Self {
            width,
            key_index,
            columns: compiled,
            stored,
            identities,
            unset_empty,
            stored_names,
            header,
            middle,
            campaign,
            branches,
            event_ids,
            raw_key,
            row_salt,
            row_person,
            store_prefix,
        })
    }

    /// Encode ``records[start:]`` (lists of cells, read at ``lines``) until a row needs Python.
    ///
    /// ``get_stored(key)`` answers the 32 stored bytes of a digest-store key, or None (pass None
    /// when nothing is stored for the sync). Returns (records, digests, index entries, unchanged,
    /// rows, stop): ``records`` are (keys, values) to produce, ``digests`` (store keys, raw + row
    /// digests), index entries (key-index keys, customer ids), each two lists; ``unchanged`` rows
    /// need nothing produced, ``rows`` rows made records; ``stop`` is the index of the row Python
    /// must take (``len(records)`` when none).
    #[pyo3(signature = (records, lines, get_stored, start))]
    fn encode<'py>(
        &self,
        py: Python<'py>,
        records: &Bound<'py, PyList>,
        lines: &Bound<'py, PyList>,
        get_stored: Option<&Bound<'py, PyAny>>,
        start: usize,
    ) -> PyResult<Encoded<'py>> {
        let mut outputs = Outputs::new(py);
        let mut scratch = Scratch::new(self);
        let total = records.len();
        let mut index = start;
        while index < total {
            let item = records.get_item(index)?;
            // Cells as UTF-8 (a text Python could not encode either goes to Python's errors).
            let Ok(cells) = item.extract::<Vec<String>>() else {
                break;
            };
            let line: i64 = lines.get_item(index)?.extract()?;
            let mut row = self.prepare(line, Record::from_cells(&cells), &scratch.raw_params);
            self.look_up(py, &mut row, get_stored)?;
            self.finish(&mut row, &mut scratch);
            if !self.emit(py, row, &mut outputs)? {
                break;
            }
            index += 1;
        }
        let (produced, digests, index_keys, unchanged, rows, _) = outputs.part(py);
        Ok((produced, digests, index_keys, unchanged, rows, index))
    }

    /// Parse ``text`` into ``reader`` and encode every record it completes, the parsing,
    /// converting, hashing and Avro encoding without holding the GIL (so that Python can produce
    /// the previous block meanwhile). ``last``: the file ends with ``text``. ``text`` is a ``str``,
    /// or ``bytes`` of UTF-8 that end on a whole character (read from the file as they are, they
    /// are neither decoded into a ``str`` nor encoded back for this reader).
    ///
    /// Answers the block's outcome in file order: a list of parts, each either (records,
    /// digests, index entries, unchanged, rows, rows read) as ``encode`` answers them (at
    /// most ``rows_per_part`` rows, so that batches keep their size), or (line, cells) of a row
    /// Python must take (not counted in any part's rows read); then None if the reader has
    /// handed the rest of the file over to the csv module (``CsvRecords.python_from``).
    #[pyo3(signature = (reader, text, last, get_stored, rows_per_part))]
    fn encode_block<'py>(
        &self,
        py: Python<'py>,
        reader: &Bound<'py, CsvRecords>,
        text: &Bound<'py, PyAny>,
        last: bool,
        get_stored: Option<&Bound<'py, PyAny>>,
        rows_per_part: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        let text: Result<&str, &[u8]> = match text.downcast::<PyBytes>() {
            Ok(bytes) => Err(bytes.as_bytes()), // UTF-8 to check
            Err(_) => Ok(text.downcast::<PyString>()?.to_str()?),
        };
        let mut state = {
            let mut held = reader.borrow_mut();
            let empty = CsvRecords::new(',', 0, false);
            std::mem::replace(&mut *held, empty)
        };
        // Phase 1, no GIL: split the text, then key, store key and raw pre-digest of each row.
        let raw_params = Scratch::new(self).raw_params;
        let (state_back, prepared) = py.allow_threads(move || {
            let text = match text.or_else(std::str::from_utf8) {
                Ok(text) => text,
                Err(error) => return (state, Err(error.valid_up_to())),
            };
            state.feed(text, last);
            let records: Vec<(i64, Record)> = state.records.drain(..).collect();
            let prepared: Vec<Prepared> = records
                .into_iter()
                .filter(|(_, record)| !record.is_empty())
                .map(|(line, record)| self.prepare(line, record, &raw_params))
                .collect();
            (state, Ok(prepared))
        });
        let handed_over = state_back.handed_over();
        *reader.borrow_mut() = state_back;
        let mut prepared = prepared.map_err(|valid| {
            PyValueError::new_err(format!(
                "the block is not UTF-8 text after its first {valid} bytes"
            ))
        })?;
        // Phase 2, with the GIL: the stored digests.
        for row in prepared.iter_mut() {
            self.look_up(py, row, get_stored)?;
        }
        // Phase 3, no GIL: convert, digest and encode the rows that changed.
        let prepared = py.allow_threads(move || {
            let mut scratch = Scratch::new(self);
            for row in prepared.iter_mut() {
                self.finish(row, &mut scratch);
            }
            prepared
        });
        // Phase 4, with the GIL: the parts, in file order.
        let parts = PyList::empty(py);
        let mut outputs = Outputs::new(py);
        for row in prepared {
            if let Step::HandBack = row.step {
                parts.append(outputs.part(py))?;
                parts.append((row.line, PyList::new(py, row.record.cells())?))?;
                continue;
            }
            self.emit(py, row, &mut outputs)?;
            outputs.read += 1;
            if outputs.rows >= rows_per_part {
                parts.append(outputs.part(py))?;
            }
        }
        parts.append(outputs.part(py))?;
        if handed_over {
            parts.append(py.None())?;
        }
        Ok(parts)
    }
}

/// A row of a block on its way through ``encode_block``'s phases.
struct Prepared {
    line: i64,
    record: Record,
    store_key: Vec<u8>,
    raw: [u8; DIGEST_BYTES],
    step: Step,
}

enum Step {
    /// Its stored digests are to be looked up.
    Lookup,
    /// The raw pre-digest is the stored one.
    Unchanged,
    /// To convert; with the stored row digest, if any.
    Convert(Option<Vec<u8>>),
    /// Digests to store, and the event (``changed``: the row digest is not the stored one).
    Done {
        entry: Vec<u8>,
        event: Vec<u8>,
        entries: Vec<Vec<u8>>,
        changed: bool,
    },
    /// Python must take it.
    HandBack,
}

impl RowEncoder {
    /// Phase 1 of a row: its store key and raw pre-digest (no GIL).
    fn prepare(&self, line: i64, record: Record, raw_params: &Params) -> Prepared {
        let mut row = Prepared {
            line,
            record,
            store_key: Vec::new(),
            raw: [0; DIGEST_BYTES],
            step: Step::HandBack,
        };
        let cells = row.record.cells();
        if cells.len() != self.width {
            return row;
        }
        let key = text::strip(cells[self.key_index]);
        if key.is_empty() {
            return row;
        }
        let mut store_key = self.store_prefix.clone();
        store_key.extend_from_slice(key.as_bytes());
        row.raw = digest(raw_params, row.record.joined());
        row.store_key = store_key;
        row.step = Step::Lookup;
        row
    }

    /// Phase 2 of a row: its stored digests (with the GIL), when the sync has any.
    fn look_up<'py>(
        &self,
        py: Python<'py>,
        row: &mut Prepared,
        get_stored: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<()> {
        let (Step::Lookup, Some(get)) = (&row.step, get_stored) else {
            return Ok(());
        };
        let stored: Option<Vec<u8>> = get.call1((PyBytes::new(py, &row.store_key),))?.extract()?;
        row.step = match stored {
            Some(stored) if stored.len() >= DIGEST_BYTES && stored[..DIGEST_BYTES] == row.raw => {
                Step::Unchanged
            }
            Some(stored) if stored.len() == 2 * DIGEST_BYTES => {
                Step::Convert(Some(stored[DIGEST_BYTES..].to_vec()))
            }
            _ => Step::Convert(None),
        };
        Ok(())
    }

    /// Phase 4 of a row: into ``outputs`` (with the GIL); false when Python must take it.
    fn emit<'py>(
        &self,
        py: Python<'py>,
        row: Prepared,
        outputs: &mut Outputs<'py>,
    ) -> PyResult<bool> {
        match row.step {
            Step::HandBack => return Ok(false),
            Step::Unchanged => outputs.unchanged += 1,
            Step::Done {
                entry,
                event,
                entries,
                changed,
            } => {
                outputs
                    .digests
                    .push(PyBytes::new(py, &row.store_key), PyBytes::new(py, &entry))?;
                if !changed {
                    outputs.unchanged += 1;
                    return Ok(true);
                }
                let customer = PyBytes::new(py, &row.store_key[self.store_prefix.len()..]);
                outputs
                    .produced
                    .push(customer.clone(), PyBytes::new(py, &event))?;
                for entry in &entries {
                    outputs
                        .index_keys
                        .push(PyBytes::new(py, entry), customer.clone())?;
                }
                outputs.rows += 1;
            }
            Step::Lookup | Step::Convert(_) => {
                unreachable!("a row is finished before it is emitted")
            }
        }
        Ok(true)
    }

    /// Phase 3 of a row: converted, digested and encoded, or handed back (no GIL).
    fn finish(&self, row: &mut Prepared, scratch: &mut Scratch) {
        let stored = match std::mem::replace(&mut row.step, Step::HandBack) {
            Step::Lookup => None, // nothing stored for the sync
            Step::Convert(stored) => stored,
            other => {
                row.step = other;
                return;
            }
        };
        let cells = row.record.cells();
        // The values borrow the row's cells: built per row (one allocation), not kept in scratch.
        let mut value_list = Vec::with_capacity(self.columns.len());
        if !self.convert(&cells, &mut value_list)
            || !self.index_entries(&value_list, &mut scratch.entries)
        {
            return;
        }
        let json = &mut scratch.json;
        json.clear();
        json.push(b'[');
        for (position, value) in value_list.iter().enumerate() {
            if position > 0 {
                json.push(b',');
            }
            values::write_json(json, value);
        }
        json.push(b']');
        let row_digest = digest(&scratch.row_params, json);
        let mut entry = Vec::with_capacity(2 * DIGEST_BYTES);
        entry.extend_from_slice(&row.raw);
        entry.extend_from_slice(&row_digest);
        if stored.as_deref() == Some(&row_digest[..]) {
            row.step = Step::Done {
                entry,
                event: Vec::new(),
                entries: Vec::new(),
                changed: false,
            };
            return;
        }
        let key = &row.store_key[self.store_prefix.len()..];
        let key = std::str::from_utf8(key).expect("the key was a str");
        let mut event = Vec::with_capacity(512);
        self.write_event(&mut event, row.line, key, &value_list);
        row.step = Step::Done {
            entry,
            event,
            entries: std::mem::take(&mut scratch.entries),
            changed: true,
        };
    }
}

/// Keys and values, in two lists (no tuple per entry: tuples are tracked by Python's collector,
/// and an import makes millions of them).
struct Pairs<'py> {
    keys: Bound<'py, PyList>,
    values: Bound<'py, PyList>,
}

impl<'py> Pairs<'py> {
    fn new(py: Python<'py>) -> Self {
        Self {
            keys: PyList::empty(py),
            values: PyList::empty(py),
        }
    }

    fn push(&self, key: Bound<'py, PyBytes>, value: Bound<'py, PyBytes>) -> PyResult<()> {
        self.keys.append(key)?;
        self.values.append(value)
    }
}

/// What encoding calls hand back to Python, built as rows are encoded.
struct Outputs<'py> {
    produced: Pairs<'py>,
    digests: Pairs<'py>,
    index_keys: Pairs<'py>,
    unchanged: usize,
    rows: usize,
    /// Rows taken from a reader (``encode_block``).
    read: usize,
}

impl<'py> Outputs<'py> {
    fn new(py: Python<'py>) -> Self {
        Self {
            produced: Pairs::new(py),
            digests: Pairs::new(py),
            index_keys: Pairs::new(py),
            unchanged: 0,
            rows: 0,
            read: 0,
        }
    }

    /// What was gathered, as a part, and a fresh start.
    fn part(&mut self, py: Python<'py>) -> Encoded<'py> {
        let done = std::mem::replace(self, Self::new(py));
        let pair = |pairs: Pairs<'py>| (pairs.keys, pairs.values);
        (
            pair(done.produced),
            pair(done.digests),
            pair(done.index_keys),
            done.unchanged,
            done.rows,
            done.read,
        )
    }
}

/// Buffers reused from row to row, and the digests' parameters.
struct Scratch {
    raw_params: Params,
    row_params: Params,
    json: Vec<u8>,
    entries: Vec<Vec<u8>>,
}

impl Scratch {
    fn new(encoder: &RowEncoder) -> Self {
        let mut raw_params = Params::new();
        raw_params.hash_length(DIGEST_BYTES).key(&encoder.raw_key);
        let mut row_params = Params::new();
        row_params
            .hash_length(DIGEST_BYTES)
            .salt(&encoder.row_salt)
            .personal(&encoder.row_person);
        Self {
            raw_params,
            row_params,
            json: Vec::with_capacity(256),
            entries: Vec::new(),
        }
    }
}

impl RowEncoder {
    /// The row's values in ``value_list`` (one per column), or false when Python must convert it.
    fn convert<'a>(&self, cells: &[&'a str], value_list: &mut Vec<Value<'a>>) -> bool {
        value_list.clear();
        for column in &self.columns {
            let mut text: Cow<'a, str> = Cow::Borrowed(cells[column.position]);
            for transform in &column.transforms {
                let next = match (transform, text) {
                    (b't', Cow::Borrowed(current)) => Some(Cow::Borrowed(text::strip(current))),
                    (b't', Cow::Owned(current)) => {
                        Some(Cow::Owned(text::strip(&current).to_owned()))
                    }
                    (b'l', current) => text::lower(&current).map(Cow::Owned),
                    (_, current) => text::upper(&current).map(Cow::Owned),
                };
                match next {
                    Some(next) => text = next,
                    None => return false,
                }
            }
            if column.strip {
                text = match text {
                    Cow::Borrowed(current) => Cow::Borrowed(text::strip(current)),
                    Cow::Owned(current) => Cow::Owned(text::strip(&current).to_owned()),
                };
            }
            if text.is_empty() {
                if let Some(default) = &column.default {
                    value_list.push(default.clone());
                } else if column.required {
                    return false;
                } else {
                    value_list.push(Value::Null);
                }
                continue;
            }
            match values::convert(&column.kind, text) {
                Some(value) => value_list.push(value),
                None => return false,
            }
        }
        true
    }

    /// The key-index keys (``field NUL normalized value``) of the row's identity attributes, or
    /// false when a value needs Python's case mapping.
    fn index_entries(&self, value_list: &[Value<'_>], entries: &mut Vec<Vec<u8>>) -> bool {
        entries.clear();
        for (field, slot) in &self.identities {
            let Value::Str(value) = &value_list[*slot] else {
                continue;
            };
            let value = text::strip(value);
            if value.is_empty() {
                continue;
            }
            let mut entry = Vec::with_capacity(field.len() + 1 + value.len());
            entry.extend_from_slice(field.as_bytes());
            entry.push(0);
            if field == "email" {
                match text::lower(value) {
                    Some(lowered) => entry.extend_from_slice(lowered.as_bytes()),
                    None => return false,
                }
            } else {
                entry.extend_from_slice(value.as_bytes());
            }
            entries.push(entry);
        }
        true
    }

    fn write_event(&self, out: &mut Vec<u8>, line: i64, customer: &str, value_list: &[Value<'_>]) {
        out.clear();
        out.extend_from_slice(&self.header);
        let mut ids = self.event_ids.clone();
        let (tail, length) = line_tail(line);
        ids.update(&tail[..length]);
        let event_id = ids.finalize().to_hex();
        values::avro_string(out, event_id.as_str());
        values::avro_string(out, customer);
        out.extend_from_slice(&self.middle);
        let present = self
            .stored
            .iter()
            .filter(|(slot, _)| !matches!(value_list[*slot], Value::Null))
            .count();
        if present > 0 {
            values::avro_long(out, present as i64);
            for (slot, name) in &self.stored {
                let value = &value_list[*slot];
                if matches!(value, Value::Null) {
                    continue;
                }
                out.extend_from_slice(name);
                values::write_avro(out, value, &self.branches);
            }
        }
        out.push(0);
        let missing = self.stored.len() - present;
        if self.unset_empty && missing > 0 {
            values::avro_long(out, missing as i64);
            for (position, (slot, _)) in self.stored.iter().enumerate() {
                if matches!(value_list[*slot], Value::Null) {
                    out.extend_from_slice(&self.stored_names[position]);
                }
            }
        }
        out.push(0);
        out.extend_from_slice(&self.campaign);
    }
}

/// ``<line>,0]``: the end of a row's event id material (after the import's common part), on the
/// stack (one allocation less per row).
fn line_tail(line: i64) -> ([u8; 24], usize) {
    let mut digits = [0u8; 20];
    let at = values::digits_of(line.unsigned_abs(), &mut digits);
    let mut tail = [0u8; 24];
    let mut length = 0;
    if line < 0 {
        tail[0] = b'-';
        length = 1;
    }
    for part in [&digits[at..], b",0]"] {
        tail[length..length + part.len()].copy_from_slice(part);
        length += part.len();
    }
    (tail, length)
}
