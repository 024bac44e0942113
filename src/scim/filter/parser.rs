//! Recursive-descent parser for the filter grammar of RFC 7644 §3.4.2.2.
//!
//! ```text
//! FILTER    = orExpr
//! orExpr    = andExpr *("or" andExpr)              ; left-associative, lowest precedence
//! andExpr   = unary *("and" unary)                 ; left-associative
//! unary     = "not" "(" FILTER ")" / "(" FILTER ")"
//!           / attrPath "[" valFilter "]"           ; no value path inside a value path
//!           / attrPath "pr" / attrPath compareOp compValue
//! ```
//!
//! Precedence is `not` > `and` > `or` as §3.4.2.2 table 4 orders them. Keywords and operators
//! are case-insensitive (§3.4.2.2: "Attribute names and attribute operators used in filters
//! are case insensitive").
//!
//! The parser recurses once per `(`, `not(` or `[`, and checks the nesting depth *before*
//! each recursion, so hostile input (`not(not(not(...`) fails with `invalidFilter` long
//! before the stack is at risk; `and`/`or` chains are loops, not recursion.

use serde_json::Number;

use super::lexer::{shorten, Lexer, SyntaxError, Tok, Token};
use super::{CompValue, CompareOp, Filter, Limits};
use crate::scim::path::{parse_attr_word, AttrPath};

/// The comparison operators as written, in the order error messages list them.
const OPERATORS: &str = "eq, ne, co, sw, ew, gt, ge, lt, le, pr";

/// Parses a whole filter.
pub(crate) fn parse_filter(src: &str, limits: &Limits) -> Result<Filter, SyntaxError> {
    if src.trim().is_empty() {
        return Err(SyntaxError::general("the filter is empty"));
    }
    let mut p = Parser::new(src, 0, limits, "filter");
    let filter = p.parse_or(0, false)?;
    let tok = p.next()?;
    match tok.kind {
        Tok::End => Ok(filter),
        Tok::RParen => Err(SyntaxError::at(
            tok.start,
            "unbalanced parenthesis: this \")\" has no matching \"(\"",
        )),
        Tok::RBracket => Err(SyntaxError::at(
            tok.start,
            "unbalanced bracket: this \"]\" has no matching \"[\"",
        )),
        _ => Err(SyntaxError::at(
            tok.start,
            format!(
                "expected \"and\", \"or\" or the end of the filter, found {}",
                tok.describe("filter")
            ),
        )),
    }
}

/// Parses the value filter of a PATCH path (RFC 7644 §3.5.2) whose `[` is at byte `open`;
/// returns the filter and the byte offset just after the closing `]`. Nothing after the `]`
/// is read.
pub(crate) fn parse_bracketed(
    src: &str,
    open: usize,
    limits: &Limits,
) -> Result<(Filter, usize), SyntaxError> {
    let mut p = Parser::new(src, open + 1, limits, "path");
    p.enter(1, open)?;
    let filter = p.parse_or(1, true)?;
    let end = p.expect_close(Close::Bracket, open)?;
    Ok((filter, end))
}

/// The closing delimiter a nested expression waits for.
#[derive(Clone, Copy)]
enum Close {
    Paren,
    Bracket,
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<Token<'a>>,
    limits: Limits,
    terms: usize,
    /// "filter" or "path", for "the end of the ...".
    what: &'static str,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str, pos: usize, limits: &Limits, what: &'static str) -> Self {
        Self {
            lexer: Lexer::new(src, pos),
            peeked: None,
            limits: *limits,
            terms: 0,
            what,
        }
    }

    fn next(&mut self) -> Result<Token<'a>, SyntaxError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lexer.next_token(),
        }
    }

    fn peek(&mut self) -> Result<&Token<'a>, SyntaxError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next_token()?);
        }
        match &self.peeked {
            Some(t) => Ok(t),
            None => Err(SyntaxError::general("internal error: lost a token")),
        }
    }

    fn peek_keyword(&mut self, keyword: &str) -> Result<bool, SyntaxError> {
        Ok(matches!(self.peek()?.kind, Tok::Word(w) if w.eq_ignore_ascii_case(keyword)))
    }

    /// Refuses to go one level deeper than the limit; called before every recursion.
    fn enter(&self, depth: usize, at: usize) -> Result<(), SyntaxError> {
        if depth > self.limits.max_depth {
            return Err(SyntaxError::at(
                at,
                format!(
                    "filter nests deeper than {} levels of parentheses, not(...) and value \
                     filters",
                    self.limits.max_depth
                ),
            ));
        }
        Ok(())
    }

    fn count_term(&mut self, at: usize) -> Result<(), SyntaxError> {
        self.terms += 1;
        if self.terms > self.limits.max_terms {
            return Err(SyntaxError::at(
                at,
                format!(
                    "filter has more than {} comparison terms",
                    self.limits.max_terms
                ),
            ));
        }
        Ok(())
    }

    fn parse_or(&mut self, depth: usize, in_brackets: bool) -> Result<Filter, SyntaxError> {
        let mut left = self.parse_and(depth, in_brackets)?;
        while self.peek_keyword("or")? {
            self.next()?;
            let right = self.parse_and(depth, in_brackets)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_and(&mut self, depth: usize, in_brackets: bool) -> Result<Filter, SyntaxError> {
        let mut left = self.parse_unary(depth, in_brackets)?;
        while self.peek_keyword("and")? {
            self.next()?;
            let right = self.parse_unary(depth, in_brackets)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_unary(&mut self, depth: usize, in_brackets: bool) -> Result<Filter, SyntaxError> {
        let tok = self.next()?;
        match tok.kind {
            Tok::LParen => self.nested(tok.start, depth, in_brackets, Close::Paren),
            Tok::Word(w) => {
                if w.eq_ignore_ascii_case("not") {
                    let next = self.peek()?;
                    let call = next.kind == Tok::LParen;
                    // `not` followed by an operator is an attribute that happens to be called
                    // "not"; followed by another word it is a `not` missing its parentheses.
                    let missing_paren = matches!(next.kind, Tok::Word(op) if !is_operator(op));
                    let next_start = next.start;
                    if call {
                        let open = self.next()?;
                        let inner = self.nested(open.start, depth, in_brackets, Close::Paren)?;
                        return Ok(Filter::Not(Box::new(inner)));
                    }
                    if missing_paren {
                        return Err(SyntaxError::at(
                            next_start,
                            "expected \"(\" after \"not\": RFC 7644 §3.4.2.2 writes \
                             not (filter)",
                        ));
                    }
                }
                self.attribute_expression(w, tok.start, depth, in_brackets)
            }
            _ => Err(SyntaxError::at(
                tok.start,
                format!(
                    "expected an attribute path, \"not\" or \"(\", found {}",
                    tok.describe(self.what)
                ),
            )),
        }
    }

    /// `( FILTER )` or `not( FILTER )` after the opening parenthesis at byte `open`.
    fn nested(
        &mut self,
        open: usize,
        depth: usize,
        in_brackets: bool,
        close: Close,
    ) -> Result<Filter, SyntaxError> {
        self.enter(depth + 1, open)?;
        let inner = self.parse_or(depth + 1, in_brackets)?;
        self.expect_close(close, open)?;
        Ok(inner)
    }

    /// Consumes the closing delimiter of the group opened at byte `open`; returns the byte
    /// offset after it.
    fn expect_close(&mut self, close: Close, open: usize) -> Result<usize, SyntaxError> {
        let tok = self.next()?;
        let (want, kind, opener) = match close {
            Close::Paren => (Tok::RParen, "parenthesis", "("),
            Close::Bracket => (Tok::RBracket, "bracket", "["),
        };
        let closer = if matches!(close, Close::Paren) {
            ")"
        } else {
            "]"
        };
        if tok.kind == want {
            return Ok(tok.end);
        }
        if tok.kind == Tok::End {
            return Err(SyntaxError::at(
                open,
                format!("unbalanced {kind}: this \"{opener}\" is never closed"),
            ));
        }
        Err(SyntaxError::at(
            tok.start,
            format!(
                "expected \"and\", \"or\" or \"{closer}\", found {}",
                tok.describe(self.what)
            ),
        ))
    }

    /// What follows an attribute path: a value filter, `pr`, or an operator and a value.
    fn attribute_expression(
        &mut self,
        word: &str,
        start: usize,
        depth: usize,
        in_brackets: bool,
    ) -> Result<Filter, SyntaxError> {
        let path = parse_attr_word(word, start)?;
        let tok = self.next()?;
        let op = match tok.kind {
            Tok::LBracket => {
                if in_brackets {
                    return Err(SyntaxError::at(
                        tok.start,
                        "a value filter cannot contain another value filter \
                         (RFC 7644 §3.4.2.2)",
                    ));
                }
                if path.sub.is_some() {
                    return Err(sub_before_bracket(tok.start, &path));
                }
                let inner = self.nested(tok.start, depth, true, Close::Bracket)?;
                return Ok(Filter::ValuePath(path, Box::new(inner)));
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("pr") => {
                self.count_term(start)?;
                return Ok(Filter::Present(path));
            }
            Tok::Word(w) => parse_operator(w),
            _ => None,
        };
        let Some(op) = op else {
            return Err(SyntaxError::at(
                tok.start,
                format!(
                    "expected a comparison operator ({OPERATORS}) after \"{}\", found {}",
                    shorten(word),
                    tok.describe(self.what)
                ),
            ));
        };
        self.count_term(start)?;
        let value = self.value(op)?;
        Ok(Filter::Compare(path, op, value))
    }

    /// `compValue = false / null / true / number / string` (RFC 7644 §3.4.2.2), plus bare
    /// words for Entra (docs/reference/idp-behaviour.md E12).
    fn value(&mut self, op: CompareOp) -> Result<CompValue, SyntaxError> {
        let tok = self.next()?;
        let found = match tok.kind {
            Tok::Str(s) => return Ok(CompValue::String(s)),
            Tok::Word(w) => match literal_word(w) {
                Ok(v) => return Ok(v),
                Err(Some(msg)) => return Err(SyntaxError::at(tok.start, msg)),
                Err(None) if w.starts_with('\'') => format!(
                    "{} (strings are written in double quotes)",
                    tok.describe(self.what)
                ),
                Err(None) => tok.describe(self.what),
            },
            _ => tok.describe(self.what),
        };
        Err(SyntaxError::at(
            tok.start,
            format!(
                "expected a value (a quoted string, a number, true, false or null) after \
                 \"{op}\", found {found}"
            ),
        ))
    }
}

/// The error for `name.givenName[...]`.
pub(crate) fn sub_before_bracket(at: usize, path: &AttrPath) -> SyntaxError {
    SyntaxError::at(
        at,
        format!("a value filter must follow an attribute name, not the sub-attribute \"{path}\""),
    )
}

/// Whether a word is `pr` or a comparison operator.
fn is_operator(w: &str) -> bool {
    w.eq_ignore_ascii_case("pr") || parse_operator(w).is_some()
}

/// A comparison operator, case-insensitively.
pub(crate) fn parse_operator(w: &str) -> Option<CompareOp> {
    const OPS: [(&str, CompareOp); 9] = [
        ("eq", CompareOp::Eq),
        ("ne", CompareOp::Ne),
        ("co", CompareOp::Co),
        ("sw", CompareOp::Sw),
        ("ew", CompareOp::Ew),
        ("gt", CompareOp::Gt),
        ("ge", CompareOp::Ge),
        ("lt", CompareOp::Lt),
        ("le", CompareOp::Le),
    ];
    OPS.iter()
        .find(|(s, _)| s.eq_ignore_ascii_case(w))
        .map(|(_, op)| *op)
}

/// An unquoted value: `true`, `false`, `null` (case-insensitive), a JSON number, or a bare
/// word. `Err(None)` when it is none of them; `Err(Some(msg))` for a number out of range.
fn literal_word(w: &str) -> Result<CompValue, Option<String>> {
    if w.eq_ignore_ascii_case("true") {
        return Ok(CompValue::Bool(true));
    }
    if w.eq_ignore_ascii_case("false") {
        return Ok(CompValue::Bool(false));
    }
    if w.eq_ignore_ascii_case("null") {
        return Ok(CompValue::Null);
    }
    if is_json_number(w) {
        return number(w)
            .map(CompValue::Number)
            .ok_or_else(|| Some(format!("the number {} is out of range", shorten(w))));
    }
    // docs/reference/idp-behaviour.md E12: Entra has sent unquoted values (`externalId eq bsmith`).
    // A bare word of letters, digits, "-", "_", "." and "@" is taken as a string, but only when it
    // is not a keyword, a boolean, null or a number, so no quoted filter changes meaning.
    let keyword = ["and", "or", "not"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(w));
    let bare = w
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if bare && !keyword {
        return Ok(CompValue::String(w.to_owned()));
    }
    // An unquoted RFC 3339 date-time (`meta.created gt 2015-10-10T14:38:21.8617979-07:00`), as
    // Microsoft's SCIM reference test collection sends it (docs/API.md "Deliberate deviations and
    // choices"): its colons keep it from being a bare word, and it cannot be mistaken for anything
    // else.
    if super::compare::parse_datetime(w).is_some() {
        return Ok(CompValue::String(w.to_owned()));
    }
    Err(None)
}

/// JSON number syntax (RFC 8259 §6): `-? (0 / [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let mut i = usize::from(b.first() == Some(&b'-'));
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(i),
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        let frac = digits(i + 1);
        if frac == i + 1 {
            return false;
        }
        i = frac;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp = digits(i);
        if exp == i {
            return false;
        }
        i = exp;
    }
    i == b.len()
}

/// The value of a JSON number, as serde_json would hold it: integers as `i64`/`u64`, anything
/// with a fraction or exponent (or too large) as `f64`. Parsed with the standard library,
/// whose float parsing rounds correctly, so `Display` of the result parses back to the same
/// `Number`. `None` when the value is not finite.
fn number(s: &str) -> Option<Number> {
    if !s.contains(['.', 'e', 'E']) {
        if let Ok(i) = s.parse::<i64>() {
            return Some(i.into());
        }
        if let Ok(u) = s.parse::<u64>() {
            return Some(u.into());
        }
    }
    s.parse::<f64>().ok().and_then(Number::from_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_number_syntax_is_exact() {
        for good in [
            "0", "-0", "12", "-12", "1.5", "0.25", "1e3", "1E+3", "-1.5e-3",
        ] {
            assert!(is_json_number(good), "{good}");
        }
        for bad in [
            "", "-", "01", "+1", "1.", ".5", "1e", "1e+", "1.5.2", "0x10", "1_000", "NaN",
        ] {
            assert!(!is_json_number(bad), "{bad}");
        }
    }

    #[test]
    fn numbers_are_held_like_serde_json_holds_them() {
        assert_eq!(number("-7"), Some(Number::from(-7)));
        assert_eq!(number("18446744073709551615"), Some(Number::from(u64::MAX)));
        assert_eq!(number("2.0"), Number::from_f64(2.0));
        assert_eq!(number("99999999999999999999"), Number::from_f64(1e20));
        assert_eq!(number("1e999"), None);
    }

    #[test]
    fn bare_words_are_strings_unless_they_are_keywords_or_literals() {
        assert_eq!(
            literal_word("bsmith"),
            Ok(CompValue::String("bsmith".into()))
        );
        assert_eq!(literal_word("Null"), Ok(CompValue::Null));
        assert_eq!(literal_word("and"), Err(None));
        assert_eq!(literal_word("NOT"), Err(None));
        assert_eq!(literal_word("b+smith"), Err(None));
        for when in [
            "2015-10-10T14:38:21.8617979-07:00",
            "2024-02-29T23:59:59Z",
            "2024-02-29t23:59:59+01:00",
        ] {
            assert_eq!(
                literal_word(when),
                Ok(CompValue::String(when.into())),
                "{when}"
            );
        }
        for not_a_date in ["2015-10-10T14:38:21", "2015-13-10T14:38:21Z", "10:00"] {
            assert_eq!(literal_word(not_a_date), Err(None), "{not_a_date}");
        }
        assert_eq!(
            literal_word("1e999"),
            Err(Some("the number 1e999 is out of range".into()))
        );
    }

    #[test]
    fn operators_are_case_insensitive_and_pr_is_not_a_comparison() {
        assert_eq!(parse_operator("GE"), Some(CompareOp::Ge));
        assert_eq!(parse_operator("Sw"), Some(CompareOp::Sw));
        assert_eq!(parse_operator("pr"), None);
        assert!(is_operator("PR"));
        assert!(!is_operator("eqq"));
    }

    #[test]
    fn a_bracketed_filter_stops_right_after_its_bracket() {
        let src = r#"emails[type eq "]"].value"#;
        let (filter, end) = parse_bracketed(src, 6, &Limits::default()).unwrap();
        assert_eq!(filter.to_string(), r#"type eq "]""#);
        assert_eq!(&src[end..], ".value");
    }
}
