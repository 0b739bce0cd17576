//! Aligned tables for people; `-` for an absent value, times in RFC 3339.

use mcp_broker::audit::render::printable;

/// Columns padded to their widest cell; the last column is not padded.
pub fn table<const N: usize>(headers: [&str; N], rows: &[[String; N]]) -> String {
    let rows: Vec<[String; N]> = rows
        .iter()
        .map(|r| r.clone().map(|c| printable(&c)))
        .collect();
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            out.push_str(cell);
            if i + 1 < cells.len() {
                out.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(&headers);
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        out.push_str(&line(&cells));
    }
    out
}

pub fn time(unix: i64) -> String {
    mcp_broker::utc::format_time(unix)
}

pub fn maybe_time(unix: Option<i64>) -> String {
    unix.map_or_else(|| "-".into(), time)
}

pub fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_string()
}

/// `name  value` lines, names padded to the longest.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(name, value)| format!("{name:width$}  {}\n", printable(value)))
        .collect()
}
