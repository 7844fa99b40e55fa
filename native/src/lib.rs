//! Refract's compiled hot paths, for the parts of Python code whose per-item cost bounds a
//! benchmark target. Each one writes exactly what the Python code it stands in for writes
//! (property tests compare them) and hands anything it is unsure of back to that code.

mod reader;
mod rows;
mod text;
mod utf8;
mod values;

use pyo3::prelude::*;

/// `connectors.csv._native`, wrapped by `connectors/csv/native.py`.
#[pymodule]
#[pyo3(name = "_native")]
fn refract_native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<rows::RowEncoder>()?;
    module.add_class::<reader::CsvRecords>()?;
    module.add_function(wrap_pyfunction!(utf8::utf8_prefix, module)?)?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
