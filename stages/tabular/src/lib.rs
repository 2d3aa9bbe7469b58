//! Writing small tables as Parquet (Arrow under the hood), atomically: the file
//! appears complete or not at all. Shared by stage crates and by the binary for
//! `pipe exp show --parquet`; the runner library itself does not link Arrow.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::{WriterProperties, WriterPropertiesBuilder};

/// Column `name` of a batch read from `path`, as the array type `T`; the error names
/// the file and the column.
pub fn column<'a, T: 'static>(
    b: &'a RecordBatch,
    name: &str,
    path: &Path,
) -> anyhow::Result<&'a T> {
    b.column_by_name(name)
        .with_context(|| format!("{}: no column `{name}`", path.display()))?
        .as_any()
        .downcast_ref::<T>()
        .with_context(|| format!("{}: column `{name}` has an unexpected type", path.display()))
}

/// How every Parquet file of the project is written: snappy, and no dictionary
/// encoding (it never pays off for float samples and cost more than parsing them).
pub fn writer_properties() -> WriterProperties {
    writer_properties_builder().build()
}

/// `writer_properties`, to add to (e.g. per-column settings).
pub fn writer_properties_builder() -> WriterPropertiesBuilder {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_dictionary_enabled(false)
}

/// The batch with key/value metadata on its schema (kept in the Parquet footer).
pub fn with_metadata(
    batch: RecordBatch,
    metadata: &[(String, String)],
) -> anyhow::Result<RecordBatch> {
    let meta: std::collections::HashMap<String, String> = metadata.iter().cloned().collect();
    let schema = Schema::new_with_metadata(batch.schema().fields().clone(), meta);
    Ok(RecordBatch::try_new(
        Arc::new(schema),
        batch.columns().to_vec(),
    )?)
}

/// Write one batch (with metadata) to `path` as Parquet: to a temporary file beside
/// it, then renamed, so the file appears complete or not at all.
pub fn write_batch(
    path: &Path,
    batch: RecordBatch,
    metadata: &[(String, String)],
) -> anyhow::Result<()> {
    let batch = with_metadata(batch, metadata)?;
    let tmp = path.with_extension(format!("parquet.tmp.{}", std::process::id()));
    let write = || -> anyhow::Result<()> {
        let f =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut w = ArrowWriter::try_new(f, batch.schema(), Some(writer_properties()))?;
        w.write(&batch)?;
        w.close()?;
        std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
        Ok(())
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// One column of a simple table.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    F64(Vec<Option<f64>>),
    Str(Vec<Option<String>>),
}

impl Column {
    fn len(&self) -> usize {
        match self {
            Column::F64(v) => v.len(),
            Column::Str(v) => v.len(),
        }
    }
}

/// Write `columns` (name, values) to `path` as one Parquet row group, with
/// key/value metadata. Written to a temporary file beside `path`, then renamed.
pub fn write_parquet(
    path: &Path,
    columns: &[(String, Column)],
    metadata: &[(String, String)],
) -> anyhow::Result<()> {
    let rows = columns.first().map(|c| c.1.len()).unwrap_or(0);
    if let Some((name, _)) = columns.iter().find(|c| c.1.len() != rows) {
        anyhow::bail!("column `{name}` has a different length than the others");
    }
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, c)| {
            let t = match c {
                Column::F64(_) => DataType::Float64,
                Column::Str(_) => DataType::Utf8,
            };
            Field::new(n, t, true)
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .map(|(_, c)| match c {
            Column::F64(v) => Arc::new(Float64Array::from(v.clone())) as ArrayRef,
            Column::Str(v) => Arc::new(StringArray::from(v.clone())) as ArrayRef,
        })
        .collect();
    let batch = RecordBatch::try_new(schema, arrays).context("building the record batch")?;
    write_batch(path, batch, metadata)
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    #[test]
    fn writes_a_readable_file() -> anyhow::Result<()> {
        let d = tempfile::tempdir()?;
        let p = d.path().join("t.parquet");
        let cols = vec![
            ("x".to_string(), Column::F64(vec![Some(1.0), None])),
            (
                "s".to_string(),
                Column::Str(vec![Some("a".into()), Some("b".into())]),
            ),
        ];
        write_parquet(&p, &cols, &[("k".into(), "v".into())])?;
        let r = SerializedFileReader::new(std::fs::File::open(&p)?)?;
        assert_eq!(r.metadata().file_metadata().num_rows(), 2);
        let bad = vec![
            ("x".to_string(), Column::F64(vec![Some(1.0)])),
            ("y".to_string(), Column::F64(vec![])),
        ];
        assert!(write_parquet(&d.path().join("bad.parquet"), &bad, &[]).is_err());
        assert!(!d.path().join("bad.parquet").exists());
        Ok(())
    }
}
