//! Tokens of the filter grammar (RFC 7644 §3.4.2.2) and of PATCH paths (§3.5.2).
//!
//! The lexer is lazy: the parser pulls one token at a time, so a PATCH path can stop right
//! after the `]` of its value filter and read the `.subAttr` that follows itself.
//!
//! There are only six kinds of token. Everything that is not whitespace, a delimiter
//! (`(` `)` `[` `]`) or a quoted string is a *word*: attribute paths
//! (`urn:...:2.0:User:manager.value`), keywords (`and`, `eq`, `not`), numbers and bare words
//! are all words, told apart by the parser from where they stand. That keeps URNs, whose
//! dots and colons would confuse a character-class lexer, in one piece.

use std::str::CharIndices;

/// A syntax error: where (a byte offset into the text, if one applies) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    /// Byte offset of the offending token; `None` when the message says where itself.
    pub at: Option<usize>,
    /// What was expected and what was found.
    pub msg: String,
}

impl SyntaxError {
    /// An error at a byte offset.
    pub(crate) fn at(byte: usize, msg: impl Into<String>) -> Self {
        Self {
            at: Some(byte),
            msg: msg.into(),
        }
    }

    /// An error whose message carries its own position (or needs none).
    pub(crate) fn general(msg: impl Into<String>) -> Self {
        Self {
            at: None,
            msg: msg.into(),
        }
    }

    /// The `detail` shown to the admin: `invalid filter at character 10: ...`. Positions are
    /// 1-based and count characters, not bytes, because that is what a person counts in the
    /// IdP's log.
    pub(crate) fn render(&self, src: &str, what: &str) -> String {
        match self.at {
            Some(byte) => format!(
                "invalid {what} at character {}: {}",
                char_pos(src, byte),
                self.msg
            ),
            None => format!("invalid {what}: {}", self.msg),
        }
    }
}

/// The 1-based character position of a byte offset.
pub(crate) fn char_pos(src: &str, byte: usize) -> usize {
    src.get(..byte).map_or(0, |p| p.chars().count()) + 1
}

/// A token kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok<'a> {
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// A quoted string, unescaped.
    Str(String),
    /// A run of characters up to whitespace, a delimiter or a quote.
    Word(&'a str),
    /// No more input.
    End,
}

/// A token with its byte span.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token<'a> {
    /// The kind (and text).
    pub kind: Tok<'a>,
    /// Byte offset of its first character.
    pub start: usize,
    /// Byte offset just after it.
    pub end: usize,
}

impl Token<'_> {
    /// How the token is named in error messages. String contents are not echoed: they may be
    /// personal data (see [`crate::scim::error::ScimError::detail`]).
    pub(crate) fn describe(&self, what: &str) -> String {
        match &self.kind {
            Tok::LParen => "\"(\"".to_owned(),
            Tok::RParen => "\")\"".to_owned(),
            Tok::LBracket => "\"[\"".to_owned(),
            Tok::RBracket => "\"]\"".to_owned(),
            Tok::Str(_) => "a quoted string".to_owned(),
            Tok::Word(w) => format!("\"{}\"", shorten(w)),
            Tok::End => format!("the end of the {what}"),
        }
    }
}

/// A word cut to 40 characters for error messages.
pub(crate) fn shorten(w: &str) -> String {
    match w.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &w[..i]),
        None => w.to_owned(),
    }
}

/// Characters that end a word.
fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '"')
}

/// A lazy tokenizer over `src`, starting at a byte offset.
pub(crate) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    /// A lexer reading `src` from byte `pos` (which must be a character boundary).
    pub(crate) fn new(src: &'a str, pos: usize) -> Self {
        Self { src, pos }
    }

    /// The next token. Whitespace of any kind and amount between tokens is skipped: IdPs and
    /// hand-written `curl` filters put tabs and double spaces where RFC 7644 has one SP.
    pub(crate) fn next_token(&mut self) -> Result<Token<'a>, SyntaxError> {
        let rest = self.src.get(self.pos..).unwrap_or("");
        let trimmed = rest.trim_start();
        self.pos += rest.len() - trimmed.len();
        let start = self.pos;
        let Some(c) = trimmed.chars().next() else {
            return Ok(Token {
                kind: Tok::End,
                start,
                end: start,
            });
        };
        let kind = match c {
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            '"' => {
                let (s, end) = self.string(start)?;
                self.pos = end;
                return Ok(Token {
                    kind: Tok::Str(s),
                    start,
                    end,
                });
            }
            _ => {
                let len = trimmed.find(is_delimiter).unwrap_or(trimmed.len());
                self.pos += len;
                return Ok(Token {
                    kind: Tok::Word(&trimmed[..len]),
                    start,
                    end: self.pos,
                });
            }
        };
        self.pos += 1;
        Ok(Token {
            kind,
            start,
            end: self.pos,
        })
    }

    /// A JSON string (RFC 8259 §7: `\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`, `\uXXXX`
    /// with surrogate pairs) starting at the quote at byte `start`; returns the text and the
    /// byte offset after the closing quote. Raw control characters are accepted: a filter
    /// arrives URL-decoded and a stray tab in a value is the client's intent.
    fn string(&self, start: usize) -> Result<(String, usize), SyntaxError> {
        let body_at = start + 1;
        let body = self.src.get(body_at..).unwrap_or("");
        let mut out = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Ok((out, body_at + i + 1)),
                '\\' => {
                    let esc_at = body_at + i;
                    let Some((_, e)) = chars.next() else { break };
                    let decoded = match e {
                        '"' => '"',
                        '\\' => '\\',
                        '/' => '/',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        'u' => unicode_escape(&mut chars).ok_or_else(|| {
                            SyntaxError::at(
                                esc_at,
                                "invalid \\u escape in a string: expected four hex digits \
                                 (and a low surrogate after a high one)",
                            )
                        })?,
                        other => {
                            return Err(SyntaxError::at(
                                esc_at,
                                format!(
                                    "invalid escape \"\\{other}\" in a string (JSON escapes \
                                     are \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)"
                                ),
                            ))
                        }
                    };
                    out.push(decoded);
                }
                c => out.push(c),
            }
        }
        Err(SyntaxError::general(format!(
            "unterminated string starting at character {}",
            char_pos(self.src, start)
        )))
    }
}

/// The rest of a `\uXXXX` escape (after the `u`), joining a UTF-16 surrogate pair.
fn unicode_escape(chars: &mut CharIndices<'_>) -> Option<char> {
    let hi = hex4(chars)?;
    if (0xD800..0xDC00).contains(&hi) {
        if chars.next()?.1 != '\\' || chars.next()?.1 != 'u' {
            return None;
        }
        let lo = hex4(chars)?;
        if !(0xDC00..0xE000).contains(&lo) {
            return None;
        }
        return char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
    }
    char::from_u32(hi)
}

fn hex4(chars: &mut CharIndices<'_>) -> Option<u32> {
    let mut v = 0;
    for _ in 0..4 {
        v = v * 16 + chars.next()?.1.to_digit(16)?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok<'_>> {
        let mut lexer = Lexer::new(src, 0);
        let mut out = Vec::new();
        loop {
            let t = lexer.next_token().unwrap();
            if t.kind == Tok::End {
                return out;
            }
            out.push(t.kind);
        }
    }

    fn lex_err(src: &str) -> String {
        let mut lexer = Lexer::new(src, 0);
        loop {
            match lexer.next_token() {
                Ok(t) if t.kind == Tok::End => panic!("{src:?} lexed"),
                Ok(_) => {}
                Err(e) => return e.render(src, "filter"),
            }
        }
    }

    #[test]
    fn urns_with_dots_and_colons_stay_one_word() {
        let urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value";
        assert_eq!(
            kinds(&format!("{urn} eq \"x\"")),
            vec![Tok::Word(urn), Tok::Word("eq"), Tok::Str("x".into())]
        );
    }

    #[test]
    fn delimiters_end_words_and_any_whitespace_separates_tokens() {
        assert_eq!(
            kinds("not(emails[type\teq  \"w\"])\n"),
            vec![
                Tok::Word("not"),
                Tok::LParen,
                Tok::Word("emails"),
                Tok::LBracket,
                Tok::Word("type"),
                Tok::Word("eq"),
                Tok::Str("w".into()),
                Tok::RBracket,
                Tok::RParen,
            ]
        );
    }

    #[test]
    fn strings_decode_json_escapes_including_surrogate_pairs() {
        assert_eq!(
            kinds(r#""a\"b\\c\/\u00e9\n\ud83d\ude00 ]:.""#),
            vec![Tok::Str("a\"b\\c/é\n😀 ]:.".into())]
        );
    }

    #[test]
    fn an_unterminated_string_reports_where_it_started() {
        assert_eq!(
            lex_err(r#"userName eq "john"#),
            "invalid filter: unterminated string starting at character 13"
        );
        assert_eq!(
            lex_err(r#"a eq "x\"#),
            "invalid filter: unterminated string starting at character 6"
        );
    }

    #[test]
    fn bad_escapes_are_reported_at_the_backslash() {
        assert!(
            lex_err(r#"a eq "x\q""#).starts_with("invalid filter at character 8: invalid escape")
        );
        assert!(lex_err(r#"a eq "\u12""#).contains("invalid \\u escape"));
        assert!(lex_err(r#"a eq "\ud83d""#).contains("low surrogate"));
        assert!(lex_err(r#"a eq "\ude00""#).contains("invalid \\u escape"));
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        assert_eq!(char_pos("éé x", 5), 4);
        assert_eq!(char_pos("abc", 99), 1);
    }

    #[test]
    fn long_words_are_shortened_in_messages() {
        let w = "a".repeat(100);
        assert_eq!(shorten(&w).len(), 43);
        assert_eq!(shorten("short"), "short");
    }
}
