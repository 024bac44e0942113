//! Value types that settings are written in, shared by the settings of every module
//! (`[delivery]`, `[confluence]`, each connector's webhook and feed): a duration such as
//! `"30s"` and a list that may be written as a single value.
//!
//! A leaf: it imports no other module of the crate, so any module's settings can use it
//! without depending on `config`, which composes them.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written as `"30s"`, `"5m"`, `"24h"`, `"250ms"` or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

/// Why a text is not a duration, worded for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurError {
    /// No number where one was expected.
    #[error("{0:?} is not a duration such as \"30s\"")]
    NotANumber(String),
    /// A number with a unit we do not know.
    #[error("unknown duration unit {unit:?} in {text:?}; use ms, s, m, h or d")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole text.
        text: String,
    },
}

impl Dur {
    /// Parses the text form.
    pub fn parse(s: &str) -> Result<Dur, DurError> {
        let s = s.trim();
        let split = s
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: f64 = num
            .parse()
            .map_err(|_| DurError::NotANumber(s.to_owned()))?;
        let secs = match unit.trim() {
            "ms" => n / 1000.0,
            "" | "s" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            "d" => n * 86400.0,
            other => {
                return Err(DurError::UnknownUnit {
                    unit: other.to_owned(),
                    text: s.to_owned(),
                })
            }
        };
        Ok(Dur(Duration::from_secs_f64(secs)))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms % 3_600_000 == 0 && ms > 0 {
            write!(f, "{}h", ms / 3_600_000)
        } else if ms % 60_000 == 0 && ms > 0 {
            write!(f, "{}m", ms / 60_000)
        } else if ms % 1000 == 0 {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Dur(Duration::from_secs(s))),
            Raw::Text(t) => Dur::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// One value or a list of them (`token_env = "A"` or `token_env = ["A", "B"]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single value.
    One(String),
    /// Several values.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values.
    pub fn values(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(Dur::parse("250ms").unwrap().0, Duration::from_millis(250));
        assert_eq!(Dur::parse("24h").unwrap().to_string(), "24h");
        assert_eq!(Dur::parse("90").unwrap().to_string(), "90s");
    }

    #[test]
    fn a_bad_duration_says_what_is_wrong() {
        assert_eq!(Dur::parse("soon"), Err(DurError::NotANumber("soon".into())));
        let e = Dur::parse("5 weeks").unwrap_err();
        assert!(matches!(&e, DurError::UnknownUnit { unit, .. } if unit == "weeks"));
        assert!(e.to_string().contains("use ms, s, m, h or d"), "{e}");
    }
}
