//! Name filters from the config (`esri_*`, `*test*`): `*` matches any run of characters,
//! everything else matches itself ignoring case, because portal usernames, group titles and
//! tags are compared case-insensitively by the portal too.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Pattern {
    /// As written, for messages and Display.
    original: String,
    /// Lowercased literal pieces between the `*`s; `*` sits between consecutive pieces.
    pieces: Vec<String>,
}

impl Pattern {
    /// Fails only for an empty pattern, which would be a typo rather than a filter.
    pub fn new(pattern: &str) -> Option<Pattern> {
        if pattern.is_empty() {
            return None;
        }
        Some(Pattern {
            original: pattern.to_owned(),
            pieces: pattern.split('*').map(str::to_lowercase).collect(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.original
    }

    pub fn matches(&self, candidate: &str) -> bool {
        let candidate = candidate.to_lowercase();
        let (first, rest) = match self.pieces.split_first() {
            Some(split) => split,
            None => return candidate.is_empty(),
        };
        let Some(mut remaining) = candidate.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            // No `*` at all: the whole candidate must have been the literal.
            return remaining.is_empty();
        };
        // Greedy leftmost matching of the middle pieces is correct for `*`-only globs: taking
        // the earliest occurrence leaves the most room for the pieces after it.
        for piece in middle {
            match remaining.find(piece.as_str()) {
                Some(at) => remaining = &remaining[at + piece.len()..],
                None => return false,
            }
        }
        remaining.ends_with(last.as_str())
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.original)
    }
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    #[test]
    fn globs_match_case_insensitively() {
        let cases = [
            ("esri_*", "esri_livingatlas", true),
            ("esri_*", "ESRI_Nav", true),
            ("esri_*", "myesri_x", false),
            ("*admin", "portaladmin", true),
            ("*admin", "admins", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "acb", false),
            ("ab*ab", "ab", false),
            ("ab*ab", "abab", true),
            ("Basemaps", "basemaps", true),
            ("Basemaps", "Basemaps 2", false),
            ("*", "", true),
            ("*", "anything", true),
            ("**x", "yx", true),
        ];
        for (pattern, candidate, expected) in cases {
            let compiled = Pattern::new(pattern).unwrap();
            assert_eq!(
                compiled.matches(candidate),
                expected,
                "{pattern} against {candidate}"
            );
        }
    }

    #[test]
    fn an_empty_pattern_is_refused_and_display_shows_the_original() {
        assert!(Pattern::new("").is_none());
        assert_eq!(Pattern::new("Esri_*").unwrap().to_string(), "Esri_*");
    }
}
