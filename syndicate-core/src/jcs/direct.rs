//! JSON text straight to canonical bytes, without building a
//! [`serde_json::Value`].
//!
//! The lexer is the [`Value`] parser's own ([`Parser`]), so strings, escapes,
//! numbers and literals follow one set of rules. What differs is the tree:
//! strings without escapes borrow from the input and objects are plain
//! vectors, sorted once when they close. That is what makes the strict path
//! faster than `serde_json`'s parse and serialize of the same text.
//!
//! Every refusal is reported by the [`Value`] path: when this path meets
//! anything it refuses (or a duplicate key, which it only sees after
//! sorting), [`canonicalize`] runs the [`Value`] parser and writer over the
//! same bytes and returns their result, so errors carry the same offsets and
//! JSON Pointers whichever path ran. A test checks that both paths agree on
//! every input.

use std::borrow::Cow;

use serde_json::{Number, Value};

use super::parse::{Parser, expected_value, parser};
use super::write::{utf16_order_differs, write_json_number, write_string};
use super::{CanonError, Limits};

/// A parsed value whose strings borrow from the input where they can.
enum Node<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

/// An array or object that is open while its members are parsed.
enum Frame<'a> {
    Array(Vec<Node<'a>>),
    Object {
        members: Vec<(Cow<'a, str>, Node<'a>)>,
        key: Cow<'a, str>,
    },
}

/// Something this path does not report itself: the [`Value`] path will.
struct Refused;

impl From<CanonError> for Refused {
    fn from(_: CanonError) -> Self {
        Refused
    }
}

/// Parses `bytes` under `limits` and returns their canonical bytes.
pub(crate) fn canonicalize(bytes: &[u8], limits: &Limits) -> Result<Vec<u8>, CanonError> {
    if let Ok(out) = fast(bytes, limits) {
        return Ok(out);
    }
    let value = super::parse::parse(bytes, limits)?;
    let mut out = Vec::with_capacity(bytes.len());
    super::write::write(&value, limits.max_depth, &mut out)?;
    Ok(out)
}

fn fast(bytes: &[u8], limits: &Limits) -> Result<Vec<u8>, Refused> {
    let mut parser = parser(bytes, limits)?;
    let root = document(&mut parser)?;
    let mut out = Vec::with_capacity(bytes.len());
    write_node(&root, &mut out)?;
    Ok(out)
}

fn document<'a>(p: &mut Parser<'a>) -> Result<Node<'a>, Refused> {
    let mut stack: Vec<Frame<'a>> = Vec::new();
    'value: loop {
        p.skip_whitespace();
        let mut node = match p.peek() {
            Some(b'{') => {
                p.open(stack.len())?;
                p.skip_whitespace();
                if p.peek() == Some(b'}') {
                    p.pos += 1;
                    Node::Object(Vec::new())
                } else {
                    let (key, _) = p.key("a string key or '}'")?;
                    stack.push(Frame::Object {
                        members: Vec::new(),
                        key,
                    });
                    continue 'value;
                }
            }
            Some(b'[') => {
                p.open(stack.len())?;
                p.skip_whitespace();
                if p.peek() == Some(b']') {
                    p.pos += 1;
                    Node::Array(Vec::new())
                } else {
                    stack.push(Frame::Array(Vec::new()));
                    continue 'value;
                }
            }
            Some(b'"') => Node::String(p.string()?),
            Some(b'-' | b'0'..=b'9') => match p.number()? {
                Value::Number(n) => Node::Number(n),
                _ => return Err(Refused),
            },
            Some(b't') => p.literal(b"true", "'true'", Node::Bool(true))?,
            Some(b'f') => p.literal(b"false", "'false'", Node::Bool(false))?,
            Some(b'n') => p.literal(b"null", "'null'", Node::Null)?,
            other => return Err(p.syntax(p.pos, expected_value(other)).into()),
        };

        loop {
            match stack.last_mut() {
                None => {
                    p.skip_whitespace();
                    if p.pos < p.bytes.len() {
                        return Err(Refused);
                    }
                    return Ok(node);
                }
                Some(Frame::Array(items)) => {
                    items.push(node);
                    p.skip_whitespace();
                    match p.peek() {
                        Some(b',') => {
                            p.pos += 1;
                            continue 'value;
                        }
                        Some(b']') => {
                            p.pos += 1;
                            let Some(Frame::Array(items)) = stack.pop() else {
                                return Err(Refused);
                            };
                            node = Node::Array(items);
                        }
                        _ => return Err(Refused),
                    }
                }
                Some(Frame::Object { members, key }) => {
                    members.push((std::mem::take(key), node));
                    p.skip_whitespace();
                    match p.peek() {
                        Some(b',') => {
                            p.pos += 1;
                            p.skip_whitespace();
                            *key = p.key("a string key")?.0;
                            continue 'value;
                        }
                        Some(b'}') => {
                            p.pos += 1;
                            let Some(Frame::Object { members, .. }) = stack.pop() else {
                                return Err(Refused);
                            };
                            node = Node::Object(canonical_order(members)?);
                        }
                        _ => return Err(Refused),
                    }
                }
            }
        }
    }
}

/// Sorts an object's members into RFC 8785 order (UTF-16 code units);
/// refuses an object with a duplicate key.
fn canonical_order<'a>(
    mut members: Vec<(Cow<'a, str>, Node<'a>)>,
) -> Result<Vec<(Cow<'a, str>, Node<'a>)>, Refused> {
    members.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    if members.windows(2).any(|pair| pair[0].0 == pair[1].0) {
        return Err(Refused);
    }
    if utf16_order_differs(members.iter().map(|(key, _)| key.as_ref())) {
        members.sort_unstable_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    }
    Ok(members)
}

/// Nesting is bounded by the parser's depth limit, so recursion is too.
fn write_node(node: &Node<'_>, out: &mut Vec<u8>) -> Result<(), Refused> {
    match node {
        Node::Null => out.extend_from_slice(b"null"),
        Node::Bool(true) => out.extend_from_slice(b"true"),
        Node::Bool(false) => out.extend_from_slice(b"false"),
        Node::Number(n) => write_json_number(n, out)?,
        Node::String(s) => write_string(s, out),
        Node::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_node(item, out)?;
            }
            out.push(b']');
        }
        Node::Object(members) => {
            out.push(b'{');
            for (i, (key, value)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_node(value, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}
