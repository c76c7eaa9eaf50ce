//! Numbers for people: sizes in binary units, percentages, aligned tables.

/// `512 B`, `16.0 KiB`, `1.5 MiB`: one decimal from KiB up.
pub(crate) fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    // Move up while the value would print as 1024.0 or more.
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// [`size`] followed by the exact count, for sizes that are worth both:
/// `1.0 MiB (1048576 bytes)`; small sizes once: `64 B`.
pub(crate) fn size_exact(bytes: u64) -> String {
    if bytes < 1024 {
        size(bytes)
    } else {
        format!("{} ({bytes} bytes)", size(bytes))
    }
}

/// `part` as a percentage of `whole`, to one decimal: `7.2%`; `<0.1%` for
/// a non-zero part too small to show, `-` for an empty whole.
pub(crate) fn percent(part: u64, whole: u64) -> String {
    match percent_value(part, whole) {
        None => "-".to_owned(),
        Some(p) if part > 0 && p < 0.05 => "<0.1%".to_owned(),
        Some(p) => format!("{p:.1}%"),
    }
}

/// `part` as a percentage of `whole`, rounded to two decimals (for JSON).
pub(crate) fn percent_value(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 * 10000.0 / whole as f64).round() / 100.0)
}

/// How a table column is aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

/// Rows of cells printed in columns as wide as their widest cell, two spaces
/// apart, each line starting with `indent`.
pub(crate) fn table(indent: &str, aligns: &[Align], rows: &[Vec<String>]) -> String {
    let width = |column: usize| {
        rows.iter()
            .filter_map(|row| row.get(column))
            .map(|cell| cell.chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..aligns.len()).map(width).collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::from(indent);
        for (column, cell) in row.iter().enumerate() {
            if column > 0 {
                line.push_str("  ");
            }
            let width = widths.get(column).copied().unwrap_or(0);
            match aligns.get(column).copied().unwrap_or(Align::Left) {
                Align::Left => line.push_str(&format!("{cell:<width$}")),
                Align::Right => line.push_str(&format!("{cell:>width$}")),
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1024), "1.0 KiB");
        assert_eq!(size(16 * 1024), "16.0 KiB");
        assert_eq!(size(1536 * 1024), "1.5 MiB");
        assert_eq!(size(1024 * 1024 - 1), "1.0 MiB");
        assert_eq!(size(1 << 30), "1.0 GiB");
        assert_eq!(size(u64::MAX), "16.0 EiB");
        assert_eq!(size_exact(1 << 20), "1.0 MiB (1048576 bytes)");
        assert_eq!(size_exact(64), "64 B");
    }

    #[test]
    fn percentages() {
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(percent(0, 3), "0.0%");
        assert_eq!(percent(1, 100_000), "<0.1%");
        assert_eq!(percent(5, 0), "-");
        assert_eq!(percent_value(1, 3), Some(33.33));
        assert_eq!(percent_value(3, 3), Some(100.0));
    }

    #[test]
    fn tables_align() {
        let rows = vec![
            vec!["class".to_owned(), "chunks".to_owned()],
            vec!["64 B".to_owned(), "1".to_owned()],
            vec!["8.0 KiB".to_owned(), "12".to_owned()],
        ];
        assert_eq!(
            table("  ", &[Align::Right, Align::Right], &rows),
            "    class  chunks\n     64 B       1\n  8.0 KiB      12\n"
        );
    }
}
