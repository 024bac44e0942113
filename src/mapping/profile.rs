//! A user's mapped profile: what the Linchpin feed and the webhook carry.

/// The value of one profile field after its rule ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// One or more values (several only for multi-valued sources without `join`/`first`).
    Set(Vec<String>),
    /// No value, and the rule says `clear`: targets empty the field.
    Clear,
    /// No value, and the rule says `keep`: targets leave the field as it is.
    Keep,
    /// The manager has not arrived yet: targets leave the field as it is until they do.
    Pending,
    /// The rule failed (a script hit its bounds, a date did not parse). Targets leave the
    /// field as it is; the reason names the rule, never the value.
    Failed(String),
}

impl FieldValue {
    /// Whether targets should leave the field out (keep what they have).
    pub fn is_omitted(&self) -> bool {
        matches!(
            self,
            FieldValue::Keep | FieldValue::Pending | FieldValue::Failed(_)
        )
    }
}

/// One field of a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileField {
    /// The field's name (webhook key).
    pub name: String,
    /// Its XML element name in the feed.
    pub xml: String,
    /// Its value.
    pub value: FieldValue,
    /// What the source yielded before transforms; filled only when tracing
    /// (`mapping preview`), since it doubles the personal data held in memory.
    pub source: Option<Vec<String>>,
}

/// A user's mapped profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The Confluence username.
    pub username: String,
    /// Whether the user is active.
    pub active: bool,
    /// The fields, in configuration order.
    pub fields: Vec<ProfileField>,
}

/// A user a rule with `on_missing = "skip"` keeps out of the targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The field whose rule yielded no value.
    pub field: String,
}
