//! ringlb's log as the tests read it: lines without their timestamp, the key=value fields
//! of a `conn` line, and a cursor over a log of thousands of lines.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use super::wait_for;

/// A text log line without its RFC 3339 timestamp, and without the level of an event line.
pub fn untimed(line: &str) -> &str {
    let rest = match line.split_once(' ') {
        Some((ts, rest)) if ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T' => {
            rest
        }
        _ => return line,
    };
    for level in ["info ", "notice ", "warning ", "error "] {
        if let Some(event) = rest.strip_prefix(level) {
            return event;
        }
    }
    rest
}

/// The key=value fields of one `conn ...` log line.
#[derive(Debug, Clone)]
pub struct ConnLine {
    pub line: String,
    fields: HashMap<String, String>,
}

impl ConnLine {
    pub fn parse(line: &str) -> Option<ConnLine> {
        let rest = untimed(line).strip_prefix("conn ")?;
        let fields = rest
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Some(ConnLine {
            line: line.to_owned(),
            fields,
        })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    /// The field `key`, panicking with the line if it is missing.
    pub fn field(&self, key: &str) -> &str {
        self.get(key)
            .unwrap_or_else(|| panic!("no {key}= in log line: {}", self.line))
    }

    pub fn end(&self) -> &str {
        self.field("end")
    }
}

/// Reads a growing log file line by line, each complete line once.
pub struct LogCursor {
    path: PathBuf,
    offset: u64,
    /// The start of a line whose newline has not been written yet (bytes: a read may end
    /// inside a UTF-8 sequence).
    pending: Vec<u8>,
    /// Complete lines read from the file and not yet handed out.
    unread: VecDeque<String>,
}

impl LogCursor {
    /// A cursor at the start of the log file `path`.
    pub fn new(path: PathBuf) -> LogCursor {
        LogCursor {
            path,
            offset: 0,
            pending: Vec::new(),
            unread: VecDeque::new(),
        }
    }

    /// Every complete line written since the last call (or since the last line handed out
    /// by `wait_for_line`).
    pub fn new_lines(&mut self) -> Vec<String> {
        self.fill();
        self.unread.drain(..).collect()
    }

    /// Waits (bounded) for a new line satisfying `pred` and returns it; the lines before it
    /// are dropped, the ones after it stay for the next call.
    pub fn wait_for_line(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        wait_for(timeout, || {
            self.fill();
            while let Some(line) = self.unread.pop_front() {
                if pred(&line) {
                    return Some(line);
                }
            }
            None
        })
    }

    fn fill(&mut self) {
        use std::io::{Seek, SeekFrom};
        let Ok(mut file) = fs::File::open(&self.path) else {
            return;
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let Ok(n) = file.read_to_end(&mut self.pending) else {
            return;
        };
        self.offset += n as u64;
        let Some(end) = self.pending.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let complete: Vec<u8> = self.pending.drain(..=end).collect();
        let text = String::from_utf8_lossy(&complete);
        self.unread
            .extend(text.lines().map(|l| untimed(l).to_owned()));
    }
}
