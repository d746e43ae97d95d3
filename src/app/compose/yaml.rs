//! A compose file's YAML as a small tree in which every node and every
//! mapping key keeps its line, built from the events of saphyr's parser.
//! Anchors and aliases are expanded (with a bound on the expanded size,
//! so an alias bomb is an error, not an out-of-memory) and merge keys
//! (`<<: *base`, `<<: [*a, *b]`) are applied, as compose files use them.
//! Scalars stay text: what a value means (a number, a bool) is decided by
//! the key that holds it, not by YAML's guesses. Also the emitter of the
//! resolved file (`rrun app compose config`). Pure.

use std::collections::HashMap;
use std::fmt::Write as _;

use saphyr_parser::{Event, Parser, ScalarStyle};

/// The most nodes a file may expand to (aliases included).
const MAX_NODES: usize = 1_000_000;
/// The most bytes of scalars and keys a file may expand to (aliases
/// included): a few aliases of one big scalar are few nodes but many bytes.
const MAX_BYTES: usize = 64 << 20;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// The text, and whether it was a plain (unquoted) scalar.
    Scalar(String, bool),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Which of the project's files (an index) and where (1-based).
    pub file: usize,
    pub line: usize,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub line: usize,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("line {line}: {msg}")]
pub struct YamlError {
    pub line: usize,
    pub msg: String,
}

impl Node {
    /// A plain `null`, `~` or nothing: no value.
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar(s, true) if matches!(s.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }
    pub fn scalar(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s, _) => Some(s),
            _ => None,
        }
    }
    pub fn kind(&self) -> &'static str {
        match &self.value {
            _ if self.is_null() => "null",
            Value::Scalar(..) => "a scalar",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

struct Frame {
    line: usize,
    anchor: usize,
    kind: FrameKind,
}

enum FrameKind {
    Seq(Vec<Node>),
    /// Entries, the key waiting for its value (and whether it is a merge
    /// key: a plain `<<`), the merge keys' values, and the keys seen (the
    /// duplicate check must not be quadratic in a mapping's size).
    Map(
        Vec<(Key, Node)>,
        Option<(Key, bool)>,
        Vec<(Key, Node)>,
        std::collections::HashSet<String>,
    ),
}

struct Builder {
    file: usize,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    bytes: usize,
    doc: Option<Node>,
    docs: usize,
}

/// A node's nodes and bytes (scalars' and keys' text).
fn size(n: &Node) -> (usize, usize) {
    match &n.value {
        Value::Scalar(s, _) => (1, s.len()),
        Value::Seq(v) => v
            .iter()
            .map(size)
            .fold((1, 0), |a, b| (a.0 + b.0, a.1 + b.1)),
        Value::Map(m) => m.iter().fold((1, 0), |a, (k, v)| {
            let b = size(v);
            (a.0 + 1 + b.0, a.1 + k.name.len() + b.1)
        }),
    }
}

impl Builder {
    fn err(line: usize, msg: impl Into<String>) -> YamlError {
        YamlError {
            line,
            msg: msg.into(),
        }
    }

    fn count(&mut self, (n, bytes): (usize, usize), line: usize) -> Result<(), YamlError> {
        self.nodes += n;
        self.bytes += bytes;
        if self.nodes > MAX_NODES {
            return Err(Self::err(
                line,
                format!("the file expands to more than {MAX_NODES} nodes (aliases)"),
            ));
        }
        if self.bytes > MAX_BYTES {
            return Err(Self::err(
                line,
                format!(
                    "the file expands to more than {} MiB (aliases)",
                    MAX_BYTES >> 20
                ),
            ));
        }
        Ok(())
    }

    /// A finished node goes into its parent (as a key or a value), or is
    /// the document.
    fn finish(&mut self, node: Node, anchor: usize) -> Result<(), YamlError> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        let line = node.line;
        match self.stack.last_mut() {
            None => {
                self.docs += 1;
                if self.docs > 1 {
                    return Err(Self::err(line, "more than one YAML document"));
                }
                self.doc = Some(node);
            }
            Some(Frame {
                kind: FrameKind::Seq(items),
                ..
            }) => items.push(node),
            Some(Frame {
                kind: FrameKind::Map(entries, pending, merges, seen),
                ..
            }) => match pending.take() {
                Some((k, true)) => merges.push((k, node)),
                Some((k, false)) => entries.push((k, node)),
                None => match node.value {
                    Value::Scalar(name, plain) => {
                        let merge = plain && name == "<<";
                        if !merge && !seen.insert(name.clone()) {
                            return Err(Self::err(line, format!("duplicate key {name:?}")));
                        }
                        *pending = Some((Key { name, line }, merge));
                    }
                    _ => return Err(Self::err(line, "a mapping key must be a scalar")),
                },
            },
        }
        Ok(())
    }

    fn event(&mut self, ev: Event<'_>, line: usize) -> Result<(), YamlError> {
        match ev {
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd => {}
            Event::Alias(id) => {
                let node = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| Self::err(line, "alias to an unknown anchor"))?;
                self.count(size(&node), line)?;
                // An alias keeps the anchor's lines: errors point at the
                // definition, which is where the text is.
                self.finish(node, 0)?;
            }
            Event::Scalar(text, style, anchor, tag) => {
                check_tag(tag.as_deref(), line)?;
                self.count((1, text.len()), line)?;
                let plain = style == ScalarStyle::Plain;
                self.finish(
                    Node {
                        file: self.file,
                        line,
                        value: Value::Scalar(text.into_owned(), plain),
                    },
                    anchor,
                )?;
            }
            Event::SequenceStart(anchor, tag) => {
                check_tag(tag.as_deref(), line)?;
                self.count((1, 0), line)?;
                self.stack.push(Frame {
                    line,
                    anchor,
                    kind: FrameKind::Seq(Vec::new()),
                });
            }
            Event::MappingStart(anchor, tag) => {
                check_tag(tag.as_deref(), line)?;
                self.count((1, 0), line)?;
                self.stack.push(Frame {
                    line,
                    anchor,
                    kind: FrameKind::Map(Vec::new(), None, Vec::new(), Default::default()),
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let f = self
                    .stack
                    .pop()
                    .ok_or_else(|| Self::err(line, "unbalanced YAML"))?;
                let value = match f.kind {
                    FrameKind::Seq(items) => Value::Seq(items),
                    FrameKind::Map(entries, _, merges, _) => {
                        Value::Map(merge_keys(entries, merges)?)
                    }
                };
                self.finish(
                    Node {
                        file: self.file,
                        line: f.line,
                        value,
                    },
                    f.anchor,
                )?;
            }
        }
        Ok(())
    }
}

fn check_tag(tag: Option<&saphyr_parser::Tag>, line: usize) -> Result<(), YamlError> {
    match tag {
        None => Ok(()),
        Some(t) if t.handle == "!!" || t.handle == "tag:yaml.org,2002:" => Ok(()),
        Some(t) => Err(Builder::err(
            line,
            format!("YAML tag {}{} is not supported", t.handle, t.suffix),
        )),
    }
}

/// Applies `<<` entries: the merged mappings' keys that the mapping does
/// not have itself, the first merged mapping winning over later ones.
fn merge_keys(
    mut own: Vec<(Key, Node)>,
    merges: Vec<(Key, Node)>,
) -> Result<Vec<(Key, Node)>, YamlError> {
    // A set, not a scan per key: merging must not be quadratic either.
    let mut have: std::collections::HashSet<String> =
        own.iter().map(|(k, _)| k.name.clone()).collect();
    for (k, v) in merges {
        let sources = match v.value {
            Value::Map(m) => vec![m],
            Value::Seq(items) => items
                .into_iter()
                .map(|i| match i.value {
                    Value::Map(m) => Ok(m),
                    _ => Err(Builder::err(i.line, "a merge key takes mappings")),
                })
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(Builder::err(
                    k.line,
                    "a merge key takes a mapping or a list of mappings",
                ));
            }
        };
        for m in sources {
            for (mk, mv) in m {
                if have.insert(mk.name.clone()) {
                    own.push((mk, mv));
                }
            }
        }
    }
    Ok(own)
}

/// Parses one YAML document (an empty text is an empty mapping).
pub fn parse(text: &str, file: usize) -> Result<Node, YamlError> {
    let mut b = Builder {
        file,
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        bytes: 0,
        doc: None,
        docs: 0,
    };
    for ev in Parser::new_from_str(text) {
        let (ev, span) = ev.map_err(|e| Builder::err(e.marker().line(), e.info().to_string()))?;
        b.event(ev, span.start.line())?;
    }
    Ok(b.doc.unwrap_or(Node {
        file,
        line: 1,
        value: Value::Map(Vec::new()),
    }))
}

// ---------------------------------------------------------------- output

/// What `config` prints: strings (always quoted), numbers and bools.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Seq(Vec<Out>),
    Map(Vec<(String, Out)>),
}

impl Out {
    pub fn str(s: impl Into<String>) -> Out {
        Out::Str(s.into())
    }
    fn is_empty_collection(&self) -> bool {
        matches!(self, Out::Seq(v) if v.is_empty()) || matches!(self, Out::Map(m) if m.is_empty())
    }
}

/// A string as a YAML double-quoted scalar: what YAML does not allow
/// unescaped (controls, C1 controls, DEL, BOM, non-characters) escaped.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || matches!(c, '\u{feff}' | '\u{fffe}' | '\u{ffff}') => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn key(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./".contains(&b))
        && !s.starts_with(['-', '.'])
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        )
        && s.parse::<f64>().is_err();
    if plain { s.to_string() } else { quote(s) }
}

fn scalar(o: &Out) -> String {
    match o {
        Out::Str(s) => quote(s),
        Out::Int(n) => n.to_string(),
        Out::Float(f) => format!("{f}"),
        Out::Bool(b) => b.to_string(),
        Out::Seq(_) => "[]".into(),
        Out::Map(_) => "{}".into(),
    }
}

fn emit(o: &Out, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match o {
        Out::Map(m) => {
            for (k, v) in m {
                match v {
                    Out::Map(_) | Out::Seq(_) if !v.is_empty_collection() => {
                        let _ = writeln!(out, "{pad}{}:", key(k));
                        emit(v, indent + 2, out);
                    }
                    _ => {
                        let _ = writeln!(out, "{pad}{}: {}", key(k), scalar(v));
                    }
                }
            }
        }
        Out::Seq(items) => {
            for v in items {
                match v {
                    Out::Map(_) | Out::Seq(_) if !v.is_empty_collection() => {
                        // The first line of a nested block goes after "- ".
                        let mut inner = String::new();
                        emit(v, indent + 2, &mut inner);
                        let inner = inner.trim_start_matches(' ');
                        let _ = write!(out, "{pad}- {inner}");
                    }
                    _ => {
                        let _ = writeln!(out, "{pad}- {}", scalar(v));
                    }
                }
            }
        }
        _ => {
            let _ = writeln!(out, "{pad}{}", scalar(o));
        }
    }
}

/// The document as block YAML.
pub fn to_string(o: &Out) -> String {
    let mut s = String::new();
    emit(o, 0, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(n: &Node) -> &Vec<(Key, Node)> {
        match &n.value {
            Value::Map(m) => m,
            v => panic!("not a map: {v:?}"),
        }
    }

    #[test]
    fn keys_keep_their_lines() {
        let doc = parse("a: 1\nb:\n  c: x\n  d: [1, 2]\n", 0).unwrap();
        let m = map(&doc);
        assert_eq!(
            m[0].0,
            Key {
                name: "a".into(),
                line: 1
            }
        );
        assert_eq!(m[1].0.line, 2);
        let inner = map(&m[1].1);
        assert_eq!(
            inner[1].0,
            Key {
                name: "d".into(),
                line: 4
            }
        );
        assert_eq!(inner[0].1.scalar(), Some("x"));
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let text = "base: &b\n  x: 1\n  y: 2\nother: &o\n  z: 3\nuse:\n  <<: [*b, *o]\n  y: own\ncopy: *b\n";
        let doc = parse(text, 0).unwrap();
        let m = map(&doc);
        let used = map(&m[2].1);
        let names: Vec<_> = used
            .iter()
            .map(|(k, v)| (k.name.as_str(), v.scalar().unwrap()))
            .collect();
        assert_eq!(names, [("y", "own"), ("x", "1"), ("z", "3")]);
        assert_eq!(map(&m[3].1).len(), 2);
        // Only a plain << merges.
        let doc = parse("a: &a {x: 1}\nb: {\"<<\": *a}\n", 0).unwrap();
        assert_eq!(map(&map(&doc)[1].1)[0].0.name, "<<");
    }

    #[test]
    fn bad_yaml_is_an_error_with_a_line() {
        assert_eq!(parse("a: 1\na: 2\n", 0).unwrap_err().line, 2);
        assert!(parse("a: [1\n", 0).is_err());
        assert!(parse("a: *nope\n", 0).is_err());
        assert!(parse("a: !custom x\n", 0).is_err());
        assert!(parse("a: 1\n---\nb: 2\n", 0).is_err());
        assert!(parse("? [a]\n: 1\n", 0).is_err());
        // A billion laughs stops early.
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..9 {
            let p = (b'a' + i) as char;
            let n = (b'a' + i + 1) as char;
            bomb += &format!(
                "{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            );
        }
        assert!(parse(&bomb, 0).unwrap_err().msg.contains("more than"));
    }

    #[test]
    fn quoting_is_kept_and_nulls_are_told() {
        let doc = parse("a: \"1\"\nb:\nc: ~\nd: ''\n", 0).unwrap();
        let m = map(&doc);
        assert_eq!(m[0].1.value, Value::Scalar("1".into(), false));
        assert!(m[1].1.is_null() && m[2].1.is_null() && !m[3].1.is_null());
    }

    fn back(n: &Node) -> Out {
        match &n.value {
            Value::Scalar(s, _) => Out::str(s.clone()),
            Value::Seq(v) => Out::Seq(v.iter().map(back).collect()),
            Value::Map(m) => Out::Map(m.iter().map(|(k, v)| (k.name.clone(), back(v))).collect()),
        }
    }

    proptest::proptest! {
        #[test]
        fn any_strings_survive_emitting_and_parsing(
            entries in proptest::collection::btree_map("\\PC{0,12}", proptest::collection::vec(".{0,20}", 0..3), 1..6),
            value in "(.|\n|\r){0,30}",
        ) {
            let o = Out::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| {
                        let list = Out::Seq(v.into_iter().map(Out::Str).collect());
                        (k, Out::Map(vec![("v".into(), Out::Str(value.clone())), ("l".into(), list)]))
                    })
                    .collect(),
            );
            let text = to_string(&o);
            let parsed = parse(&text, 0).map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{e}: {text}")))?;
            proptest::prop_assert_eq!(back(&parsed), o, "{}", text);
        }
    }

    #[test]
    fn emitted_yaml_parses_back() {
        let o = Out::Map(vec![
            ("name".into(), Out::str("p")),
            (
                "services".into(),
                Out::Map(vec![(
                    "web".into(),
                    Out::Map(vec![
                        (
                            "command".into(),
                            Out::Seq(vec![Out::str("a \"b\"\n"), Out::str("yes")]),
                        ),
                        ("ports".into(), Out::Seq(vec![])),
                        ("env".into(), Out::Map(vec![("1x".into(), Out::str(""))])),
                        (
                            "deps".into(),
                            Out::Seq(vec![Out::Map(vec![
                                ("a".into(), Out::Int(1)),
                                ("b".into(), Out::Bool(true)),
                            ])]),
                        ),
                    ]),
                )]),
            ),
        ]);
        let text = to_string(&o);
        let doc = parse(&text, 0).unwrap();
        let web = map(&map(&doc)[1].1)[0].1.clone();
        let web = map(&web);
        match &web[0].1.value {
            Value::Seq(v) => assert_eq!(v[0].scalar(), Some("a \"b\"\n")),
            v => panic!("{v:?}"),
        }
        assert_eq!(web[2].0.name, "env");
        assert_eq!(map(&web[2].1)[0].0.name, "1x");
        assert_eq!(
            map(&match &web[3].1.value {
                Value::Seq(v) => v[0].clone(),
                _ => panic!(),
            })[1]
                .0
                .name,
            "b"
        );
    }
}
