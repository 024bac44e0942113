//! Transforms: the steps a rule applies, in order, to the values its source produced.
//!
//! Values are a list of strings (one per element of a multi-valued source); every transform
//! maps each value, except `join` and `first`, which turn the list into one value, and
//! `script`, which sees the whole list and the user. Each step is compiled once at start
//! (regexes, date formats, scripts), so a configuration error stops the server before it
//! takes traffic instead of failing on the first user.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};
use time::format_description::well_known::Rfc3339;
use time::format_description::OwnedFormatItem;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

use super::script::{Sandbox, Script};
use super::InvalidRules;
use crate::scim::resource::Document;

/// One transform as written in the configuration: a bare name (`"lower"`) for the steps
/// without arguments, or a table with `op` (`{ op = "before", sep = "@" }`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum TransformSpec {
    /// Lower-case (Unicode).
    Lower,
    /// Upper-case (Unicode).
    Upper,
    /// Trim surrounding whitespace.
    Trim,
    /// Keep only the first value of a multi-valued source.
    First,
    /// The part before the first `sep` (the whole value when `sep` does not occur).
    Before {
        /// Separator.
        sep: String,
    },
    /// The part after the first `sep` (the whole value when `sep` does not occur).
    After {
        /// Separator.
        sep: String,
    },
    /// Regular-expression replace of every match (`$1`, `${name}` refer to groups).
    Replace {
        /// The pattern (Rust `regex` syntax: no look-around, linear time).
        pattern: String,
        /// The replacement.
        with: String,
    },
    /// Join all values into one with `sep`.
    Join {
        /// Separator.
        sep: String,
    },
    /// Reformat a date: parse with `from` (default `rfc3339`, the SCIM dateTime form), print
    /// with `to`. Formats are `rfc3339` or a `time` format description such as
    /// `"[day].[month].[year]"`.
    Date {
        /// Input format.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// Output format.
        to: String,
    },
    /// Replace a value found in `table`; values not in it become `default` when given, else
    /// stay as they are.
    Lookup {
        /// Value → replacement.
        table: BTreeMap<String, String>,
        /// Replacement for values not in the table.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<String>,
        /// Match table keys case-insensitively.
        #[serde(default)]
        ignore_case: bool,
    },
    /// A sandboxed Rhai script (see `mapping::script`): `value` (first value or `()`),
    /// `values` (array) and `user` (the SCIM document) are in scope; it returns a string, an
    /// array of strings or `()` for no value.
    Script {
        /// The script.
        code: String,
    },
}

impl<'de> Deserialize<'de> for TransformSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// The table form, decoded on its own so a mistake in it is reported precisely
        /// rather than as "did not match any variant".
        #[derive(Deserialize)]
        #[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
        enum Table {
            Lower,
            Upper,
            Trim,
            First,
            Before {
                sep: String,
            },
            After {
                sep: String,
            },
            Replace {
                pattern: String,
                with: String,
            },
            Join {
                sep: String,
            },
            Date {
                #[serde(default)]
                from: Option<String>,
                to: String,
            },
            Lookup {
                table: BTreeMap<String, String>,
                #[serde(default)]
                default: Option<String>,
                #[serde(default)]
                ignore_case: bool,
            },
            Script {
                code: String,
            },
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            Table(toml::Value),
        }
        use serde::de::Error;
        match Raw::deserialize(d)? {
            Raw::Name(n) => match n.as_str() {
                "lower" => Ok(Self::Lower),
                "upper" => Ok(Self::Upper),
                "trim" => Ok(Self::Trim),
                "first" => Ok(Self::First),
                other => Err(D::Error::custom(format!(
                    "unknown transform {other:?}: the bare names are lower, upper, trim and \
                     first; the others are tables such as {{ op = \"before\", sep = \"@\" }}"
                ))),
            },
            Raw::Table(v) => Ok(match Table::deserialize(v).map_err(D::Error::custom)? {
                Table::Lower => Self::Lower,
                Table::Upper => Self::Upper,
                Table::Trim => Self::Trim,
                Table::First => Self::First,
                Table::Before { sep } => Self::Before { sep },
                Table::After { sep } => Self::After { sep },
                Table::Replace { pattern, with } => Self::Replace { pattern, with },
                Table::Join { sep } => Self::Join { sep },
                Table::Date { from, to } => Self::Date { from, to },
                Table::Lookup {
                    table,
                    default,
                    ignore_case,
                } => Self::Lookup {
                    table,
                    default,
                    ignore_case,
                },
                Table::Script { code } => Self::Script { code },
            }),
        }
    }
}

/// A date format: RFC 3339 or a compiled `time` format description.
/// Why a transform failed on a user's values. Worded without the values, which are personal
/// data: the reason reaches logs, the sync queue and `mapping preview`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// A `date` transform met a value that is not a date in its `from` format.
    #[error("a value is not a date in the expected format")]
    NotADate,
    /// A `date` transform cannot write the date in its `to` format.
    #[error("cannot format the date: {0}")]
    DateFormat(String),
    /// A `script` transform failed (an error, a bound, a result of the wrong type).
    #[error("{0}")]
    Script(String),
}

#[derive(Debug, Clone)]
enum DateFormat {
    Rfc3339,
    Custom(OwnedFormatItem),
}

impl DateFormat {
    fn compile(s: &str) -> Result<Self, InvalidRules> {
        if s.eq_ignore_ascii_case("rfc3339") {
            return Ok(Self::Rfc3339);
        }
        time::format_description::parse_owned::<2>(s)
            .map(Self::Custom)
            .map_err(|e| InvalidRules::new(format!("date format {s:?} is not valid: {e}")))
    }

    /// Parses a date-time, a date-time without offset (taken as UTC) or a bare date
    /// (midnight UTC), whichever the format describes.
    fn parse(&self, s: &str) -> Result<OffsetDateTime, TransformError> {
        let parsed = match self {
            Self::Rfc3339 => OffsetDateTime::parse(s, &Rfc3339).ok().or_else(|| {
                // A bare ISO date is what most HR systems send for hire dates.
                let iso = time::macros::format_description!("[year]-[month]-[day]");
                Date::parse(s, iso).ok().map(|d| d.midnight().assume_utc())
            }),
            Self::Custom(f) => OffsetDateTime::parse(s, f)
                .ok()
                .or_else(|| PrimitiveDateTime::parse(s, f).ok().map(|p| p.assume_utc()))
                .or_else(|| Date::parse(s, f).ok().map(|d| d.midnight().assume_utc())),
        };
        parsed.ok_or(TransformError::NotADate)
    }

    fn format(&self, t: OffsetDateTime) -> Result<String, TransformError> {
        match self {
            Self::Rfc3339 => t.format(&Rfc3339),
            Self::Custom(f) => t.format(f),
        }
        .map_err(|e| TransformError::DateFormat(e.to_string()))
    }
}

/// A compiled transform.
#[derive(Debug, Clone)]
pub enum Transform {
    /// See [`TransformSpec::Lower`].
    Lower,
    /// See [`TransformSpec::Upper`].
    Upper,
    /// See [`TransformSpec::Trim`].
    Trim,
    /// See [`TransformSpec::First`].
    First,
    /// See [`TransformSpec::Before`].
    Before(String),
    /// See [`TransformSpec::After`].
    After(String),
    /// See [`TransformSpec::Replace`].
    Replace(regex::Regex, String),
    /// See [`TransformSpec::Join`].
    Join(String),
    /// See [`TransformSpec::Date`].
    Date(Box<DateFormatPair>),
    /// See [`TransformSpec::Lookup`].
    Lookup {
        /// Keys lower-cased when `ignore_case`.
        table: HashMap<String, String>,
        /// Replacement for misses.
        default: Option<String>,
        /// Case-insensitive keys.
        ignore_case: bool,
    },
    /// See [`TransformSpec::Script`].
    Script(Arc<Script>),
}

/// The input and output formats of a date transform.
#[derive(Debug, Clone)]
pub struct DateFormatPair {
    from: DateFormat,
    to: DateFormat,
}

/// Longest regex program accepted: a pattern from the configuration file should be small,
/// and the bound keeps a mistake from costing megabytes per rule.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl Transform {
    /// Compiles a transform; `sandbox` compiles scripts.
    pub fn compile(spec: &TransformSpec, sandbox: &Sandbox) -> Result<Transform, InvalidRules> {
        Ok(match spec {
            TransformSpec::Lower => Self::Lower,
            TransformSpec::Upper => Self::Upper,
            TransformSpec::Trim => Self::Trim,
            TransformSpec::First => Self::First,
            TransformSpec::Before { sep } | TransformSpec::After { sep } if sep.is_empty() => {
                return Err(InvalidRules::new("before/after need a non-empty sep"))
            }
            TransformSpec::Before { sep } => Self::Before(sep.clone()),
            TransformSpec::After { sep } => Self::After(sep.clone()),
            TransformSpec::Replace { pattern, with } => {
                let re = regex::RegexBuilder::new(pattern)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| {
                        InvalidRules::new(format!("replace pattern {pattern:?} is not valid: {e}"))
                    })?;
                Self::Replace(re, with.clone())
            }
            TransformSpec::Join { sep } => Self::Join(sep.clone()),
            TransformSpec::Date { from, to } => Self::Date(Box::new(DateFormatPair {
                from: DateFormat::compile(from.as_deref().unwrap_or("rfc3339"))?,
                to: DateFormat::compile(to)?,
            })),
            TransformSpec::Lookup {
                table,
                default,
                ignore_case,
            } => Self::Lookup {
                table: table
                    .iter()
                    .map(|(k, v)| {
                        let k = if *ignore_case {
                            k.to_lowercase()
                        } else {
                            k.clone()
                        };
                        (k, v.clone())
                    })
                    .collect(),
                default: default.clone(),
                ignore_case: *ignore_case,
            },
            TransformSpec::Script { code } => Self::Script(Arc::new(
                sandbox
                    .compile(code)
                    .map_err(|e| InvalidRules::new(e.to_string()))?,
            )),
        })
    }

    /// Applies the transform to `values`. `user` is the whole document, for scripts.
    /// Errors say what failed without quoting the value (values are personal data and the
    /// error may reach a log or the sync queue).
    pub fn apply(
        &self,
        values: Vec<String>,
        user: &Document,
        sandbox: &Sandbox,
    ) -> Result<Vec<String>, TransformError> {
        let each = |f: &dyn Fn(String) -> String| values.iter().cloned().map(f).collect();
        Ok(match self {
            Self::Lower => each(&|v| v.to_lowercase()),
            Self::Upper => each(&|v| v.to_uppercase()),
            Self::Trim => each(&|v| v.trim().to_owned()),
            Self::First => values.into_iter().take(1).collect(),
            Self::Before(sep) => each(&|v| match v.split_once(sep.as_str()) {
                Some((head, _)) => head.to_owned(),
                None => v,
            }),
            Self::After(sep) => each(&|v| match v.split_once(sep.as_str()) {
                Some((_, tail)) => tail.to_owned(),
                None => v,
            }),
            Self::Replace(re, with) => each(&|v| re.replace_all(&v, with.as_str()).into_owned()),
            Self::Join(_) if values.is_empty() => values,
            Self::Join(sep) => vec![values.join(sep)],
            Self::Date(pair) => {
                let mut out = Vec::with_capacity(values.len());
                for v in &values {
                    out.push(pair.to.format(pair.from.parse(v.trim())?)?);
                }
                out
            }
            Self::Lookup {
                table,
                default,
                ignore_case,
            } => each(&|v| {
                let key = if *ignore_case {
                    v.to_lowercase()
                } else {
                    v.clone()
                };
                match (table.get(&key), default) {
                    (Some(hit), _) => hit.clone(),
                    (None, Some(d)) => d.clone(),
                    (None, None) => v,
                }
            }),
            Self::Script(script) => sandbox
                .run(script, &values, user)
                .map_err(|e| TransformError::Script(e.to_string()))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(spec: TransformSpec, input: &[&str]) -> Result<Vec<String>, String> {
        let sandbox = Sandbox::default();
        let t = Transform::compile(&spec, &sandbox).map_err(|e| e.to_string())?;
        let user = json!({"userName": "u"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        t.apply(
            input.iter().map(|s| s.to_string()).collect(),
            &user,
            &sandbox,
        )
        .map_err(|e| e.to_string())
    }

    fn ok(spec: TransformSpec, input: &[&str]) -> Vec<String> {
        run(spec, input).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn lower_maps_every_value_with_unicode_rules() {
        assert_eq!(ok(TransformSpec::Lower, &["ÄDA", "Bob"]), ["äda", "bob"]);
    }

    #[test]
    fn upper_maps_every_value_with_unicode_rules() {
        assert_eq!(ok(TransformSpec::Upper, &["straße", "x"]), ["STRASSE", "X"]);
    }

    #[test]
    fn trim_strips_surrounding_whitespace() {
        assert_eq!(ok(TransformSpec::Trim, &["  x \t", "y"]), ["x", "y"]);
    }

    #[test]
    fn before_keeps_the_part_before_the_first_separator_or_the_value() {
        let before = TransformSpec::Before { sep: "@".into() };
        assert_eq!(ok(before, &["ada@x@y", "plain"]), ["ada", "plain"]);
        assert!(run(TransformSpec::Before { sep: "".into() }, &[]).is_err());
    }

    #[test]
    fn after_keeps_the_part_after_the_first_separator_or_the_value() {
        let after = TransformSpec::After { sep: "@".into() };
        assert_eq!(ok(after, &["ada@x@y", "plain"]), ["x@y", "plain"]);
    }

    #[test]
    fn replace_uses_regex_groups_and_bad_patterns_fail_at_compile_time() {
        let spec = TransformSpec::Replace {
            pattern: r"^(\w+)\.(\w+)@.*$".into(),
            with: "$2, $1".into(),
        };
        assert_eq!(ok(spec, &["ada.lovelace@x.org"]), ["lovelace, ada"]);
        let bad = TransformSpec::Replace {
            pattern: "(".into(),
            with: String::new(),
        };
        assert!(run(bad, &[]).unwrap_err().contains("not valid"));
    }

    #[test]
    fn join_turns_a_list_into_one_value() {
        let join = || TransformSpec::Join { sep: "; ".into() };
        assert_eq!(ok(join(), &["Rust", "SCIM"]), ["Rust; SCIM"]);
        assert!(ok(join(), &[]).is_empty(), "nothing joined is no value");
    }

    #[test]
    fn first_keeps_the_first_value() {
        assert_eq!(ok(TransformSpec::First, &["a", "b"]), ["a"]);
        assert!(ok(TransformSpec::First, &[]).is_empty());
    }

    #[test]
    fn script_runs_in_the_sandbox_with_the_values() {
        let spec = TransformSpec::Script {
            code: "values.map(|v| v + \"!\")".into(),
        };
        assert_eq!(ok(spec, &["a", "b"]), ["a!", "b!"]);
        let bad = TransformSpec::Script {
            code: "let x = ;".into(),
        };
        assert!(run(bad, &[]).unwrap_err().contains("compile"));
    }

    #[test]
    fn dates_are_reformatted_from_rfc3339_or_a_custom_format() {
        let german = TransformSpec::Date {
            from: None,
            to: "[day].[month].[year]".into(),
        };
        assert_eq!(
            ok(german.clone(), &["2024-03-01T08:00:00Z", "2023-12-24"]),
            ["01.03.2024", "24.12.2023"]
        );
        let iso = TransformSpec::Date {
            from: Some("[month]/[day]/[year]".into()),
            to: "rfc3339".into(),
        };
        assert_eq!(ok(iso, &["03/01/2024"]), ["2024-03-01T00:00:00Z"]);
        let e = run(german, &["yesterday"]).unwrap_err();
        assert!(
            !e.contains("yesterday"),
            "errors never quote the value: {e}"
        );
        let bad = TransformSpec::Date {
            from: None,
            to: "[nonsense]".into(),
        };
        assert!(run(bad, &[]).is_err());
    }

    #[test]
    fn lookup_replaces_hits_and_applies_the_default_to_misses() {
        let table: BTreeMap<String, String> = [("DE".to_owned(), "Germany".to_owned())].into();
        let strict = TransformSpec::Lookup {
            table: table.clone(),
            default: None,
            ignore_case: false,
        };
        assert_eq!(ok(strict, &["DE", "de", "FR"]), ["Germany", "de", "FR"]);
        let loose = TransformSpec::Lookup {
            table,
            default: Some("Elsewhere".into()),
            ignore_case: true,
        };
        assert_eq!(ok(loose, &["de", "FR"]), ["Germany", "Elsewhere"]);
    }

    #[test]
    fn transforms_are_written_as_names_or_tables() {
        #[derive(Deserialize)]
        struct Rule {
            transforms: Vec<TransformSpec>,
        }
        let rule: Rule = toml::from_str(
            "transforms = [\"trim\", { op = \"before\", sep = \"@\" }, \
             { op = \"lookup\", table = { a = \"b\" } }]",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rule.transforms[0], TransformSpec::Trim);
        assert_eq!(
            rule.transforms[1],
            TransformSpec::Before { sep: "@".into() }
        );
        let unknown = toml::from_str::<Rule>("transforms = [\"shout\"]")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(unknown.contains("shout"), "{unknown}");
        let typo = toml::from_str::<Rule>("transforms = [{ op = \"before\", sepp = \"@\" }]")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(typo.contains("sepp"), "{typo}");
    }
}
