//! PLACEHOLDER, to be replaced by the query helper's module at merge time.
//!
//! The portal's search syntax, minimally: bare terms (case-insensitive substring of the
//! document's free text), `field:value` and `field:"quoted value"` (case-insensitive, `*`
//! wildcards), `!`/`NOT`/`-` negation, `&`/`AND` (also implicit between terms), `OR`,
//! parentheses. An empty query or `*` matches everything.

use std::fmt;

/// A searchable view of a user, group or item.
pub trait Document {
    /// Values of a lowercase field name (`owner`, `tags`, `typekeywords`, `group`...).
    fn field(&self, name: &str) -> Vec<String>;
    /// Values a bare term is matched against.
    fn free_text(&self) -> Vec<String>;
}

#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    All,
    Term(String),
    Field(String, String),
    Not(Box<Query>),
    And(Vec<Query>),
    Or(Vec<Query>),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct QueryError(pub String);

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid query: {}", self.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    And,
    Or,
    Not,
    Word(String),
}

fn tokenize(q: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<char> = q.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1
            }
            '&' => {
                tokens.push(Token::And);
                i += if chars.get(i + 1) == Some(&'&') { 2 } else { 1 }
            }
            '!' | '-' => {
                tokens.push(Token::Not);
                i += 1
            }
            _ => {
                let mut word = String::new();
                while i < chars.len() {
                    let c = chars[i];
                    if c == '"' {
                        i += 1;
                        while i < chars.len() && chars[i] != '"' {
                            word.push(chars[i]);
                            i += 1;
                        }
                        if i >= chars.len() {
                            return Err(QueryError("unterminated quote".into()));
                        }
                        i += 1;
                    } else if c.is_whitespace() || c == '(' || c == ')' || c == '&' {
                        break;
                    } else {
                        word.push(c);
                        i += 1;
                    }
                }
                tokens.push(match word.as_str() {
                    "AND" => Token::And,
                    "OR" | "||" => Token::Or,
                    "NOT" => Token::Not,
                    _ => Token::Word(word),
                });
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn or(&mut self) -> Result<Query, QueryError> {
        let mut parts = vec![self.and()?];
        while self.peek() == Some(&Token::Or) {
            self.at += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Query::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Query, QueryError> {
        let mut parts = vec![self.unary()?];
        loop {
            match self.peek() {
                Some(Token::And) => {
                    self.at += 1;
                    parts.push(self.unary()?);
                }
                Some(Token::Word(_)) | Some(Token::Not) | Some(Token::Open) => {
                    parts.push(self.unary()?)
                }
                _ => break,
            }
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Query::And(parts)
        })
    }

    fn unary(&mut self) -> Result<Query, QueryError> {
        match self.peek().cloned() {
            Some(Token::Not) => {
                self.at += 1;
                Ok(Query::Not(Box::new(self.unary()?)))
            }
            Some(Token::Open) => {
                self.at += 1;
                let inner = self.or()?;
                if self.peek() != Some(&Token::Close) {
                    return Err(QueryError("missing ')'".into()));
                }
                self.at += 1;
                Ok(inner)
            }
            Some(Token::Word(word)) => {
                self.at += 1;
                Ok(match word.split_once(':') {
                    Some((field, value)) if !field.is_empty() => {
                        Query::Field(field.to_ascii_lowercase(), value.to_owned())
                    }
                    _ if word == "*" => Query::All,
                    _ => Query::Term(word),
                })
            }
            other => Err(QueryError(format!("unexpected {other:?}"))),
        }
    }
}

pub fn parse(q: &str) -> Result<Query, QueryError> {
    let tokens = tokenize(q)?;
    if tokens.is_empty() {
        return Ok(Query::All);
    }
    let mut parser = Parser { tokens, at: 0 };
    let query = parser.or()?;
    if parser.at != parser.tokens.len() {
        return Err(QueryError("unexpected trailing input".into()));
    }
    Ok(query)
}

fn glob(pattern: &str, value: &str) -> bool {
    let pattern = pattern.to_lowercase();
    let value = value.to_lowercase();
    if !pattern.contains('*') {
        return pattern == value || value.split_whitespace().any(|w| w == pattern);
    }
    let pieces: Vec<&str> = pattern.split('*').collect();
    let mut rest = value.as_str();
    for (index, piece) in pieces.iter().enumerate() {
        if index == 0 {
            match rest.strip_prefix(piece) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if index == pieces.len() - 1 {
            return rest.ends_with(piece);
        } else {
            match rest.find(piece) {
                Some(at) => rest = &rest[at + piece.len()..],
                None => return false,
            }
        }
    }
    rest.is_empty()
}

impl Query {
    pub fn matches(&self, doc: &dyn Document) -> bool {
        match self {
            Query::All => true,
            Query::Term(term) => {
                let term = term.trim_matches('*').to_lowercase();
                doc.free_text()
                    .iter()
                    .any(|v| v.to_lowercase().contains(&term))
            }
            Query::Field(field, value) => {
                value == "*" || doc.field(field).iter().any(|v| glob(value, v))
            }
            Query::Not(inner) => !inner.matches(doc),
            Query::And(parts) => parts.iter().all(|p| p.matches(doc)),
            Query::Or(parts) => parts.iter().any(|p| p.matches(doc)),
        }
    }
}
