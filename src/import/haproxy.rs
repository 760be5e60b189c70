//! haproxy.cfg read the way HAProxy reads it: each line split into words (quotes,
//! backslash escapes, `#` comments), lines grouped into sections (`global`, `defaults`,
//! `frontend`, `backend`, `listen`, and the others kept whole so they can be reported).
//! What the directives mean is `proxy.rs`'s business.

use super::text;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Haproxy {
    pub sections: Vec<Section>,
    /// Lines of `.if` / `.elif` / `.else` / `.endif`: conditions are not evaluated.
    pub conditionals: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub kind: SectionKind,
    pub line: usize,
    /// The words after the section keyword: the name, then e.g. an old-style address
    /// (`listen webfarm 0.0.0.0:80`) or `from DEFAULTS`.
    pub args: Vec<String>,
    pub directives: Vec<Directive>,
}

impl Section {
    pub fn name(&self) -> Option<&str> {
        self.args.first().map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionKind {
    Global,
    Defaults,
    Frontend,
    Backend,
    Listen,
    /// `peers`, `resolvers`, `userlist` ...: nothing of them is converted.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub line: usize,
    /// At least one word.
    pub words: Vec<String>,
}

impl Directive {
    pub fn word(&self, i: usize) -> &str {
        self.words.get(i).map_or("", String::as_str)
    }
}

/// A file HAProxy itself would refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

const OTHER_SECTIONS: &[&str] = &[
    "peers",
    "resolvers",
    "userlist",
    "mailers",
    "program",
    "http-errors",
    "ring",
    "cache",
    "fcgi-app",
    "log-forward",
    "crt-store",
    "traces",
    "acme",
];

pub fn parse(bytes: &[u8]) -> Result<Haproxy, ParseError> {
    let text = text::decode(bytes);
    let mut sections: Vec<Section> = Vec::new();
    let mut conditionals = Vec::new();
    for (line, content) in text::lines(&text) {
        let words = split_words(content).map_err(|message| ParseError { line, message })?;
        let Some(first) = words.first() else {
            continue;
        };
        if first.starts_with('.') {
            conditionals.push(line);
            continue;
        }
        let kind = match first.as_str() {
            "global" => Some(SectionKind::Global),
            "defaults" => Some(SectionKind::Defaults),
            "frontend" => Some(SectionKind::Frontend),
            "backend" => Some(SectionKind::Backend),
            "listen" => Some(SectionKind::Listen),
            other if OTHER_SECTIONS.contains(&other) => Some(SectionKind::Other(other.into())),
            _ => None,
        };
        if let Some(kind) = kind {
            if matches!(
                kind,
                SectionKind::Frontend | SectionKind::Backend | SectionKind::Listen
            ) && words.len() < 2
            {
                return Err(ParseError {
                    line,
                    message: format!("`{first}` needs a name"),
                });
            }
            sections.push(Section {
                kind,
                line,
                args: words[1..].to_vec(),
                directives: Vec::new(),
            });
            continue;
        }
        match sections.last_mut() {
            Some(s) => s.directives.push(Directive { line, words }),
            None => {
                return Err(ParseError {
                    line,
                    message: format!(
                        "`{first}` is outside any section (one starts with global, defaults, \
                         frontend, backend or listen)"
                    ),
                })
            }
        }
    }
    Ok(Haproxy {
        sections,
        conditionals,
    })
}

/// Splits one line into words as HAProxy does: whitespace separates, `#` starts a
/// comment, `"..."` keeps spaces and escapes, `'...'` keeps everything, and a backslash
/// escapes a space, `#`, a quote, `\`, `$` or stands for `\r`, `\n`, `\t`, `\xHH`.
/// Any other backslash is kept, as regular expressions need it.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '#' => break,
            '\\' => {
                in_word = true;
                escape(&mut chars, &mut word)?;
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        None => return Err("a double quote is not closed".into()),
                        Some('"') => break,
                        Some('\\') => escape(&mut chars, &mut word)?,
                        Some(c) => word.push(c),
                    }
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        None => return Err("a single quote is not closed".into()),
                        Some('\'') => break,
                        Some(c) => word.push(c),
                    }
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn escape(chars: &mut std::str::Chars<'_>, word: &mut String) -> Result<(), String> {
    match chars.next() {
        Some(c @ (' ' | '\\' | '#' | '"' | '\'' | '$')) => word.push(c),
        Some('r') => word.push('\r'),
        Some('n') => word.push('\n'),
        Some('t') => word.push('\t'),
        Some('x') => {
            let hex: String = chars.by_ref().take(2).collect();
            let byte = u8::from_str_radix(&hex, 16)
                .ok()
                .filter(|_| hex.len() == 2)
                .ok_or_else(|| format!("\\x{hex} is not a \\xHH escape"))?;
            word.push(char::from(byte));
        }
        Some(c) => {
            word.push('\\');
            word.push(c);
        }
        None => word.push('\\'),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        split_words(line).unwrap()
    }

    #[test]
    fn words_quotes_escapes_and_comments() {
        assert_eq!(words("  bind\t*:80   # the web"), ["bind", "*:80"]);
        assert_eq!(
            words(r"option httpchk GET / HTTP/1.0\r\nUser-Agent:\ HAProxy"),
            [
                "option",
                "httpchk",
                "GET",
                "/",
                "HTTP/1.0\r\nUser-Agent: HAProxy"
            ]
        );
        assert_eq!(
            words(r#"acl a req.ssl_sni -i "codeberg.org" 'x y#z' "" \#not"#),
            [
                "acl",
                "a",
                "req.ssl_sni",
                "-i",
                "codeberg.org",
                "x y#z",
                "",
                "#not"
            ]
        );
        assert_eq!(
            words(r"reqirep ^([^\ ]*)\ /app1/([^\ ]*) \1\ /\2 \x41"),
            ["reqirep", r"^([^ ]*) /app1/([^ ]*)", r"\1 /\2", "A"]
        );
        assert_eq!(
            words(r"stats realm Global\ statistics"),
            ["stats", "realm", "Global statistics"]
        );
        assert_eq!(words("mode tcp#comment"), ["mode", "tcp"]);
        assert!(words("   # only a comment").is_empty());
        assert_eq!(
            split_words("log-format \"%ci:%cp"),
            Err("a double quote is not closed".into())
        );
        assert_eq!(
            split_words(r"x \xZZ"),
            Err("\\xZZ is not a \\xHH escape".into())
        );
    }

    #[test]
    fn sections_and_their_directives() {
        let cfg = parse(
            b"global\n  maxconn 4096\r\n\ndefaults\n  mode tcp\nlisten webfarm 0.0.0.0:80 # old style\n  \
              server a 192.0.2.1:80\nresolvers dns\n  nameserver x 192.0.2.53:53\nbackend b",
        )
        .unwrap();
        let kinds: Vec<(&SectionKind, usize, Option<&str>)> = cfg
            .sections
            .iter()
            .map(|s| (&s.kind, s.line, s.name()))
            .collect();
        assert_eq!(
            kinds,
            [
                (&SectionKind::Global, 1, None),
                (&SectionKind::Defaults, 4, None),
                (&SectionKind::Listen, 6, Some("webfarm")),
                (&SectionKind::Other("resolvers".into()), 8, Some("dns")),
                (&SectionKind::Backend, 10, Some("b")),
            ]
        );
        assert_eq!(cfg.sections[2].args, ["webfarm", "0.0.0.0:80"]);
        assert_eq!(cfg.sections[2].directives[0].line, 7);
        assert_eq!(cfg.sections[0].directives[0].words, ["maxconn", "4096"]);
    }

    #[test]
    fn malformed_files_name_their_line() {
        let err = |b: &[u8]| parse(b).unwrap_err();
        assert_eq!(
            err(b"# top\n  maxconn 10\nglobal"),
            ParseError {
                line: 2,
                message: "`maxconn` is outside any section (one starts with global, defaults, \
                          frontend, backend or listen)"
                    .into()
            }
        );
        assert_eq!(
            err(b"global\nbackend\n"),
            ParseError {
                line: 2,
                message: "`backend` needs a name".into()
            }
        );
        assert_eq!(err(b"global\n\n log 'x\n").line, 3);
        let ok = parse(b"global\n.if defined(X)\n  nbthread 2\n.endif\n").unwrap();
        assert_eq!(ok.conditionals, [2, 4]);
        assert_eq!(ok.sections[0].directives.len(), 1);
        assert!(parse(b"").unwrap().sections.is_empty());
    }
}
