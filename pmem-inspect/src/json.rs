//! The `--json` output: one object per run, with stable key names. Sizes,
//! offsets and counts are JSON numbers (offsets in bytes from the start of
//! the pool); the root fingerprint is also given as a hex string, since a
//! 64-bit number does not survive every JSON reader.

use serde_json::{Value, json};

use pmem_typed::format::{CHUNK, MAGIC, PAGE};
use pmem_typed::{Error, FileKind};

use crate::report::{Failure, Report, kind_name};
use crate::units::percent_value;

/// The bytes as text, escaped where not printable: `PMEMRS\x00\x01`.
fn escaped(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// A stable name for what a path that is not a pool file names.
fn file_kind(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Directory => "directory",
        FileKind::Fifo => "fifo",
        FileKind::Socket => "socket",
        FileKind::CharDevice => "character_device",
        FileKind::BlockDevice => "block_device",
        _ => "other",
    }
}

/// `pmem-inspect info --json`.
pub(crate) fn info(report: &Report<'_>, with_blocks: bool) -> Value {
    let ins = report.inspection;
    let info = &ins.info;
    let fields: Vec<Value> = info
        .root_fields
        .iter()
        .map(|(name, offset, size)| json!({ "name": name, "offset": offset, "size": size }))
        .collect();
    let heap = ins.stats.as_ref().map(|stats| {
        let classes: Vec<Value> = stats
            .classes
            .iter()
            .map(|class| {
                json!({
                    "block_size": class.block_size,
                    "chunks": class.chunks,
                    "blocks_used": class.used_blocks,
                    "blocks_total": class.total_blocks,
                    "fill_percent": percent_value(class.used_blocks, class.total_blocks),
                })
            })
            .collect();
        json!({
            "chunks": stats.chunks,
            "free_chunks": stats.free_chunks,
            "classes": classes,
            "runs": {
                "count": stats.runs.count,
                "chunks": stats.runs.chunks,
                "bytes": stats.runs.chunks * CHUNK as u64,
            },
            "allocated_blocks": ins.blocks.as_ref().map(Vec::len),
            "allocated_bytes": stats.allocated_bytes,
            "capacity_bytes": report.chunk_bytes(),
            "allocated_percent": percent_value(stats.allocated_bytes, report.chunk_bytes()),
        })
    });
    let mut out = json!({
        "path": report.path.to_string_lossy(),
        "file_size": ins.file_size,
        "header": {
            "magic": escaped(&MAGIC),
            "version": info.version,
            "uuid": info.uuid_string(),
            "layout": info.layout,
            "pool_size": info.size,
        },
        "root": {
            "type": info.root_name,
            "offset": PAGE,
            "size": info.root_size,
            "align": info.root_align,
            "fingerprint": info.root_fingerprint,
            "fingerprint_hex": format!("{:#018x}", info.root_fingerprint),
            "field_count": info.root_field_count,
            "fields": fields,
            "unrecorded_fields": report.unrecorded_fields,
        },
        "geometry": {
            "heap_offset": info.heap_offset,
            "chunk_size": CHUNK,
            "zone_chunks": info.zone_chunks,
            "chunk_table_bytes": report.table_bytes,
            "zone_bytes": report.zone_bytes,
            "zones": report.zones,
            "last_zone_chunks": report.last_zone_chunks,
            "chunks": report.chunks,
            "unused_tail_bytes": report.unused_tail,
        },
        "heap": heap,
        "redo": redo(report),
        "problems": ins.problems,
        "consistent": ins.is_consistent(),
    });
    if with_blocks && let Some(map) = out.as_object_mut() {
        let blocks = ins.blocks.as_ref().map(|blocks| {
            blocks
                .iter()
                .map(|&(offset, size)| json!({ "offset": offset, "size": size }))
                .collect::<Vec<_>>()
        });
        map.insert("blocks".to_owned(), json!(blocks));
    }
    out
}

/// The redo records.
fn redo(report: &Report<'_>) -> Vec<Value> {
    report
        .redo
        .iter()
        .map(|r| {
            let mut value = json!({
                "slot": r.name,
                "offset": r.offset,
                "state": r.state,
                "outcome": r.outcome,
                "description": r.text,
            });
            if let (Some(record), Some(map)) = (&r.record, value.as_object_mut()) {
                let operation = json!({
                    "kind": kind_name(record),
                    "seq": record.seq.get(),
                    "block": record.block.get(),
                    "block_size": record.block_size.get(),
                    "dest": record.dest.get(),
                    "dest_len": record.dest_len.get(),
                    "dest_value": record.dest_value.map(|w| w.get()),
                    "value_len": record.value_len.get(),
                });
                map.insert("operation".to_owned(), operation);
            }
            value
        })
        .collect()
}

/// `pmem-inspect check --json` on a pool whose header could be read.
pub(crate) fn check(report: &Report<'_>) -> Value {
    let ins = report.inspection;
    json!({
        "path": report.path.to_string_lossy(),
        "status": if ins.is_consistent() { "consistent" } else { "problems" },
        "consistent": ins.is_consistent(),
        "problems": ins.problems,
        "notes": report.notes(),
        "redo": redo(report),
        "error": null,
    })
}

/// The object for a file `inspect` refused, for `info` and `check` alike.
pub(crate) fn failure(path: &std::path::Path, failure: &Failure<'_>) -> Value {
    let mut error = json!({
        "kind": failure.kind,
        "message": failure.error.to_string(),
    });
    let details = match failure.error {
        Error::NotAPool { found } => json!({
            "expected": escaped(&MAGIC),
            "found": escaped(found),
        }),
        Error::UnsupportedVersion { expected, found } => {
            json!({ "expected": expected, "found": found })
        }
        Error::ChecksumMismatch {
            region,
            expected,
            found,
        } => json!({
            "region": region,
            "expected": expected,
            "found": found,
        }),
        Error::Truncated { expected, found } => json!({ "expected": expected, "found": found }),
        Error::NotAFile { found, .. } => json!({
            "expected": "regular file or Device DAX",
            "found": file_kind(*found),
        }),
        _ => json!({}),
    };
    if let (Some(error), Some(details)) = (error.as_object_mut(), details.as_object()) {
        error.extend(details.clone());
    }
    json!({
        "path": path.to_string_lossy(),
        "status": "error",
        "consistent": false,
        "problems": [],
        "notes": [],
        "error": error,
    })
}
