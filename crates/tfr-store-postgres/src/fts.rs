//! Full text, tokenised exactly like the SQLite store's FTS5 index (`unicode61`,
//! `remove_diacritics 2`): both the indexed text and the query go through
//! [`tfr_core::query::tokens`], and tfr writes the resulting `tsvector` and `tsquery` itself, as
//! literals. No PostgreSQL text-search configuration touches them — it is `simple` with tfr's
//! tokenizer in place of PostgreSQL's parser: no stop words, no stemming, any script, the same
//! words whatever the database's locale.
//!
//! Phrases stay within one field: each field's words get consecutive positions and a gap of one
//! position separates fields, so `'new' <-> 'ui'` cannot join the end of the title to the start
//! of the system. A prefix (`word*`, `"new pl"*`) is `:*` on the last word.
//!
//! PostgreSQL's own limits, and what they change (only for very long texts):
//! - a lexeme holds at most 2046 bytes: longer words are cut there, on both sides, so they are
//!   still found (a search for a longer word also finds words sharing its first 2046 bytes);
//! - positions stop at 16383 and a lexeme keeps at most 256 of them: in a description of many
//!   thousands of words (it comes last for this reason) a phrase far into it, or one made of a
//!   word repeated hundreds of times, may be missed. Single words are always found.

use std::collections::BTreeMap;
use std::fmt::Write;

use tfr_core::Event;
use tfr_core::query::{TextPattern, tokens};

/// The longest lexeme PostgreSQL accepts, in bytes.
const MAX_LEXEME_BYTES: usize = 2046;
/// The largest position a `tsvector` records.
const MAX_POSITION: u32 = 16_383;
/// The most positions a `tsvector` keeps for one lexeme.
const MAX_POSITIONS_PER_LEXEME: usize = 256;

/// The words of `text`, as both the index and the query see them.
fn lexemes(text: &str) -> Vec<String> {
    tokens(text)
        .into_iter()
        .map(|mut word| {
            if word.len() > MAX_LEXEME_BYTES {
                let mut end = MAX_LEXEME_BYTES;
                while !word.is_char_boundary(end) {
                    end -= 1;
                }
                word.truncate(end);
            }
            word
        })
        .collect()
}

/// A lexeme as a quoted `tsvector`/`tsquery` literal. Tokens are letters and digits only, so
/// the escaping is belt and braces.
fn quote(lexeme: &str, out: &mut String) {
    out.push('\'');
    for c in lexeme.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

/// The `tsvector` literal indexing an event: title, system, author, tags (one per line, as in
/// SQLite), version, description. Diffs are not indexed.
pub fn document(event: &Event) -> String {
    let tags = event.tags.join("\n");
    let fields = [
        Some(event.title.as_str()),
        Some(event.system.as_str()),
        Some(event.author.as_str()),
        Some(tags.as_str()),
        event.version.as_deref(),
        event.description.as_deref(),
    ];
    let mut positions: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut position = 0_u32;
    for field in fields.into_iter().flatten() {
        // The gap: a field's first word is never next to the previous field's last.
        position = position.saturating_add(1);
        for word in lexemes(field) {
            position = position.saturating_add(1);
            let kept = positions.entry(word).or_default();
            let at = position.min(MAX_POSITION);
            if kept.len() < MAX_POSITIONS_PER_LEXEME && kept.last() != Some(&at) {
                kept.push(at);
            }
        }
    }
    let mut literal = String::new();
    for (word, at) in positions {
        if !literal.is_empty() {
            literal.push(' ');
        }
        quote(&word, &mut literal);
        for (index, position) in at.iter().enumerate() {
            let separator = if index == 0 { ':' } else { ',' };
            // Writing to a String cannot fail.
            let _ = write!(literal, "{separator}{position}");
        }
    }
    literal
}

/// The `tsquery` literal of one pattern: its words as a phrase (`<->`), the last one a prefix
/// for `word*`. `None` when the pattern has no words at all: it matches nothing.
pub fn query(pattern: &TextPattern) -> Option<String> {
    let words = lexemes(pattern.text());
    let mut literal = String::new();
    for (index, word) in words.iter().enumerate() {
        if index > 0 {
            literal.push_str(" <-> ");
        }
        quote(word, &mut literal);
    }
    if words.is_empty() {
        return None;
    }
    if matches!(pattern, TextPattern::Prefix(_)) {
        literal.push_str(":*");
    }
    Some(literal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tfr_core::Limits;
    use tfr_core::validate::validate_new_event;

    fn event(value: serde_json::Value) -> Event {
        let now = "2026-11-26T12:00:00Z".parse().unwrap();
        validate_new_event(&value, &Limits::default(), now)
            .unwrap()
            .into_event(now, "test")
    }

    #[test]
    fn fields_are_apart_and_words_normalised() {
        let event = event(json!({
            "title": "Déploiement Player-5.2", "system": "api", "author": "Zoë",
            "tags": ["release:5.2", "canary"], "diff": "+hidden"
        }));
        // Title from 2, system from 7, author 9, tags from 11: one position apart each.
        assert_eq!(
            document(&event),
            "'2':5,13 '5':4,12 'api':7 'canary':14 'deploiement':2 'player':3 'release':11 'zoe':9"
        );
    }

    #[test]
    fn queries() {
        assert_eq!(
            query(&TextPattern::Phrase("New UI".into())).as_deref(),
            Some("'new' <-> 'ui'")
        );
        assert_eq!(
            query(&TextPattern::Prefix("new pl".into())).as_deref(),
            Some("'new' <-> 'pl':*")
        );
        assert_eq!(
            query(&TextPattern::Word("o'brien".into())).as_deref(),
            Some("'o' <-> 'brien'")
        );
        assert_eq!(query(&TextPattern::Word("--".into())), None);
    }

    #[test]
    fn long_words_are_cut_on_a_character_boundary() {
        let word = "ж".repeat(1500);
        let cut = lexemes(&word);
        assert_eq!(cut.len(), 1);
        assert!(cut[0].len() <= MAX_LEXEME_BYTES);
        assert_eq!(cut[0].chars().count(), MAX_LEXEME_BYTES / 2);
    }
}
