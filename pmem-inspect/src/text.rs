//! The readable output: sections of aligned `key  value` lines and tables.

use std::fmt::Write as _;

use pmem_typed::format::{CHUNK, MAGIC, PAGE};

use crate::report::Report;
use crate::units::{Align, percent, size, size_exact, table};

/// Width of the key column.
const KEY: usize = 13;

/// Appends one `key  value` line.
fn line(out: &mut String, key: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "  {key:<KEY$}  {value}");
}

/// `pmem-inspect info`.
pub(crate) fn info(report: &Report<'_>, with_blocks: bool) -> String {
    let ins = report.inspection;
    let info = &ins.info;
    let mut out = String::new();

    let _ = writeln!(out, "pool {}", report.path.display());
    line(
        &mut out,
        "magic",
        format_args!(
            "\"{}\", format version {}",
            MAGIC.escape_ascii(),
            info.version
        ),
    );
    line(&mut out, "uuid", info.uuid_string());
    line(&mut out, "layout", format_args!("{:?}", info.layout));
    line(&mut out, "pool size", size_exact(info.size));
    let file_note = match ins.file_size.cmp(&info.size) {
        std::cmp::Ordering::Greater => format!(
            ", {} beyond the pool (unused; a growth that did not finish?)",
            size(ins.file_size - info.size)
        ),
        _ => String::new(),
    };
    line(
        &mut out,
        "file size",
        format_args!("{}{file_note}", size_exact(ins.file_size)),
    );

    let _ = writeln!(out, "\nroot type {:?}", info.root_name);
    // `read_header` accepts only pools whose root is at PAGE.
    line(&mut out, "offset", format_args!("{PAGE:#x}"));
    line(
        &mut out,
        "size",
        format_args!("{} bytes, aligned to {}", info.root_size, info.root_align),
    );
    line(
        &mut out,
        "fingerprint",
        format_args!("{:#018x}", info.root_fingerprint),
    );
    let recorded = info.root_fields.len();
    line(
        &mut out,
        "fields",
        if report.unrecorded_fields > 0 {
            format!(
                "{} ({recorded} recorded in the header, {} not recorded)",
                info.root_field_count, report.unrecorded_fields
            )
        } else {
            format!("{}", info.root_field_count)
        },
    );
    if recorded > 0 {
        let mut rows = vec![vec!["offset".into(), "size".into(), "name".into()]];
        rows.extend(info.root_fields.iter().map(|(name, offset, size)| {
            vec![format!("{offset:#x}"), size.to_string(), name.clone()]
        }));
        out.push_str(&table(
            &" ".repeat(KEY + 4),
            &[Align::Right, Align::Right, Align::Left],
            &rows,
        ));
    }
    if report.unrecorded_fields > 0 {
        let _ = writeln!(
            out,
            "{}(+ {} more fields: the header records the first {recorded})",
            " ".repeat(KEY + 4),
            report.unrecorded_fields
        );
    }

    let _ = writeln!(out, "\ngeometry");
    line(
        &mut out,
        "heap offset",
        format_args!("{:#x} ({})", info.heap_offset, size(info.heap_offset)),
    );
    line(&mut out, "chunk size", size(CHUNK as u64));
    line(
        &mut out,
        "zone",
        format_args!(
            "{} chunks after a {} chunk table ({})",
            info.zone_chunks,
            size(report.table_bytes),
            size(report.zone_bytes)
        ),
    );
    let last = match (report.zones, report.last_zone_chunks < info.zone_chunks) {
        (_, false) => String::new(),
        (1, true) => format!(
            ", with {} of its {} chunks (the pool ends inside it)",
            report.last_zone_chunks, info.zone_chunks
        ),
        (_, true) => format!(
            ", the last with {} of its {} chunks",
            report.last_zone_chunks, info.zone_chunks
        ),
    };
    line(&mut out, "zones", format_args!("{}{last}", report.zones));
    line(
        &mut out,
        "chunks",
        format_args!("{} ({})", report.chunks, size(report.chunk_bytes())),
    );
    if report.unused_tail > 0 {
        line(
            &mut out,
            "unused tail",
            format_args!("{} (too short for another chunk)", size(report.unused_tail)),
        );
    }

    let _ = writeln!(out, "\nallocator");
    match &ins.stats {
        Some(stats) => {
            let mut rows = vec![
                [
                    "block size",
                    "chunks",
                    "used blocks",
                    "total blocks",
                    "fill",
                ]
                .map(String::from)
                .to_vec(),
            ];
            for class in &stats.classes {
                rows.push(if class.chunks == 0 {
                    vec![
                        size(class.block_size),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                    ]
                } else {
                    vec![
                        size(class.block_size),
                        class.chunks.to_string(),
                        class.used_blocks.to_string(),
                        class.total_blocks.to_string(),
                        percent(class.used_blocks, class.total_blocks),
                    ]
                });
            }
            out.push_str(&table("  ", &[Align::Right; 5], &rows));
            let (runs, run_chunks) = (stats.runs.count, stats.runs.chunks);
            line(
                &mut out,
                "large blocks",
                if runs == 0 {
                    "none".to_owned()
                } else {
                    format!(
                        "{runs} ({run_chunks} chunks, {})",
                        size(run_chunks * CHUNK as u64)
                    )
                },
            );
            line(
                &mut out,
                "free chunks",
                format_args!(
                    "{} of {} ({})",
                    stats.free_chunks,
                    stats.chunks,
                    percent(stats.free_chunks, stats.chunks)
                ),
            );
            let blocks = ins.blocks.as_ref().map_or(0, Vec::len);
            line(
                &mut out,
                "allocated",
                format_args!(
                    "{} in {blocks} block{}, {} of {}",
                    size(stats.allocated_bytes),
                    if blocks == 1 { "" } else { "s" },
                    percent(stats.allocated_bytes, report.chunk_bytes()),
                    size(report.chunk_bytes())
                ),
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  no statistics: the chunk tables are inconsistent (see problems)"
            );
        }
    }

    let _ = writeln!(out, "\nredo records");
    for r in &report.redo {
        line(&mut out, &format!("{} ({:#x})", r.name, r.offset), &r.text);
    }

    if with_blocks {
        let _ = writeln!(out, "\nallocated blocks");
        match &ins.blocks {
            Some(blocks) if blocks.is_empty() => {
                let _ = writeln!(out, "  none");
            }
            Some(blocks) => {
                let mut rows = vec![vec!["offset".into(), "size".into(), "bytes".into()]];
                rows.extend(blocks.iter().map(|&(offset, len)| {
                    vec![format!("{offset:#x}"), size(len), len.to_string()]
                }));
                out.push_str(&table("  ", &[Align::Right; 3], &rows));
            }
            None => {
                let _ = writeln!(out, "  unknown: the chunk tables are inconsistent");
            }
        }
    }

    let _ = writeln!(out, "\nproblems");
    if ins.problems.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for problem in &ins.problems {
        let _ = writeln!(out, "  {problem}");
    }
    out
}

/// `pmem-inspect check` on a pool whose header could be read.
pub(crate) fn check(report: &Report<'_>) -> String {
    let ins = report.inspection;
    let info = &ins.info;
    let mut out = String::new();
    let verdict = match ins.problems.len() {
        0 => "consistent".to_owned(),
        1 => "1 problem".to_owned(),
        n => format!("{n} problems"),
    };
    let _ = writeln!(out, "{}: {verdict}", report.path.display());
    line(
        &mut out,
        "header",
        format_args!(
            "ok: version {}, layout {:?}, {}, root {:?} ({} bytes)",
            info.version,
            info.layout,
            size(info.size),
            info.root_name,
            info.root_size
        ),
    );
    line(
        &mut out,
        "allocator",
        match &ins.stats {
            Some(stats) => {
                let blocks = ins.blocks.as_ref().map_or(0, Vec::len);
                format!(
                    "ok: {} chunks in {} zone{}, {blocks} blocks allocated ({}), {} chunks free",
                    stats.chunks,
                    report.zones,
                    if report.zones == 1 { "" } else { "s" },
                    size(stats.allocated_bytes),
                    stats.free_chunks
                )
            }
            None => "inconsistent chunk tables (see the problem below)".to_owned(),
        },
    );
    let pending = report.redo.iter().filter(|r| r.state != "empty").count();
    line(
        &mut out,
        "redo",
        if pending == 0 {
            "no operation in flight".to_owned()
        } else {
            format!(
                "{pending} record{} to replay or clear on next open (see notes)",
                if pending == 1 { "" } else { "s" }
            )
        },
    );
    for note in report.notes() {
        line(&mut out, "note", note);
    }
    for problem in &ins.problems {
        line(&mut out, "problem", problem);
    }
    out
}
