//! The values of the environment variables that the configuration names as secrets.
//!
//! They are read once, when the settings load, and then only looked up here: validation and
//! the credential registries see the same values (no second read of the environment that
//! could disagree with what was checked), and nothing else in [`super::Settings`] holds a
//! secret, so printing the settings cannot leak one.

use std::collections::BTreeMap;
use std::fmt;

use super::ConfigError;

/// Secret values by environment variable name. `Debug` prints the names only.
#[derive(Clone, Default)]
pub struct Secrets {
    values: BTreeMap<String, String>,
}

impl Secrets {
    /// Takes from `env` the variables whose names are in `names`. Surrounding whitespace is
    /// dropped (a token read with `$(cat file)` often keeps its newline); empty values count
    /// as unset.
    pub fn capture<'a>(names: impl IntoIterator<Item = &'a str>, env: &[(String, String)]) -> Self {
        let mut values = BTreeMap::new();
        for name in names {
            if let Some((_, v)) = env.iter().find(|(k, _)| k == name) {
                if !v.trim().is_empty() {
                    values.insert(name.to_owned(), v.trim().to_owned());
                }
            }
        }
        Secrets { values }
    }

    /// Sets a value, for settings built in code (tests, embedding) rather than loaded.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let value: String = value.into();
        self.values.insert(name.into(), value.trim().to_owned());
    }

    /// The value of the variable `name`, if it was set and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The value of `name`, or an error for `[connectors.CONNECTOR] KEY` saying what to do.
    pub fn require(&self, key: &str, name: &str, what: &str) -> Result<&str, ConfigError> {
        self.get(name).ok_or_else(|| {
            ConfigError(format!(
                "{key} names the environment variable {name}, which is not set or empty; \
                 export it with {what}"
            ))
        })
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_names_never_values() {
        let mut s = Secrets::default();
        s.set("USERSYNC_OKTA_TOKEN", "hunter2\n");
        let shown = format!("{s:?}");
        assert!(shown.contains("USERSYNC_OKTA_TOKEN") && !shown.contains("hunter2"));
        assert_eq!(s.get("USERSYNC_OKTA_TOKEN"), Some("hunter2"));
    }

    #[test]
    fn capture_takes_only_named_non_empty_variables() {
        let env = vec![
            ("A".to_owned(), " a \n".to_owned()),
            ("B".to_owned(), "  ".to_owned()),
            ("C".to_owned(), "c".to_owned()),
        ];
        let s = Secrets::capture(["A", "B"], &env);
        assert_eq!(s.get("A"), Some("a"));
        assert_eq!(s.get("B"), None);
        assert_eq!(s.get("C"), None);
        let e = s
            .require("token_env", "B", "the token")
            .unwrap_err()
            .to_string();
        assert!(e.contains("B") && e.contains("not set"), "{e}");
    }
}
