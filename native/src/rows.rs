//! `RowEncoder`: a sync's rows, from the csv module's records to the import's outputs.
//!
//! For each row: its digest-store key, the stored digests looked up through a Python callable, the
//! raw pre-digest (an unchanged text stops there), the cells converted, the row digest (BLAKE2b of
//! the values as orjson writes them), and the encoded `CustomerUpdate` Envelope, byte for byte
//! what `RowPlan` and `Codec.encode_event` make. A row it cannot convert with certainty (a bad
//! cell, a text only Python reads) stops the call: Python takes that row and calls again after it.

use blake2b_simd::{Params, State};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use crate::reader::CsvRecords;
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
    default: Option<Value>,
    required: bool,
}

/// What one call did: the records to produce, the digests to store once they are acked, the
/// key-index entries, how many rows were unchanged, how many made records, and where it stopped.
type Encoded<'py> = (
    Bound<'py, PyList>,
    Bound<'py, PyList>,
    Bound<'py, PyList>,
    usize,
    usize,
    usize,
);

/// ``Encoded`` for parsed records: the first five, the rows read, and the row handed back.
type EncodedParsed<'py> = (
    Bound<'py, PyList>,
    Bound<'py, PyList>,
    Bound<'py, PyList>,
    usize,
    usize,
    usize,
    Option<(i64, Bound<'py, PyList>)>,
);

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
fn default_of(spec: &Bound<'_, PyAny>) -> PyResult<Option<Value>> {
    if spec.is_none() {
        return Ok(None);
    }
    let (kind, value): (String, Bound<'_, PyAny>) = spec.extract()?;
    Ok(Some(match kind.as_str() {
        "string" => Value::Str(value.extract()?),
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
        "list" => Value::List(value.extract()?),
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
    /// rows, stop): ``records`` are (key, value) pairs to produce, ``digests`` (store key, raw +
    /// row digest) pairs, index entries (key-index key, customer id) pairs; ``unchanged`` rows need
    /// nothing produced, ``rows`` rows made records; ``stop`` is the index of the row Python must
    /// take (``len(records)`` when none).
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
            let record = item.downcast::<PyList>()?;
            // Cells as UTF-8 (a text Python could not encode either goes to Python's errors).
            let owned: Vec<Bound<'py, PyAny>> = record.iter().collect();
            let cells: Option<Vec<&str>> = owned
                .iter()
                .map(|cell| {
                    cell.downcast::<PyString>()
                        .ok()
                        .and_then(|s| s.to_str().ok())
                })
                .collect();
            let Some(cells) = cells else { break };
            let line: i64 = lines.get_item(index)?.extract()?;
            if !self.row(py, &cells, line, get_stored, &mut outputs, &mut scratch)? {
                break;
            }
            index += 1;
        }
        let Outputs {
            produced,
            digests,
            index_keys,
            unchanged,
            rows,
        } = outputs;
        Ok((produced, digests, index_keys, unchanged, rows, index))
    }

    /// Encode the records ``reader`` has parsed, until a row needs Python or ``limit`` rows made
    /// records. Returns (records, digests, index entries, unchanged, rows, rows read, handed
    /// back): the first five as ``encode`` answers them; the rows taken from the reader (blank
    /// lines are not rows); and the (line, cells) of the row Python must take, or None.
    #[pyo3(signature = (reader, get_stored, limit))]
    fn encode_parsed<'py>(
        &self,
        py: Python<'py>,
        reader: &Bound<'py, CsvRecords>,
        get_stored: Option<&Bound<'py, PyAny>>,
        limit: usize,
    ) -> PyResult<EncodedParsed<'py>> {
        let mut outputs = Outputs::new(py);
        let mut scratch = Scratch::new(self);
        let mut reader = reader.borrow_mut();
        let mut read = 0usize;
        let mut handed_back: Option<(i64, Bound<'py, PyList>)> = None;
        while outputs.rows < limit {
            let Some((line, record)) = reader.records.pop_front() else {
                break;
            };
            if record.is_empty() {
                continue; // a blank line
            }
            read += 1;
            let cells = record.cells();
            if !self.row(py, &cells, line, get_stored, &mut outputs, &mut scratch)? {
                handed_back = Some((line, PyList::new(py, &cells)?));
                break;
            }
        }
        let Outputs {
            produced,
            digests,
            index_keys,
            unchanged,
            rows,
        } = outputs;
        Ok((
            produced,
            digests,
            index_keys,
            unchanged,
            rows,
            read,
            handed_back,
        ))
    }
}

/// What encoding calls hand back to Python, built as rows are encoded.
struct Outputs<'py> {
    produced: Bound<'py, PyList>,
    digests: Bound<'py, PyList>,
    index_keys: Bound<'py, PyList>,
    unchanged: usize,
    rows: usize,
}

impl<'py> Outputs<'py> {
    fn new(py: Python<'py>) -> Self {
        Self {
            produced: PyList::empty(py),
            digests: PyList::empty(py),
            index_keys: PyList::empty(py),
            unchanged: 0,
            rows: 0,
        }
    }
}

/// Buffers reused from row to row, and the digests' parameters.
struct Scratch {
    raw_params: Params,
    row_params: Params,
    material: Vec<u8>,
    json: Vec<u8>,
    values: Vec<Value>,
    event: Vec<u8>,
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
            material: Vec::with_capacity(256),
            json: Vec::with_capacity(256),
            values: Vec::with_capacity(encoder.columns.len()),
            event: Vec::with_capacity(512),
            entries: Vec::new(),
        }
    }
}

impl RowEncoder {
    /// One row into ``outputs``: unchanged, or its digests, event and index entries. False when
    /// Python must take it (nothing was added for it).
    fn row<'py>(
        &self,
        py: Python<'py>,
        cells: &[&str],
        line: i64,
        get_stored: Option<&Bound<'py, PyAny>>,
        outputs: &mut Outputs<'py>,
        scratch: &mut Scratch,
    ) -> PyResult<bool> {
        if cells.len() != self.width {
            return Ok(false);
        }
        let key = text::strip(cells[self.key_index]);
        if key.is_empty() {
            return Ok(false);
        }
        let mut store_key = self.store_prefix.clone();
        store_key.extend_from_slice(key.as_bytes());
        let stored: Option<Vec<u8>> = match get_stored {
            Some(get) => get.call1((PyBytes::new(py, &store_key),))?.extract()?,
            None => None,
        };
        let material = &mut scratch.material;
        material.clear();
        for (position, cell) in cells.iter().enumerate() {
            if position > 0 {
                material.push(0);
            }
            material.extend_from_slice(cell.as_bytes());
        }
        let raw = digest(&scratch.raw_params, material);
        if let Some(stored) = &stored {
            if stored.len() >= DIGEST_BYTES && stored[..DIGEST_BYTES] == raw {
                outputs.unchanged += 1;
                return Ok(true);
            }
        }
        if !self.convert(cells, &mut scratch.values)
            || !self.index_entries(&scratch.values, &mut scratch.entries)
        {
            return Ok(false);
        }
        let json = &mut scratch.json;
        json.clear();
        json.push(b'[');
        for (position, value) in scratch.values.iter().enumerate() {
            if position > 0 {
                json.push(b',');
            }
            values::write_json(json, value);
        }
        json.push(b']');
        let row_digest = digest(&scratch.row_params, json);
        let mut entry = Vec::with_capacity(2 * DIGEST_BYTES);
        entry.extend_from_slice(&raw);
        entry.extend_from_slice(&row_digest);
        outputs
            .digests
            .append((PyBytes::new(py, &store_key), PyBytes::new(py, &entry)))?;
        if let Some(stored) = &stored {
            if stored.len() == 2 * DIGEST_BYTES && stored[DIGEST_BYTES..] == row_digest {
                outputs.unchanged += 1;
                return Ok(true);
            }
        }
        self.write_event(&mut scratch.event, line, key, &scratch.values);
        let customer = PyBytes::new(py, key.as_bytes());
        outputs
            .produced
            .append((&customer, PyBytes::new(py, &scratch.event)))?;
        for entry in &scratch.entries {
            outputs
                .index_keys
                .append((PyBytes::new(py, entry), &customer))?;
        }
        outputs.rows += 1;
        Ok(true)
    }

    /// The row's values in ``value_list`` (one per column), or false when Python must convert it.
    fn convert(&self, cells: &[&str], value_list: &mut Vec<Value>) -> bool {
        value_list.clear();
        for column in &self.columns {
            let cell = cells[column.position];
            let mut owned: Option<String> = None;
            for transform in &column.transforms {
                let current = owned.as_deref().unwrap_or(cell);
                let next = match transform {
                    b't' => Some(text::strip(current).to_owned()),
                    b'l' => text::lower(current),
                    _ => text::upper(current),
                };
                match next {
                    Some(next) => owned = Some(next),
                    None => return false,
                }
            }
            let mut text = owned.as_deref().unwrap_or(cell);
            if column.strip {
                text = text::strip(text);
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
    fn index_entries(&self, value_list: &[Value], entries: &mut Vec<Vec<u8>>) -> bool {
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

    fn write_event(&self, out: &mut Vec<u8>, line: i64, customer: &str, value_list: &[Value]) {
        out.clear();
        out.extend_from_slice(&self.header);
        let mut ids = self.event_ids.clone();
        let mut tail = Vec::with_capacity(24);
        values::push_int(&mut tail, line);
        tail.extend_from_slice(b",0]");
        ids.update(&tail);
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
