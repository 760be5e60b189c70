//! Turning one log line into bytes for the configured target and format: a text or JSON
//! line on stderr, an RFC 5424 syslog message, or a journald native-protocol entry with
//! structured fields. Every line carries an RFC 3339 UTC timestamp with milliseconds
//! (journald stamps entries itself) and says whether it is a connection or an event.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use super::time::Rfc3339;

/// Severity, with syslog's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
            Level::Info => "info",
        }
    }
}

/// The shape of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `key=value` words (connections) or a sentence (events).
    Text,
    /// One JSON object per line.
    Json,
}

/// How lines reach the sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Lines ending in a newline, one after the other (stderr).
    Stream,
    /// One syslog message per datagram, with this facility: RFC 5424, or the local
    /// format of syslog(3) (`<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG`, RFC 3164), which local
    /// daemons' default socket parsers (rsyslog's, journald's /dev/log) expect.
    Syslog { facility: u8, rfc5424: bool },
    /// One journald native-protocol entry per datagram.
    Journald,
}

/// What the log looks like: fixed at start, changed by a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub format: Format,
    pub framing: Framing,
}

impl Style {
    pub const DEFAULT: Style = Style {
        format: Format::Text,
        framing: Framing::Stream,
    };
}

/// A field's value in a structured line.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Str(&'a str),
    Int(u64),
    /// Shown as milliseconds with three decimals.
    Ms(Duration),
    Addr(SocketAddr),
    /// Not known, or not applicable: `-` in text, `null` in JSON, left out in journald.
    Missing,
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::Int(n) => write!(f, "{n}"),
            Value::Ms(d) => Millis(*d).fmt(f),
            Value::Addr(a) => write!(f, "{a}"),
            Value::Missing => f.write_str("-"),
        }
    }
}

/// A duration as milliseconds with three decimals (`12.480`), rounded to the microsecond
/// with integer arithmetic: a log line carries several, and float formatting showed in
/// profiles of the connection log.
pub struct Millis(pub Duration);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = (self.0.as_nanos() + 500) / 1000;
        write!(f, "{}.{:03}", us / 1000, us % 1000)
    }
}

/// One line of the log.
pub trait Line {
    /// `conn` or `event`.
    fn kind(&self) -> &'static str;
    fn level(&self) -> Level;
    /// The line as text, without timestamp.
    fn text(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
    /// The line's fields, in order, for the structured formats.
    fn fields(&self, visit: &mut dyn FnMut(&'static str, Value<'_>));
}

/// Adapter: a line's text as `Display`.
struct Text<'a, L: Line + ?Sized>(&'a L);

impl<L: Line + ?Sized> fmt::Display for Text<'_, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.text(f)
    }
}

/// A JSON string's contents (without the quotes), escaped.
struct JsonStr<'a>(&'a str);

impl fmt::Display for JsonStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// The line as one JSON object.
struct Json<'a, L: Line + ?Sized> {
    line: &'a L,
    ts: Rfc3339,
}

impl<L: Line + ?Sized> fmt::Display for Json<'_, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{{\"ts\":\"{}\",\"kind\":\"{}\",\"level\":\"{}\"",
            self.ts,
            self.line.kind(),
            self.line.level().as_str()
        )?;
        let mut result = Ok(());
        self.line.fields(&mut |key, value| {
            if result.is_err() {
                return;
            }
            result = match value {
                Value::Str(s) => write!(f, ",\"{key}\":\"{}\"", JsonStr(s)),
                Value::Int(n) => write!(f, ",\"{key}\":{n}"),
                Value::Ms(_) => write!(f, ",\"{key}\":{value}"),
                Value::Addr(a) => write!(f, ",\"{key}\":\"{a}\""),
                Value::Missing => write!(f, ",\"{key}\":null"),
            };
        });
        result?;
        f.write_str("}")
    }
}

/// Appends `line`, stamped `ts`, to `out` as `style` says. Stream lines end in a newline;
/// datagram ones are exactly one message.
pub fn encode(style: Style, ts: Rfc3339, line: &(impl Line + ?Sized), out: &mut Vec<u8>) {
    match style.framing {
        Framing::Stream => {
            let _ = match style.format {
                Format::Text => writeln!(out, "{ts} {}", Text(line)),
                Format::Json => writeln!(out, "{}", Json { line, ts }),
            };
        }
        Framing::Syslog { facility, rfc5424 } => {
            let pri = u32::from(facility) * 8 + line.level() as u32;
            // Connection lines and events carry their own tags, so a syslog filter can
            // keep them apart (RFC 5424 also says it in MSGID).
            let tag = match line.kind() {
                "conn" => "ringlb-conn",
                _ => "ringlb",
            };
            if rfc5424 {
                // <PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG
                let _ = write!(
                    out,
                    "<{pri}>1 {ts} {} {tag} {} {} - ",
                    hostname(),
                    std::process::id(),
                    line.kind()
                );
            } else {
                // The local daemon stamps seconds; the message keeps our milliseconds.
                let _ = write!(
                    out,
                    "<{pri}>{} {tag}[{}]: {ts} ",
                    ts.bsd(),
                    std::process::id()
                );
            }
            let _ = match style.format {
                Format::Text => write!(out, "{}", Text(line)),
                Format::Json => write!(out, "{}", Json { line, ts }),
            };
        }
        Framing::Journald => journald(line, style.format, ts, out),
    }
}

/// A journald native-protocol entry: MESSAGE (binary-safe form, as event texts may span
/// lines), PRIORITY, SYSLOG_IDENTIFIER, RINGLB_KIND and one RINGLB_* field per value.
fn journald(line: &(impl Line + ?Sized), format: Format, ts: Rfc3339, out: &mut Vec<u8>) {
    let mut message = Vec::with_capacity(256);
    let _ = match format {
        Format::Text => write!(message, "{}", Text(line)),
        Format::Json => write!(message, "{}", Json { line, ts }),
    };
    out.extend_from_slice(b"MESSAGE\n");
    out.extend_from_slice(&(message.len() as u64).to_le_bytes());
    out.extend_from_slice(&message);
    let _ = write!(
        out,
        "\nPRIORITY={}\nSYSLOG_IDENTIFIER=ringlb\nRINGLB_KIND={}\n",
        line.level() as u8,
        line.kind()
    );
    line.fields(&mut |key, value| {
        if matches!(value, Value::Missing) {
            return;
        }
        let mut v = String::new();
        let _ = write!(v, "{value}");
        if v.contains('\n') {
            return;
        }
        out.extend_from_slice(b"RINGLB_");
        out.extend(key.bytes().map(|b| b.to_ascii_uppercase()));
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
        out.push(b'\n');
    });
}

/// This host's name, for syslog's HOSTNAME field (`-` when unknown).
fn hostname() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty() && h.is_ascii() && !h.contains(' '))
            .unwrap_or_else(|| "-".into())
    })
}

/// An event line: a sentence with a level.
pub struct Event<'a> {
    pub level: Level,
    pub message: fmt::Arguments<'a>,
}

impl Line for Event<'_> {
    fn kind(&self) -> &'static str {
        "event"
    }

    fn level(&self) -> Level {
        self.level
    }

    fn text(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ringlb: {}", self.level.as_str(), self.message)
    }

    fn fields(&self, visit: &mut dyn FnMut(&'static str, Value<'_>)) {
        let mut msg = String::with_capacity(96);
        let _ = msg.write_fmt(self.message);
        visit("msg", Value::Str(&msg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: Rfc3339 = Rfc3339(Duration::from_millis(1_796_285_125_123));

    fn event(level: Level, text: &str) -> Vec<(Style, String)> {
        let styles = [
            Style::DEFAULT,
            Style {
                format: Format::Json,
                framing: Framing::Stream,
            },
            Style {
                format: Format::Text,
                framing: Framing::Syslog {
                    facility: 16,
                    rfc5424: true,
                },
            },
            Style {
                format: Format::Text,
                framing: Framing::Syslog {
                    facility: 3,
                    rfc5424: false,
                },
            },
        ];
        styles
            .into_iter()
            .map(|style| {
                let mut out = Vec::new();
                let e = Event {
                    level,
                    message: format_args!("{text}"),
                };
                encode(style, TS, &e, &mut out);
                (style, String::from_utf8(out).unwrap())
            })
            .collect()
    }

    #[test]
    fn an_event_in_each_format() {
        let out = event(Level::Warning, "server be/s1 is DOWN: \"refused\"");
        assert_eq!(
            out[0].1,
            "2026-12-03T08:05:25.123Z warning ringlb: server be/s1 is DOWN: \"refused\"\n"
        );
        assert_eq!(
            out[1].1,
            "{\"ts\":\"2026-12-03T08:05:25.123Z\",\"kind\":\"event\",\"level\":\"warning\",\
             \"msg\":\"server be/s1 is DOWN: \\\"refused\\\"\"}\n"
        );
        let syslog = &out[2].1;
        assert!(
            syslog.starts_with("<132>1 2026-12-03T08:05:25.123Z "),
            "{syslog}"
        );
        assert!(
            syslog.ends_with(" event - warning ringlb: server be/s1 is DOWN: \"refused\""),
            "{syslog}"
        );
        let local = &out[3].1;
        let pid = std::process::id();
        assert_eq!(
            *local,
            format!(
                "<28>Dec  3 08:05:25 ringlb[{pid}]: 2026-12-03T08:05:25.123Z warning ringlb: \
                 server be/s1 is DOWN: \"refused\""
            )
        );
        let json: serde_json::Value = serde_json::from_str(out[1].1.trim()).unwrap();
        assert_eq!(json["msg"], "server be/s1 is DOWN: \"refused\"");
    }

    #[test]
    fn journald_entries_carry_fields_and_a_binary_safe_message() {
        let mut out = Vec::new();
        let e = Event {
            level: Level::Error,
            message: format_args!("two\nlines"),
        };
        encode(
            Style {
                format: Format::Text,
                framing: Framing::Journald,
            },
            TS,
            &e,
            &mut out,
        );
        let msg = b"error ringlb: two\nlines";
        let mut want = b"MESSAGE\n".to_vec();
        want.extend_from_slice(&(msg.len() as u64).to_le_bytes());
        want.extend_from_slice(msg);
        want.extend_from_slice(b"\nPRIORITY=3\nSYSLOG_IDENTIFIER=ringlb\nRINGLB_KIND=event\n");
        // The multi-line msg field is left out: MESSAGE carries it.
        assert_eq!(out, want);
    }

    #[test]
    fn milliseconds_round_to_the_microsecond() {
        let ms = |ns: u64| Millis(Duration::from_nanos(ns)).to_string();
        assert_eq!(ms(0), "0.000");
        assert_eq!(ms(214_000), "0.214");
        assert_eq!(ms(214_499), "0.214");
        assert_eq!(ms(214_500), "0.215");
        assert_eq!(ms(12_480_000), "12.480");
        assert_eq!(ms(3_600_000_000_000), "3600000.000");
    }

    #[test]
    fn json_escapes_control_characters() {
        assert_eq!(JsonStr("a\u{1}b\\").to_string(), "a\\u0001b\\\\");
    }
}
