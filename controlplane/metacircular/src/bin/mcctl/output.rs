//! The one printer every command uses.
//!
//! With `--json` a command prints one serializable view of its answer as pretty
//! JSON; without it, the command's human text, whose tables go through
//! [`Table`]. Invariant: with `--json`, stdout holds exactly one JSON document
//! and nothing else (notes for people go to stderr). Times are Unix seconds
//! in JSON (`*_unix` fields) and RFC 3339 UTC ([`utc`]) in text.

use serde::Serialize;

/// Where a command's answer goes: JSON or text.
#[derive(Clone, Copy)]
pub(crate) struct Out {
    json: bool,
}

impl Out {
    pub(crate) fn new(json: bool) -> Self {
        Self { json }
    }

    /// `view` as pretty JSON with `--json`, else whatever `human` prints.
    pub(crate) fn show<T: Serialize + ?Sized>(
        self,
        view: &T,
        human: impl FnOnce(),
    ) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(view)?);
        } else {
            human();
        }
        Ok(())
    }

    /// A one-line confirmation: `line` as text, `view` with `--json`.
    pub(crate) fn done<T: Serialize + ?Sized>(self, view: &T, line: &str) -> anyhow::Result<()> {
        self.show(view, || println!("{line}"))
    }
}

/// One column of a [`Table`]: its title, width and alignment.
#[derive(Clone, Copy)]
pub(crate) struct Col {
    title: &'static str,
    width: usize,
    right: bool,
    gap: usize,
}

impl Col {
    /// Left-aligned, padded to `width`.
    pub(crate) const fn left(title: &'static str, width: usize) -> Self {
        Self {
            title,
            width,
            right: false,
            gap: 1,
        }
    }

    /// Right-aligned, padded to `width`.
    pub(crate) const fn right(title: &'static str, width: usize) -> Self {
        Self {
            right: true,
            ..Self::left(title, width)
        }
    }

    /// Spaces before this column (default one).
    pub(crate) const fn gap(self, gap: usize) -> Self {
        Self { gap, ..self }
    }
}

/// A fixed-width text table. The last column is never padded, so no line
/// ends in padding; a cell wider than its column pushes the rest right.
pub(crate) struct Table(pub(crate) &'static [Col]);

impl Table {
    fn line<S: AsRef<str>>(&self, cells: &[S]) -> String {
        let mut line = String::new();
        let last = self.0.len().saturating_sub(1);
        for (i, (col, cell)) in self.0.iter().zip(cells).enumerate() {
            if i > 0 {
                line.extend(std::iter::repeat_n(' ', col.gap));
            }
            let cell = cell.as_ref();
            let width = if i == last { 0 } else { col.width };
            let padded = if col.right {
                format!("{cell:>width$}")
            } else {
                format!("{cell:<width$}")
            };
            line.push_str(&padded);
        }
        line
    }

    /// The header line.
    pub(crate) fn header(&self) -> String {
        let titles: Vec<&str> = self.0.iter().map(|c| c.title).collect();
        self.line(&titles)
    }

    /// Prints the header, then one line per row.
    pub(crate) fn print(&self, rows: impl IntoIterator<Item = Vec<String>>) {
        println!("{}", self.header());
        self.print_rows(rows);
    }

    /// Prints one line per row, without a header.
    pub(crate) fn print_rows(&self, rows: impl IntoIterator<Item = Vec<String>>) {
        for row in rows {
            println!("{}", self.line(&row));
        }
    }
}

/// Unix seconds as RFC 3339 UTC (`2026-12-07T00:25:54Z`) for people; `-` for
/// 0 (the API's "never"/"not set"). Proleptic Gregorian, as RFC 3339 is.
/// A spinner on stderr while one long call runs (hidden when stderr is not
/// a terminal, so logs and `--json` stay clean).
pub(crate) fn spinner(message: String) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new_spinner()
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_message(message);
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

pub(crate) fn utc(unix: i64) -> String {
    if unix <= 0 {
        return "-".to_owned();
    }
    mc_kit::clock::rfc3339(unix)
}

/// A policy rule's subject or match conditions as `key=a,b` per non-empty
/// list, space-separated (a caller must meet all of them); `None` when every
/// list is empty, so each command words its catch-all itself.
pub(crate) fn key_lists(lists: &[(&str, &[String])]) -> Option<String> {
    let parts: Vec<String> = lists
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", v.join(",")))
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// `vec![cell.to_string(), …]`: one table row from anything `Display`.
macro_rules! row {
    ($($cell:expr),* $(,)?) => {
        vec![$($cell.to_string()),*]
    };
}
pub(crate) use row;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_is_rfc3339() {
        assert_eq!(utc(0), "-");
        assert_eq!(utc(1), "1970-01-01T00:00:01Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_796_516_754), "2026-12-06T00:25:54Z");
        assert_eq!(utc(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(utc(253_402_300_799), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn key_lists_skip_empty_lists() {
        let roles = vec!["admin".to_owned(), "ops".to_owned()];
        let none: Vec<String> = Vec::new();
        let tags = vec!["env:prod".to_owned()];
        assert_eq!(
            key_lists(&[("roles", &roles), ("accounts", &none), ("tags", &tags)]).as_deref(),
            Some("roles=admin,ops tags=env:prod")
        );
        assert_eq!(key_lists(&[("roles", &none)]), None);
    }

    #[test]
    fn lines_match_the_format_strings_they_replace() {
        const T: Table = Table(&[
            Col::left("ID", 6),
            Col::right("N", 4),
            Col::right("UP", 5),
            Col::left("NOTE", 0).gap(2),
        ]);
        assert_eq!(
            T.header(),
            format!("{:<6} {:>4} {:>5}  NOTE", "ID", "N", "UP")
        );
        let row = row!["ab", 7, format!("{:>4}s", 3), "x y"];
        assert_eq!(
            T.line(&row),
            format!("{:<6} {:>4} {:>4}s  {}", "ab", 7, 3, "x y")
        );
        assert_eq!(
            T.line(&["toolongvalue", "1", "", ""]),
            format!("{:<6} {:>4} {:>5}  {}", "toolongvalue", 1, "", "")
        );
    }
}
