//! UTF-8 checking for the import's first pass over a file (`connectors/csv/encoding.py`), which
//! otherwise decodes the whole file into strings only to learn that it can.

use pyo3::prelude::*;

/// How many bytes of ``data`` are valid UTF-8, and whether the rest is only the start of a
/// character cut off by the end of ``data`` (more may complete it).
#[pyfunction]
pub fn utf8_prefix(data: &[u8]) -> (usize, bool) {
    match std::str::from_utf8(data) {
        Ok(_) => (data.len(), false),
        Err(error) => (error.valid_up_to(), error.error_len().is_none()),
    }
}
