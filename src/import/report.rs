//! What an import found that it could not convert as it stands: each finding names the
//! file and line it comes from, says what happened and, where there is one, what to do.
//! Warnings make an import partial; notes only explain a difference.

use std::collections::HashMap;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Converted, with a difference worth knowing.
    Note,
    /// Left out or changed: the import is partial.
    Warning,
}

/// Which input a finding comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    Haproxy,
    Keepalived,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub source: Source,
    pub line: usize,
    pub severity: Severity,
    pub what: String,
    pub suggestion: Option<String>,
}

/// Findings of one import, printed in file and line order.
#[derive(Debug, Default)]
pub struct Report {
    findings: Vec<Finding>,
    /// Where each (file, line, what) is in `findings`, so a repeat is found at once.
    index: HashMap<(Source, usize, String), usize>,
}

impl Report {
    pub fn warn(&mut self, source: Source, line: usize, what: impl Into<String>) {
        self.add(source, line, Severity::Warning, what.into(), None);
    }

    /// A warning with what to do about it.
    pub fn warn_hint(
        &mut self,
        source: Source,
        line: usize,
        what: impl Into<String>,
        suggestion: impl Into<String>,
    ) {
        self.add(
            source,
            line,
            Severity::Warning,
            what.into(),
            Some(suggestion.into()),
        );
    }

    pub fn note(&mut self, source: Source, line: usize, what: impl Into<String>) {
        self.add(source, line, Severity::Note, what.into(), None);
    }

    /// Adds a finding; the same one twice (a `defaults` line seen by several proxies) is
    /// kept once, at the higher severity.
    pub fn add(
        &mut self,
        source: Source,
        line: usize,
        severity: Severity,
        what: String,
        suggestion: Option<String>,
    ) {
        let key = (source, line, what);
        if let Some(f) = self.index.get(&key).and_then(|&i| self.findings.get_mut(i)) {
            f.severity = f.severity.max(severity);
            return;
        }
        let (source, line, what) = key.clone();
        self.index.insert(key, self.findings.len());
        self.findings.push(Finding {
            source,
            line,
            severity,
            what,
            suggestion,
        });
    }

    /// Whether anything was left out or changed.
    pub fn partial(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.severity == Severity::Warning)
    }

    /// Findings by file, then line; those of one line in the order they were found.
    pub fn sorted(&self) -> Vec<&Finding> {
        let mut out: Vec<&Finding> = self.findings.iter().collect();
        out.sort_by_key(|f| (f.source, f.line));
        out
    }
}

/// One finding as printed: `file:line: what (suggestion)`.
pub struct Shown<'a> {
    pub finding: &'a Finding,
    pub file: &'a str,
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.finding;
        write!(f, "{}:{}: ", self.file, x.line)?;
        if x.severity == Severity::Note {
            f.write_str("note: ")?;
        }
        f.write_str(&x.what)?;
        if let Some(s) = &x.suggestion {
            write!(f, " ({s})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_dedup_and_format() {
        let mut r = Report::default();
        r.note(Source::Keepalived, 3, "state MASTER");
        r.note(Source::Haproxy, 9, "option forwardfor: HTTP only");
        r.warn_hint(
            Source::Haproxy,
            2,
            "server web1: \"web1.lan\" is a host name",
            "resolve it",
        );
        r.warn(Source::Haproxy, 9, "option forwardfor: HTTP only");
        assert!(r.partial());
        let shown: Vec<String> = r
            .sorted()
            .into_iter()
            .map(|finding| {
                let file = match finding.source {
                    Source::Haproxy => "h.cfg",
                    Source::Keepalived => "k.conf",
                };
                Shown { finding, file }.to_string()
            })
            .collect();
        assert_eq!(
            shown,
            [
                "h.cfg:2: server web1: \"web1.lan\" is a host name (resolve it)",
                "h.cfg:9: option forwardfor: HTTP only",
                "k.conf:3: note: state MASTER",
            ]
        );
        let mut notes = Report::default();
        notes.note(Source::Haproxy, 1, "x");
        assert!(!notes.partial());
    }
}
