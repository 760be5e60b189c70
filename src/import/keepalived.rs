//! keepalived.conf read the way keepalived reads it: words separated by whitespace,
//! `"..."` kept as one word, `!` or `#` starting a comment, and `{ ... }` blocks nested
//! into a tree of statements. What the statements mean is `vrrp.rs`'s business.

use super::text;

/// One statement: its words, and the block that follows it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub line: usize,
    pub words: Vec<Word>,
    pub block: Option<Vec<Node>>,
}

impl Node {
    /// The keyword (empty for a bare block).
    pub fn key(&self) -> &str {
        self.word(0)
    }

    pub fn word(&self, i: usize) -> &str {
        self.words.get(i).map_or("", |w| w.text.as_str())
    }

    pub fn children(&self) -> &[Node] {
        self.block.as_deref().unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    /// Written in double quotes: a command line with its arguments, not a path followed
    /// by a user name.
    pub quoted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// keepalived's own files nest four levels at most; deeper is not a configuration.
pub const MAX_DEPTH: usize = 16;

enum Token {
    Word(Word),
    Open,
    Close,
}

/// An open block: the statement that opened it and the statements read so far.
struct Open {
    node: Node,
    children: Vec<Node>,
}

pub fn parse(bytes: &[u8]) -> Result<Vec<Node>, ParseError> {
    let text = text::decode(bytes);
    let mut top: Vec<Node> = Vec::new();
    let mut open: Vec<Open> = Vec::new();
    for (line, content) in text::lines(&text) {
        let tokens = tokens(content).map_err(|message| ParseError { line, message })?;
        let mut words: Vec<Word> = Vec::new();
        for token in tokens {
            match token {
                Token::Word(w) => words.push(w),
                Token::Open => {
                    let level = match open.last_mut() {
                        Some(o) => &mut o.children,
                        None => &mut top,
                    };
                    // `{` alone on its line opens the block of the statement above.
                    let node = if words.is_empty() {
                        match level.pop() {
                            Some(n) if n.block.is_none() => n,
                            other => {
                                level.extend(other);
                                Node {
                                    line,
                                    words: Vec::new(),
                                    block: None,
                                }
                            }
                        }
                    } else {
                        Node {
                            line,
                            words: std::mem::take(&mut words),
                            block: None,
                        }
                    };
                    if open.len() >= MAX_DEPTH {
                        return Err(ParseError {
                            line,
                            message: format!("blocks nested deeper than {MAX_DEPTH} levels"),
                        });
                    }
                    open.push(Open {
                        node,
                        children: Vec::new(),
                    });
                }
                Token::Close => {
                    let Some(mut o) = open.pop() else {
                        return Err(ParseError {
                            line,
                            message: "`}` closes no block".into(),
                        });
                    };
                    if !words.is_empty() {
                        o.children.push(Node {
                            line,
                            words: std::mem::take(&mut words),
                            block: None,
                        });
                    }
                    o.node.block = Some(o.children);
                    match open.last_mut() {
                        Some(parent) => parent.children.push(o.node),
                        None => top.push(o.node),
                    }
                }
            }
        }
        if !words.is_empty() {
            let node = Node {
                line,
                words,
                block: None,
            };
            match open.last_mut() {
                Some(o) => o.children.push(node),
                None => top.push(node),
            }
        }
    }
    if let Some(o) = open.first() {
        return Err(ParseError {
            line: o.node.line,
            message: format!(
                "the block of `{}` is not closed (a `}}` is missing)",
                o.node.key()
            ),
        });
    }
    Ok(top)
}

fn tokens(line: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '!' | '#' => break,
            '{' => {
                chars.next();
                out.push(Token::Open);
            }
            '}' => {
                chars.next();
                out.push(Token::Close);
            }
            '"' => {
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next() {
                        None => return Err("a double quote is not closed".into()),
                        Some('"') => break,
                        Some('\\') => text.extend(chars.next()),
                        Some(c) => text.push(c),
                    }
                }
                out.push(Token::Word(Word { text, quoted: true }));
            }
            _ => {
                let mut text = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '{' | '}' | '"') {
                        break;
                    }
                    text.push(c);
                    chars.next();
                }
                out.push(Token::Word(Word {
                    text,
                    quoted: false,
                }));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree as `key(words){children}` text, compact for assertions.
    fn show(nodes: &[Node]) -> String {
        nodes
            .iter()
            .map(|n| {
                let words: Vec<String> = n
                    .words
                    .iter()
                    .map(|w| {
                        if w.quoted {
                            format!("{:?}", w.text)
                        } else {
                            w.text.clone()
                        }
                    })
                    .collect();
                let block = n
                    .block
                    .as_ref()
                    .map(|b| format!("{{{}}}", show(b)))
                    .unwrap_or_default();
                format!("{}@{}{block}", words.join(" "), n.line)
            })
            .collect::<Vec<_>>()
            .join(";")
    }

    #[test]
    fn blocks_quotes_and_comments() {
        let tree = parse(
            b"! comment\nvrrp_script chk {\n  script \"killall -0 haproxy\"  # cheap\n  interval 2 ! two\n}\r\n\
              vrrp_instance VI_1\n{\n  virtual_ipaddress { 192.0.2.10/24 dev eth0 }\n  track_script {\n\tchk weight 2\n  }\n  \
              notify /etc/notify.sh root\n}",
        )
        .unwrap();
        assert_eq!(
            show(&tree),
            "vrrp_script chk@2{script \"killall -0 haproxy\"@3;interval 2@4};\
             vrrp_instance VI_1@6{virtual_ipaddress@8{192.0.2.10/24 dev eth0@8};\
             track_script@9{chk weight 2@10};notify /etc/notify.sh root@12}"
        );
    }

    #[test]
    fn gbk_comments_and_crlf() {
        let tree = parse(b"vrrp_instance VI_1 {\r\n  state MASTER    ###\xc9\xe8\xd6\xc3\r\n}\r\n")
            .unwrap();
        assert_eq!(show(&tree), "vrrp_instance VI_1@1{state MASTER@2}");
    }

    #[test]
    fn malformed_files_name_their_line() {
        let err = |b: &[u8]| parse(b).unwrap_err();
        assert_eq!(
            err(b"a {\n b\n"),
            ParseError {
                line: 1,
                message: "the block of `a` is not closed (a `}` is missing)".into()
            }
        );
        assert_eq!(
            err(b"a {\n}\n}\n"),
            ParseError {
                line: 3,
                message: "`}` closes no block".into()
            }
        );
        assert_eq!(err(b"a\nscript \"x\n").line, 2);
        let deep = "x {\n".repeat(MAX_DEPTH + 1);
        assert_eq!(
            err(deep.as_bytes()).message,
            format!("blocks nested deeper than {MAX_DEPTH} levels")
        );
        assert_eq!(show(&parse(b"{\n}\n").unwrap()), "@1{}");
    }
}
