//! The aligned tables the server commands print (`idsync queue list`, `idsync recon list`).

use std::fmt::Write as _;

/// An aligned table: the header, one line per row (cells left-aligned, two spaces apart,
/// trailing blanks trimmed), then the count of rows as `N <noun>s` (`1 <noun>`).
pub fn render(headers: &[&str], rows: &[Vec<String>], noun: &str) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (cell, w) in cells.zip(&widths) {
            let _ = write!(l, "{cell:<w$}  ");
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for r in rows {
        line(&mut r.iter().map(String::as_str));
    }
    let _ = writeln!(
        out,
        "{} {noun}{}",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    );
    out
}
