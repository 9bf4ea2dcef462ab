//! The portal's search query language (`q` of `community/users`, `community/groups` and
//! `search`), as far as real clients use it: the ArcGIS API for Python's
//! `!esri_ & !admin`, `!owner:esri_* & !Basemaps` and `typekeywords:source-x type:"Web Map"`,
//! arcgis-rest-js's `SearchQueryBuilder` output (`AND`, `OR`, `NOT`, parentheses, ranges) and
//! the `accountid:`/`orgid:` clauses both append.
//!
//! The real portal runs these through a Lucene index whose analyser is not documented, so the
//! rules here are the lenient ones that reproduce every answer the sample-org README lists as a
//! seed output, and are written down next to the code that implements them.
//!
//! Grammar (lowest precedence first):
//! ```text
//! query   := or
//! or      := and { ("OR" | "||") and }
//! and     := unary { ["AND" | "&&" | "&"] unary }      -- juxtaposition is AND
//! unary   := ("NOT" | "!" | "-") unary | "+" unary | primary
//! primary := "(" or ")" | field ":" "(" or ")" | [field ":"] value | field ":" range
//! value   := word | '"' phrase '"'                     -- `*` is a wildcard in both
//! range   := ("[" | "{") lower "TO" upper ("]" | "}")  -- `*` leaves an end open
//! ```
//! Whitespace may follow `field:` (arcgis-rest-js writes `owner: x`), and `^N` boosts are
//! accepted and ignored (they only affect ranking).

use std::iter::Peekable;
use std::vec::IntoIter;

/// What a searchable object (user, group, item) exposes to the query language.
pub trait Document {
    /// Values of one field; `name` is always lowercase. Unknown fields return no values, which
    /// makes `unknown:x` match nothing rather than fail the search (a real portal is lenient
    /// there too: it ignores fields it does not index).
    fn field(&self, name: &str) -> Vec<String>;
    /// The values a bare term (one without `field:`) is matched against.
    fn free_text(&self) -> Vec<String>;
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// The empty query, `*`, or a bare `*` term.
    All,
    Term(Term),
    Not(Box<Query>),
    And(Vec<Query>),
    Or(Vec<Query>),
}

/// One leaf: a value, optionally restricted to a field.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    /// Lowercase field name; `None` for a bare term matched against free text.
    field: Option<String>,
    value: Value,
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    /// An unquoted value, lowercased; may contain `*`.
    Word(String),
    /// A quoted value, lowercased; may contain `*`.
    Phrase(String),
    Range(Range),
}

#[derive(Debug, Clone, PartialEq)]
struct Range {
    /// `None` is an open end (`*`).
    lower: Option<String>,
    upper: Option<String>,
    lower_inclusive: bool,
    upper_inclusive: bool,
}

/// Why a query could not be parsed. The message is written for the `message`/`details` of the
/// portal's 400 error body, so it names the problem and where it is (character positions
/// count from 0).
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum QueryError {
    #[error("Invalid query: unmatched '{paren}' at position {position}")]
    UnbalancedParenthesis { paren: char, position: usize },
    #[error("Invalid query: quoted value starting at position {position} is never closed")]
    UnterminatedQuote { position: usize },
    #[error(
        "Invalid query: range starting at position {position} is never closed with ']' or '}}'"
    )]
    UnterminatedRange { position: usize },
    #[error("Invalid query: range '{text}' must look like [lower TO upper]")]
    MalformedRange { text: String },
    #[error("Invalid query: a range needs a field, as in created:[lower TO upper] (position {position})")]
    RangeWithoutField { position: usize },
    #[error("Invalid query: field '{field}' at position {position} has no value")]
    MissingValue { field: String, position: usize },
    #[error("Invalid query: '{operator}' at position {position} needs a term after it")]
    MissingOperandAfter { operator: String, position: usize },
    #[error("Invalid query: '{operator}' at position {position} needs a term before it")]
    MissingOperandBefore { operator: String, position: usize },
    #[error("Invalid query: empty parentheses at position {position}")]
    EmptyParentheses { position: usize },
    #[error("Invalid query: nested more than {limit} levels deep")]
    TooDeep { limit: usize },
}

/// Deep enough for any query a person or client writes, shallow enough that a hostile
/// `((((…` or `!!!!…` cannot overflow the stack of the server thread.
const MAX_DEPTH: usize = 64;

/// Fields whose values are prose: a field value matches when the query's words occur in it
/// as a contiguous run of words, as in the portal's analysed fields (`title:Central` finds
/// "Central Services"). Every other field matches whole values only (`type:"Web Map"` must
/// not find a "Web Mapping Application", which is what the Python cloner's lookup relies on).
const PROSE_FIELDS: &[&str] = &["title", "description", "snippet", "fullname"];

pub fn parse(q: &str) -> Result<Query, QueryError> {
    let tokens = lex(q)?;
    if tokens.is_empty() {
        return Ok(Query::All);
    }
    let mut parser = Parser {
        tokens: tokens.into_iter().peekable(),
        end: q.chars().count(),
    };
    let query = parser.parse_or(None, 0)?;
    match parser.tokens.next() {
        None => Ok(query),
        Some((position, Token::RParen)) => Err(QueryError::UnbalancedParenthesis {
            paren: ')',
            position,
        }),
        // parse_and consumes every token that can start a term, so only `)` can be left over;
        // anything else would be a parser bug, reported rather than ignored.
        Some((position, token)) => Err(QueryError::MissingOperandBefore {
            operator: token.describe(),
            position,
        }),
    }
}

impl Query {
    pub fn matches(&self, doc: &dyn Document) -> bool {
        match self {
            Query::All => true,
            Query::Term(term) => term.matches(doc),
            Query::Not(inner) => !inner.matches(doc),
            Query::And(parts) => parts.iter().all(|part| part.matches(doc)),
            Query::Or(parts) => parts.iter().any(|part| part.matches(doc)),
        }
    }
}

impl Term {
    fn matches(&self, doc: &dyn Document) -> bool {
        match &self.field {
            None => {
                let values = doc.free_text();
                match &self.value {
                    Value::Word(word) => values.iter().any(|v| bare_word_matches(word, v)),
                    Value::Phrase(phrase) => values.iter().any(|v| phrase_matches(phrase, v)),
                    // The parser refuses a range without a field.
                    Value::Range(_) => false,
                }
            }
            Some(field) => {
                let values = doc.field(field);
                let prose = PROSE_FIELDS.contains(&field.as_str());
                match &self.value {
                    Value::Word(text) | Value::Phrase(text) => {
                        values.iter().any(|v| field_value_matches(text, v, prose))
                    }
                    Value::Range(range) => values.iter().any(|v| range.contains(v)),
                }
            }
        }
    }
}

/// A bare word matches a free-text value when the value, or one of its words, starts with
/// it: the portal's free-text search is prefix-based, which is why `!esri_` drops every
/// `esri_*` account while `!admin` keeps `arcgis_python_api` and org_admin users (roles are
/// not free text). A word with `*` is a pattern over the whole value or one of its words.
fn bare_word_matches(word: &str, value: &str) -> bool {
    let value = value.to_lowercase();
    if word.contains('*') {
        wildcard_matches(word, &value) || words(&value).any(|w| wildcard_matches(word, w))
    } else {
        value.starts_with(word) || words(&value).any(|w| w.starts_with(word))
    }
}

/// A quoted bare value matches a whole value, or a contiguous run of its words.
fn phrase_matches(phrase: &str, value: &str) -> bool {
    let value = value.to_lowercase();
    wildcard_matches(phrase, &value) || word_run_matches(phrase, &value)
}

/// `field:value`: equal to a whole value, or a `*` pattern over it, or in prose fields a
/// contiguous run of its words. Lists (`tags`, `typekeywords`) arrive as one value per
/// element, so an element must match on its own.
fn field_value_matches(text: &str, value: &str, prose: bool) -> bool {
    let value = value.to_lowercase();
    wildcard_matches(text, &value) || (prose && word_run_matches(text, &value))
}

/// The words of `needle` occur, in order and adjacent, among the words of `haystack`; each
/// needle word may be a `*` pattern.
fn word_run_matches(needle: &str, haystack: &str) -> bool {
    let wanted: Vec<&str> = words(needle).collect();
    if wanted.is_empty() {
        return false;
    }
    let present: Vec<&str> = words(haystack).collect();
    present.windows(wanted.len()).any(|window| {
        window
            .iter()
            .zip(&wanted)
            .all(|(have, want)| wildcard_matches(want, have))
    })
}

/// Splits text into words the way the search treats them: `_`, `.`, `-` and `@` stay inside
/// a word so usernames, emails and keywords like `source-<id>` are one word; `*` stays so a
/// pattern survives splitting. Leading and trailing `.`/`-` are trimmed ("end." is "end").
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '@' | '*')))
        .map(|w| w.trim_matches(|c| c == '.' || c == '-'))
        .filter(|w| !w.is_empty())
}

/// Whole-string match where `*` stands for any run of characters (both sides lowercase).
fn wildcard_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    // split always yields at least one part.
    let first = parts.next().unwrap_or("");
    let rest: Vec<&str> = parts.collect();
    let Some((last, middle)) = rest.split_last() else {
        return pattern == text;
    };
    let Some(mut remaining) = text.strip_prefix(first) else {
        return false;
    };
    // Taking each middle part at its leftmost occurrence leaves the most room for the rest,
    // so this greedy walk finds a match whenever one exists.
    for part in middle {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.ends_with(last)
}

impl Range {
    /// Numbers compare as numbers (timestamps may be zero-padded, as arcgis-rest-js and the
    /// Python API send them); anything else compares as lowercase text, as Lucene does for
    /// string fields.
    fn contains(&self, value: &str) -> bool {
        let value = value.to_lowercase();
        let above_lower = match &self.lower {
            None => true,
            Some(lower) => match compare(&value, lower) {
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Equal => self.lower_inclusive,
                std::cmp::Ordering::Less => false,
            },
        };
        let below_upper = match &self.upper {
            None => true,
            Some(upper) => match compare(&value, upper) {
                std::cmp::Ordering::Less => true,
                std::cmp::Ordering::Equal => self.upper_inclusive,
                std::cmp::Ordering::Greater => false,
            },
        };
        above_lower && below_upper
    }
}

fn compare(value: &str, bound: &str) -> std::cmp::Ordering {
    match (value.trim().parse::<f64>(), bound.trim().parse::<f64>()) {
        (Ok(v), Ok(b)) => v.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
        _ => value.cmp(bound),
    }
}

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Token {
    LParen,
    RParen,
    And,
    Or,
    Not,
    /// `field:` directly followed by `(`: bare terms inside the parentheses use this field.
    FieldGroup(String),
    Term {
        field: Option<String>,
        value: Value,
    },
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::LParen => "(".into(),
            Token::RParen => ")".into(),
            Token::And => "AND".into(),
            Token::Or => "OR".into(),
            Token::Not => "NOT".into(),
            Token::FieldGroup(field) => format!("{field}:"),
            Token::Term { .. } => "term".into(),
        }
    }
}

/// Characters that end an unquoted word.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '"' | '&' | '|' | '^')
}

fn lex(q: &str) -> Result<Vec<(usize, Token)>, QueryError> {
    let chars: Vec<char> = q.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let next = chars.get(i + 1).copied();
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push((start, Token::LParen));
                i += 1;
            }
            ')' => {
                tokens.push((start, Token::RParen));
                i += 1;
            }
            // A single `&` or `|` is accepted as its doubled form: clients write both.
            '&' => {
                i += if next == Some('&') { 2 } else { 1 };
                tokens.push((start, Token::And));
            }
            '|' => {
                i += if next == Some('|') { 2 } else { 1 };
                tokens.push((start, Token::Or));
            }
            '!' => {
                tokens.push((start, Token::Not));
                i += 1;
            }
            // A boost (`title:lakes^3`, from SearchQueryBuilder's `boost`) only changes
            // ranking, which the simulator does not model: skip it.
            '^' => {
                i += 1;
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_ascii_digit() || *c == '.')
                {
                    i += 1;
                }
            }
            // `-term` negates and `+term` (Lucene's "required") is plain AND; a lone `-` or
            // `+` is an ordinary word.
            '-' | '+' if next.is_some_and(|n| !ends_word(n)) => {
                if c == '-' {
                    tokens.push((start, Token::Not));
                }
                i += 1;
            }
            '"' => {
                let (text, after) = read_quoted(&chars, i)?;
                tokens.push((
                    start,
                    Token::Term {
                        field: None,
                        value: Value::Phrase(text.to_lowercase()),
                    },
                ));
                i = after;
            }
            '[' | '{' => return Err(QueryError::RangeWithoutField { position: start }),
            _ => {
                let (token, after) = read_word(&chars, i)?;
                tokens.push((start, token));
                i = after;
            }
        }
    }
    Ok(tokens)
}

/// Reads `"…"` starting at the opening quote; `\"` and `\\` are escapes. Returns the text
/// and the index after the closing quote.
fn read_quoted(chars: &[char], open: usize) -> Result<(String, usize), QueryError> {
    let mut text = String::new();
    let mut i = open + 1;
    while i < chars.len() {
        match chars[i] {
            '"' => return Ok((text, i + 1)),
            '\\' if i + 1 < chars.len() => {
                text.push(chars[i + 1]);
                i += 2;
            }
            c => {
                text.push(c);
                i += 1;
            }
        }
    }
    Err(QueryError::UnterminatedQuote { position: open })
}

/// Reads an unquoted word, which may be `field:value`, `field:"…"`, `field:[a TO b]` or
/// `field:(`. Keywords AND/OR/NOT are recognised only in uppercase: a lowercase "and" is a
/// term, as on the portal.
fn read_word(chars: &[char], start: usize) -> Result<(Token, usize), QueryError> {
    let mut text = String::new();
    let mut field: Option<String> = None;
    let mut i = start;
    while i < chars.len() && !ends_word(chars[i]) {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            text.push(chars[i + 1]);
            i += 2;
            continue;
        }
        if c == ':' && field.is_none() && !text.is_empty() {
            // The first colon splits field from value; later ones belong to the value
            // (`url:https://…`).
            let name = text.to_lowercase();
            text.clear();
            i += 1;
            // arcgis-rest-js's SearchQueryBuilder writes `owner: x` and `type: "Web Map"`.
            while chars.get(i).is_some_and(|c| c.is_whitespace()) {
                i += 1;
            }
            let upcoming: String = chars[i..].iter().take_while(|&&c| !ends_word(c)).collect();
            if matches!(upcoming.as_str(), "AND" | "OR" | "NOT") {
                return Err(QueryError::MissingValue {
                    field: name,
                    position: start,
                });
            }
            match chars.get(i).copied() {
                Some('"') => {
                    let (phrase, after) = read_quoted(chars, i)?;
                    let value = Value::Phrase(phrase.to_lowercase());
                    return Ok((field_term(name, value), after));
                }
                Some(open @ ('[' | '{')) => {
                    let (range, after) = read_range(chars, i, open)?;
                    return Ok((field_term(name, Value::Range(range)), after));
                }
                Some('(') => return Ok((Token::FieldGroup(name), i)),
                None => {
                    return Err(QueryError::MissingValue {
                        field: name,
                        position: start,
                    })
                }
                Some(c) if ends_word(c) => {
                    return Err(QueryError::MissingValue {
                        field: name,
                        position: start,
                    })
                }
                Some(_) => field = Some(name),
            }
            continue;
        }
        text.push(c);
        i += 1;
    }
    if let (Some(name), true) = (&field, text.is_empty()) {
        // Only a boost (`title:^2`) or a backslash followed by nothing can leave it empty.
        return Err(QueryError::MissingValue {
            field: name.clone(),
            position: start,
        });
    }
    let token = match (field, text.as_str()) {
        (None, "AND") => Token::And,
        (None, "OR") => Token::Or,
        (None, "NOT") => Token::Not,
        (field, _) => Token::Term {
            field,
            value: Value::Word(text.to_lowercase()),
        },
    };
    Ok((token, i))
}

fn field_term(field: String, value: Value) -> Token {
    Token::Term {
        field: Some(field),
        value,
    }
}

/// Reads `[a TO b]` / `{a TO b}` (mixed brackets allowed, as in Lucene) from the opening
/// bracket; returns the range and the index after the closing bracket.
fn read_range(chars: &[char], open_at: usize, open: char) -> Result<(Range, usize), QueryError> {
    let close_at = chars[open_at..]
        .iter()
        .position(|&c| c == ']' || c == '}')
        .map(|offset| open_at + offset)
        .ok_or(QueryError::UnterminatedRange { position: open_at })?;
    let inner: String = chars[open_at + 1..close_at].iter().collect();
    let parts: Vec<&str> = inner.split_whitespace().collect();
    let [lower, "TO", upper] = parts.as_slice() else {
        return Err(QueryError::MalformedRange {
            text: chars[open_at..=close_at].iter().collect(),
        });
    };
    let bound = |text: &str| {
        let text = text.trim_matches('"');
        (text != "*").then(|| text.to_lowercase())
    };
    let range = Range {
        lower: bound(lower),
        upper: bound(upper),
        lower_inclusive: open == '[',
        upper_inclusive: chars[close_at] == ']',
    };
    Ok((range, close_at + 1))
}

// ---------------------------------------------------------------------------------------------
// Parser

struct Parser {
    tokens: Peekable<IntoIter<(usize, Token)>>,
    /// Character count of the query, the position reported for errors at its end.
    end: usize,
}

impl Parser {
    fn parse_or(&mut self, field: Option<&str>, depth: usize) -> Result<Query, QueryError> {
        let mut parts = vec![self.parse_and(field, depth)?];
        while let Some((position, Token::Or)) = self.tokens.peek().cloned() {
            self.tokens.next();
            self.expect_operand_after("OR", position)?;
            parts.push(self.parse_and(field, depth)?);
        }
        Ok(flatten(parts, Query::Or))
    }

    fn parse_and(&mut self, field: Option<&str>, depth: usize) -> Result<Query, QueryError> {
        let mut parts = vec![self.parse_unary(field, depth)?];
        loop {
            match self.tokens.peek().cloned() {
                Some((position, Token::And)) => {
                    self.tokens.next();
                    self.expect_operand_after("AND", position)?;
                    parts.push(self.parse_unary(field, depth)?);
                }
                // Juxtaposition: `typekeywords:source-x type:"Web Map"` is an AND.
                Some((
                    _,
                    Token::Not | Token::LParen | Token::FieldGroup(_) | Token::Term { .. },
                )) => parts.push(self.parse_unary(field, depth)?),
                _ => break,
            }
        }
        Ok(flatten(parts, Query::And))
    }

    /// A binary operator must be followed by a term; the error names the operator.
    fn expect_operand_after(&mut self, operator: &str, position: usize) -> Result<(), QueryError> {
        match self.tokens.peek() {
            None | Some((_, Token::RParen | Token::And | Token::Or)) => {
                Err(QueryError::MissingOperandAfter {
                    operator: operator.into(),
                    position,
                })
            }
            Some(_) => Ok(()),
        }
    }

    fn parse_unary(&mut self, field: Option<&str>, depth: usize) -> Result<Query, QueryError> {
        if depth >= MAX_DEPTH {
            return Err(QueryError::TooDeep { limit: MAX_DEPTH });
        }
        let Some((position, token)) = self.tokens.next() else {
            return Err(QueryError::MissingOperandAfter {
                operator: "query".into(),
                position: self.end,
            });
        };
        match token {
            Token::Not => {
                if matches!(
                    self.tokens.peek(),
                    None | Some((_, Token::RParen | Token::And | Token::Or))
                ) {
                    return Err(QueryError::MissingOperandAfter {
                        operator: "NOT".into(),
                        position,
                    });
                }
                Ok(Query::Not(Box::new(self.parse_unary(field, depth + 1)?)))
            }
            Token::LParen => self.parse_group(position, field, depth),
            Token::FieldGroup(name) => match self.tokens.next() {
                Some((open, Token::LParen)) => self.parse_group(open, Some(&name), depth),
                // The lexer emits FieldGroup only right before `(`.
                _ => Err(QueryError::MissingValue {
                    field: name,
                    position,
                }),
            },
            Token::Term {
                field: own_field,
                value,
            } => Ok(make_term(
                own_field.or_else(|| field.map(str::to_owned)),
                value,
            )),
            Token::RParen => Err(QueryError::UnbalancedParenthesis {
                paren: ')',
                position,
            }),
            Token::And | Token::Or => Err(QueryError::MissingOperandBefore {
                operator: token.describe(),
                position,
            }),
        }
    }

    /// After an opening parenthesis at `open`: the inner query and its closing parenthesis.
    fn parse_group(
        &mut self,
        open: usize,
        field: Option<&str>,
        depth: usize,
    ) -> Result<Query, QueryError> {
        match self.tokens.peek() {
            Some((_, Token::RParen)) => {
                return Err(QueryError::EmptyParentheses { position: open })
            }
            None => {
                return Err(QueryError::UnbalancedParenthesis {
                    paren: '(',
                    position: open,
                })
            }
            Some(_) => {}
        }
        let inner = self.parse_or(field, depth + 1)?;
        match self.tokens.next() {
            Some((_, Token::RParen)) => Ok(inner),
            _ => Err(QueryError::UnbalancedParenthesis {
                paren: '(',
                position: open,
            }),
        }
    }
}

/// A bare `*` matches everything; `field:*` stays a term (the field must have some value).
fn make_term(field: Option<String>, value: Value) -> Query {
    if field.is_none() && value == Value::Word("*".into()) {
        return Query::All;
    }
    Query::Term(Term { field, value })
}

fn flatten(mut parts: Vec<Query>, combine: fn(Vec<Query>) -> Query) -> Query {
    if parts.len() == 1 {
        parts.pop().unwrap_or(Query::All)
    } else {
        combine(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{sample_org, Fixture, Group, User};
    use std::collections::BTreeMap;

    /// A document given as field lists; free text is the listed fields' values.
    struct Doc {
        fields: BTreeMap<&'static str, Vec<String>>,
        free_text_fields: &'static [&'static str],
    }

    impl Document for Doc {
        fn field(&self, name: &str) -> Vec<String> {
            self.fields.get(name).cloned().unwrap_or_default()
        }
        fn free_text(&self) -> Vec<String> {
            self.free_text_fields
                .iter()
                .flat_map(|f| self.field(f))
                .collect()
        }
    }

    fn one(s: &str) -> Vec<String> {
        vec![s.to_owned()]
    }

    fn opt(s: &Option<String>) -> Vec<String> {
        s.iter().cloned().collect()
    }

    fn user_doc(portal_id: &str, u: &User) -> Doc {
        let mut fields = BTreeMap::new();
        fields.insert("id", one(&u.id));
        fields.insert("username", one(&u.username));
        fields.insert("fullname", one(&u.full_name));
        fields.insert("firstname", one(&u.first_name));
        fields.insert("lastname", one(&u.last_name));
        fields.insert("email", one(&u.email));
        fields.insert("role", one(&u.role));
        fields.insert("tags", u.tags.clone());
        fields.insert("accountid", one(portal_id));
        fields.insert("orgid", one(portal_id));
        fields.insert("provider", one(&u.provider));
        fields.insert("access", one(&u.access));
        fields.insert("created", one(&u.created.to_string()));
        fields.insert("modified", one(&u.modified.to_string()));
        Doc {
            fields,
            free_text_fields: &["username", "fullname", "firstname", "lastname"],
        }
    }

    fn group_doc(portal_id: &str, g: &Group) -> Doc {
        let mut fields = BTreeMap::new();
        fields.insert("id", one(&g.id));
        fields.insert("title", one(&g.title));
        fields.insert("owner", one(&g.owner));
        fields.insert("tags", g.tags.clone());
        fields.insert("access", one(&g.access));
        fields.insert("accountid", one(portal_id));
        fields.insert("orgid", one(portal_id));
        fields.insert("snippet", opt(&g.snippet));
        fields.insert("description", opt(&g.description));
        fields.insert("created", one(&g.created.to_string()));
        fields.insert("modified", one(&g.modified.to_string()));
        Doc {
            fields,
            free_text_fields: &["title", "tags", "snippet", "description", "owner"],
        }
    }

    fn search_users(fixture: &Fixture, q: &str) -> Vec<String> {
        let query = parse(q).unwrap();
        fixture
            .users
            .iter()
            .filter(|u| query.matches(&user_doc(&fixture.portal.id, u)))
            .map(|u| u.username.clone())
            .collect()
    }

    fn search_groups(fixture: &Fixture, q: &str) -> Vec<String> {
        let query = parse(q).unwrap();
        fixture
            .groups
            .iter()
            .filter(|g| query.matches(&group_doc(&fixture.portal.id, g)))
            .map(|g| g.title.clone())
            .collect()
    }

    #[test]
    fn seed_user_filter_keeps_exactly_the_ordinary_source_users() {
        let found = search_users(&sample_org::source(), "!esri_ & !admin");
        assert_eq!(
            found,
            [
                "brown.rogers",
                "davis.reed",
                "johnson.stewart",
                "jones.morris",
                "miller.cook",
                "moore.bell",
                "project_archiver",
                "smith.collins",
                "taylor.murphy",
                "williams.sanchez",
                "wilson.morgan"
            ]
        );
    }

    #[test]
    fn seed_user_filter_on_the_target() {
        let found = search_users(&sample_org::target(), "!esri_ & !admin & !system_publisher");
        assert_eq!(found, ["arcgis_python_api", "publisher1"]);
    }

    #[test]
    fn seed_group_filter_on_both_portals() {
        let query = "!owner:esri_* & !Basemaps";
        assert_eq!(
            search_groups(&sample_org::source(), query),
            [
                "Central Services",
                "Compliance",
                "Customer Service, Finance, Billing and Accounting",
                "Demographic Content"
            ]
        );
        assert_eq!(
            search_groups(&sample_org::target(), query),
            ["Featured Maps and Apps"]
        );
    }

    #[test]
    fn python_api_style_user_queries_on_the_sample() {
        let source = sample_org::source();
        // The Python API appends the org id to stay inside the organisation.
        assert_eq!(
            search_users(&source, "!esri_ & !admin & accountid:0123456789ABCDEF").len(),
            11
        );
        assert!(search_users(&source, "accountid:someotherorgid").is_empty());
        assert_eq!(
            search_users(&source, "role:org_admin AND NOT username:esri_*"),
            ["admin", "davis.reed", "smith.collins"]
        );
        assert_eq!(
            search_users(&source, r#"fullname:"Brown Rogers""#),
            ["brown.rogers"]
        );
        assert_eq!(search_users(&source, "username:DAVIS.REED"), ["davis.reed"]);
        assert_eq!(search_users(&source, "*").len(), source.users.len());
        assert_eq!(search_users(&source, "").len(), source.users.len());
    }

    fn item(
        title: &str,
        item_type: &str,
        keywords: &[&str],
        created: i64,
        description: &str,
    ) -> Doc {
        let mut fields = BTreeMap::new();
        fields.insert("id", one(&format!("{created:032x}")));
        fields.insert("title", one(title));
        fields.insert("type", one(item_type));
        fields.insert(
            "typekeywords",
            keywords.iter().map(|k| k.to_string()).collect(),
        );
        fields.insert("tags", vec!["response".into(), "Arkansas".into()]);
        fields.insert("owner", one("brown.rogers"));
        fields.insert("group", vec!["g1".into(), "g2".into()]);
        fields.insert("created", one(&created.to_string()));
        fields.insert("description", one(description));
        Doc {
            fields,
            free_text_fields: &[
                "title",
                "tags",
                "description",
                "type",
                "typekeywords",
                "owner",
            ],
        }
    }

    fn matching(q: &str, docs: &[(&'static str, Doc)]) -> Vec<&'static str> {
        let query = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        docs.iter()
            .filter(|(_, d)| query.matches(d))
            .map(|(name, _)| *name)
            .collect()
    }

    fn items() -> Vec<(&'static str, Doc)> {
        vec![
            (
                "map",
                item(
                    "Brown Rogers response locations",
                    "Web Map",
                    &["Web Map", "source-aaa"],
                    1000,
                    "<p>Locations where Brown Rogers responded to service calls.</p>",
                ),
            ),
            (
                "app",
                item(
                    "Response viewer",
                    "Web Mapping Application",
                    &["Web Map", "source-bbb"],
                    2000,
                    "Shows service calls.",
                ),
            ),
            (
                "service",
                item(
                    "AR",
                    "Feature Service",
                    &["Feature Service", "source-aaa"],
                    3000,
                    "Service calls, as points.",
                ),
            ),
        ]
    }

    #[test]
    fn item_query_table() {
        let docs = items();
        let table: &[(&str, &[&str])] = &[
            // The Python cloner's idempotency lookup: juxtaposition is AND, type is whole-value.
            (r#"typekeywords:source-aaa type:"Web Map""#, &["map"]),
            ("typekeywords:source-aaa", &["map", "service"]),
            ("typekeywords:source-*", &["map", "app", "service"]),
            // A list element must match whole: "Web" is not the keyword "Web Map".
            ("typekeywords:web", &[]),
            (r#"type:"web map""#, &["map"]),
            ("type:*Map*", &["map", "app"]),
            ("title:rogers", &["map"]),
            (r#"title:"rogers response""#, &["map"]),
            (r#"title:"response rogers""#, &[]),
            ("title:AR", &["service"]),
            ("title:Brown*", &["map"]),
            (r#"description:"service calls""#, &["map", "app", "service"]),
            ("id:00000000000000000000000000000bb8", &["service"]),
            ("id:bb8", &[]),
            ("group:g2", &["map", "app", "service"]),
            ("owner:brown.rogers", &["map", "app", "service"]),
            ("owner:brown", &[]),
            ("nosuchfield:anything", &[]),
            ("!nosuchfield:anything", &["map", "app", "service"]),
            // Bare words are prefixes of free-text words.
            ("resp", &["map", "app", "service"]),
            ("viewer", &["app"]),
            ("view*", &["app"]),
            (r#""response viewer""#, &["app"]),
            ("Feature", &["service"]),
            // Keywords are uppercase only: lowercase "and" is a (non-matching) term.
            ("viewer and map", &[]),
            ("viewer AND map", &["app"]),
            ("viewer OR feature", &["app", "service"]),
            ("viewer || feature", &["app", "service"]),
            ("viewer | feature", &["app", "service"]),
            ("resp && !viewer", &["map", "service"]),
            ("resp -viewer", &["map", "service"]),
            ("resp NOT viewer", &["map", "service"]),
            ("+resp -viewer", &["map", "service"]),
            ("NOT (viewer OR feature)", &["map"]),
            // AND binds tighter than OR.
            ("viewer OR feature AND rogers", &["app"]),
            ("(viewer OR response) AND rogers", &["map"]),
            ("viewer OR (feature AND calls)", &["app", "service"]),
            ("title:(viewer OR ar)", &["app", "service"]),
            // Ranges compare numbers, zero-padded or not, with open ends.
            ("created:[1000 TO 2000]", &["map", "app"]),
            ("created:{1000 TO 2000]", &["app"]),
            ("created:{1000 TO 3000}", &["app"]),
            ("created:[0000000000002000 TO *]", &["app", "service"]),
            ("created:[* TO 1500]", &["map"]),
            ("created:[900 TO 10000]", &["map", "app", "service"]),
            ("TYPE:\"Feature Service\"", &["service"]),
            // arcgis-rest-js SearchQueryBuilder output: a space after the colon, boosts.
            ("owner: brown.rogers", &["map", "app", "service"]),
            (
                r#"owner: brown.rogers AND (type: "Web Map" OR type: "Feature Service") AND created: [1000 TO 3000]"#,
                &["map", "service"],
            ),
            ("title: viewer^3 OR title: ar", &["app", "service"]),
            (r#"type: "Web Map"^2"#, &["map"]),
            ("(title: viewer)^2", &["app"]),
        ];
        for (q, expected) in table {
            assert_eq!(&matching(q, &docs), expected, "query {q}");
        }
    }

    #[test]
    fn operator_precedence_shapes_the_tree() {
        let tree = parse("a OR b AND c").unwrap();
        let Query::Or(parts) = tree else {
            panic!("expected OR at the top: {tree:?}")
        };
        assert_eq!(parts.len(), 2);
        assert!(matches!(parts[1], Query::And(ref inner) if inner.len() == 2));
        assert_eq!(parse("a b c").unwrap(), parse("a AND b && c").unwrap());
        assert_eq!(parse("!a").unwrap(), parse("NOT a").unwrap());
        assert_eq!(parse("-a").unwrap(), parse("!a").unwrap());
        assert_eq!(parse("Owner:x").unwrap(), parse("owner:x").unwrap());
        assert_eq!(parse("*").unwrap(), Query::All);
        assert_eq!(parse("   ").unwrap(), Query::All);
    }

    #[test]
    fn malformed_queries_are_errors_with_useful_messages() {
        let cases: &[(&str, &str)] = &[
            ("(a OR b", "unmatched '('"),
            ("a OR b)", "unmatched ')'"),
            ("((a)", "unmatched '('"),
            (")", "unmatched ')'"),
            ("title:\"open", "never closed"),
            ("\"open", "never closed"),
            ("created:[1 TO 2", "never closed"),
            ("created:[1 2]", "[lower TO upper]"),
            ("[1 TO 2]", "needs a field"),
            ("title:", "has no value"),
            ("title: ", "has no value"),
            ("title: )", "has no value"),
            ("title: AND x", "has no value"),
            ("title:^2", "has no value"),
            ("a AND", "'AND'"),
            ("a OR", "'OR'"),
            ("OR a", "'OR'"),
            ("a AND OR b", "'AND'"),
            ("NOT", "'NOT'"),
            ("a !", "'NOT'"),
            ("()", "empty parentheses"),
        ];
        for (q, fragment) in cases {
            match parse(q) {
                Ok(tree) => panic!("{q:?} parsed as {tree:?}"),
                Err(e) => assert!(
                    e.to_string().contains(fragment),
                    "{q:?}: message {e} lacks {fragment:?}"
                ),
            }
        }
        let deep = "(".repeat(10_000) + "a" + &")".repeat(10_000);
        assert!(matches!(parse(&deep), Err(QueryError::TooDeep { .. })));
        let nots = "!".repeat(10_000) + "a";
        assert!(matches!(parse(&nots), Err(QueryError::TooDeep { .. })));
    }

    #[test]
    fn parse_never_panics_on_arbitrary_short_strings() {
        const ALPHABET: &[char] = &[
            'a', 'B', ' ', ':', '"', '(', ')', '[', ']', '{', '}', '*', '!', '-', '+', '&', '|',
            '\\', 'T', 'O', 'N', 'D', 'R', 'é', '1',
        ];
        let docs = items();
        // Every string of length <= 3 over the alphabet, then a deterministic sample of longer
        // ones (a small linear congruential generator keeps the test free of new crates).
        let mut inputs: Vec<String> = vec![String::new()];
        for _ in 0..3 {
            let longer: Vec<String> = inputs
                .iter()
                .flat_map(|s| ALPHABET.iter().map(move |c| format!("{s}{c}")))
                .collect();
            inputs.extend(longer);
        }
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize
        };
        for _ in 0..20_000 {
            let len = next() % 16 + 4;
            let s: String = (0..len)
                .map(|_| ALPHABET[next() % ALPHABET.len()])
                .collect();
            inputs.push(s);
        }
        for input in inputs
            .iter()
            .chain(["OR AND NOT".to_string(), "title:(a OR".into(), "TO".into()].iter())
        {
            if let Ok(query) = parse(input) {
                for (_, doc) in &docs {
                    query.matches(doc);
                }
            }
        }
        assert!(inputs.len() > 10_000);
    }

    #[test]
    fn wildcards_anchor_at_both_ends() {
        assert!(wildcard_matches("esri_*", "esri_nav"));
        assert!(!wildcard_matches("esri_*", "not_esri_nav"));
        assert!(wildcard_matches("*_nav", "esri_nav"));
        assert!(wildcard_matches("e*i*v", "esri_nav"));
        assert!(!wildcard_matches("e*i*x", "esri_nav"));
        assert!(wildcard_matches("a*a", "aa"));
        assert!(!wildcard_matches("aa*aa", "aaa"));
        assert!(wildcard_matches("*", ""));
        assert!(wildcard_matches("**", "x"));
    }
}
