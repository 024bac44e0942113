//! Compiled mappings: the rules of one connector, validated and compiled once at start
//! (paths resolved against the schema registry, regexes and scripts compiled), then applied
//! to each user. Pure: the store looks managers up, this module only decides what the result
//! means.

use sha2::{Digest, Sha256};

use super::defaults::default_fields;
use super::manager::ManagerLookup;
use super::profile::{FieldValue, Profile, ProfileField, Skipped};
use super::rules::{
    Computed, FieldSpec, ManagerSettings, MappingSettings, OnManagerGone, OnMissing, RuleSpec,
    Sources,
};
use super::script::Sandbox;
use super::source::Source;
use super::transform::{Transform, TransformError, TransformSpec};
use super::username::check_username;
use super::{InvalidRules, MappingError};
use crate::scim::resource::Document;
use crate::scim::schema::SchemaRegistry;

/// What one rule saw and produced (for `mapping preview`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTrace {
    /// Values the source (or the computed input) yielded, before transforms.
    pub source: Vec<String>,
    /// Values after transforms and default, or why the rule failed.
    pub result: Result<Vec<String>, TransformError>,
}

/// A compiled rule.
#[derive(Debug)]
struct Rule {
    sources: Vec<Source>,
    transforms: Vec<Transform>,
    default: Option<String>,
    on_missing: OnMissing,
}

impl Rule {
    fn compile(
        sources: Option<&Sources>,
        transforms: &[TransformSpec],
        default: Option<&String>,
        on_missing: OnMissing,
        reg: &SchemaRegistry,
        sandbox: &Sandbox,
    ) -> Result<Rule, InvalidRules> {
        let sources = sources
            .map(Sources::paths)
            .unwrap_or_default()
            .into_iter()
            .map(|p| Source::compile(p, reg))
            .collect::<Result<Vec<_>, _>>()?;
        let transforms = transforms
            .iter()
            .map(|t| Transform::compile(t, sandbox))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Rule {
            sources,
            transforms,
            default: default.cloned(),
            on_missing,
        })
    }

    /// Runs the rule on `input` (a computed value) or else on its sources (the first that
    /// yields anything wins). Empty strings are dropped after the transforms, so a transform
    /// that empties a value turns it into "no value".
    /// `keep_source` keeps the source values in the trace (a copy per rule and user, so only
    /// when someone looks: `mapping preview`).
    fn run(
        &self,
        input: Option<Vec<String>>,
        doc: &Document,
        sandbox: &Sandbox,
        keep_source: bool,
    ) -> RuleTrace {
        let read = input.unwrap_or_else(|| {
            self.sources
                .iter()
                .map(|s| s.read(doc))
                .find(|v| !v.is_empty())
                .unwrap_or_default()
        });
        let source = if keep_source {
            read.clone()
        } else {
            Vec::new()
        };
        let mut values = read;
        for t in &self.transforms {
            values = match t.apply(values, doc, sandbox) {
                Ok(v) => v,
                Err(e) => {
                    return RuleTrace {
                        source,
                        result: Err(e),
                    }
                }
            };
        }
        values.retain(|v| !v.is_empty());
        if values.is_empty() {
            values.extend(self.default.clone());
        }
        RuleTrace {
            source,
            result: Ok(values),
        }
    }
}

/// A compiled profile field.
#[derive(Debug)]
pub struct Field {
    /// Name (webhook key).
    pub name: String,
    /// XML element name.
    pub xml: String,
    /// The Linchpin field it is meant to fill, if the configuration says.
    pub linchpin_field: Option<String>,
    from: Option<Computed>,
    rule: Rule,
}

/// One rule of a connector's mapping as an operator reads it: the admin API's mapping table
/// (target field ← source, transforms, no-value policy).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MappingRow {
    /// `confluence.username`, `confluence.full_name`, `confluence.email`, or
    /// `profile.NAME` for a Linchpin profile field.
    pub target: String,
    /// The feed's XML element (profile fields).
    pub xml: Option<String>,
    /// The Linchpin field it is meant to fill, when the configuration names one.
    pub linchpin_field: Option<String>,
    /// The SCIM paths read, in order (the first with a value wins).
    pub source: Vec<String>,
    /// A value computed by usersync instead (`username`, `full_name`, `email`, `manager`).
    pub computed: Option<String>,
    /// The transforms, in order, as written in the configuration.
    pub transforms: Vec<serde_json::Value>,
    /// The value used when nothing else yields one.
    pub default: Option<String>,
    /// What happens without a value: `keep`, `clear`, `skip`, or `builtin` (the identity
    /// rule falls back to the built-in one).
    pub on_missing: String,
    /// Whether the row is usersync's built-in rule (not written in the configuration).
    pub builtin: bool,
}

impl MappingRow {
    fn identity(name: &str, spec: Option<&RuleSpec>, builtin_source: &[&str]) -> MappingRow {
        match spec {
            Some(spec) => MappingRow {
                target: format!("confluence.{name}"),
                xml: None,
                linchpin_field: None,
                source: spec
                    .source
                    .as_ref()
                    .map(|s| s.paths().into_iter().map(str::to_owned).collect())
                    .unwrap_or_default(),
                computed: None,
                transforms: transforms_json(&spec.transforms),
                default: spec.default.clone(),
                on_missing: on_missing_name(spec.on_missing.unwrap_or(OnMissing::Skip)),
                builtin: false,
            },
            None => MappingRow {
                target: format!("confluence.{name}"),
                xml: None,
                linchpin_field: None,
                source: builtin_source.iter().map(|s| (*s).to_owned()).collect(),
                computed: None,
                transforms: Vec::new(),
                default: None,
                on_missing: "skip".to_owned(),
                builtin: true,
            },
        }
    }

    fn field(spec: &FieldSpec, builtin: bool) -> MappingRow {
        MappingRow {
            target: format!("profile.{}", spec.name),
            xml: Some(spec.xml.clone().unwrap_or_else(|| spec.name.clone())),
            linchpin_field: spec.linchpin_field.clone(),
            source: spec
                .source
                .as_ref()
                .map(|s| s.paths().into_iter().map(str::to_owned).collect())
                .unwrap_or_default(),
            computed: spec.from.map(|c| {
                serde_json::to_value(c)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            }),
            transforms: transforms_json(&spec.transforms),
            default: spec.default.clone(),
            on_missing: on_missing_name(spec.on_missing.unwrap_or(OnMissing::Clear)),
            builtin,
        }
    }
}

fn transforms_json(t: &[TransformSpec]) -> Vec<serde_json::Value> {
    t.iter()
        .map(|t| serde_json::to_value(t).unwrap_or(serde_json::Value::Null))
        .collect()
}

fn on_missing_name(m: OnMissing) -> String {
    serde_json::to_value(m)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A connector's compiled mapping.
#[derive(Debug)]
pub struct ConnectorMapping {
    table: Vec<MappingRow>,
    username: Option<Rule>,
    full_name: Option<Rule>,
    email: Option<Rule>,
    fields: Vec<Field>,
    manager: ManagerSettings,
    sandbox: Sandbox,
    fingerprint: String,
}

/// Whether `name` is usable as an XML element name in the feed (the ASCII subset of XML's
/// `Name` production; no colon, since the feed uses no namespaces).
pub fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.to_ascii_lowercase().starts_with("xml")
}

fn identity_rule(
    name: &str,
    spec: Option<&RuleSpec>,
    reg: &SchemaRegistry,
    sandbox: &Sandbox,
) -> Result<Option<Rule>, InvalidRules> {
    let Some(spec) = spec else { return Ok(None) };
    let at = format!("mapping.{name}");
    let on_missing = spec.on_missing.unwrap_or(OnMissing::Skip);
    if on_missing == OnMissing::Clear {
        return Err(InvalidRules::new(
            "on_missing = \"clear\" is not possible, Confluence needs a value; \
             use \"skip\" or \"keep\" (the built-in rule)",
        )
        .at(at));
    }
    if spec.source.is_none() && spec.default.is_none() && spec.transforms.is_empty() {
        return Err(InvalidRules::new("give a source, a script transform or a default").at(at));
    }
    Rule::compile(
        spec.source.as_ref(),
        &spec.transforms,
        spec.default.as_ref(),
        on_missing,
        reg,
        sandbox,
    )
    .map(Some)
    .map_err(|e| e.at(at))
}

fn field(spec: &FieldSpec, reg: &SchemaRegistry, sandbox: &Sandbox) -> Result<Field, InvalidRules> {
    let name = &spec.name;
    let at = |e: InvalidRules| e.at(format!("mapping field {name:?}"));
    let problem = |text: String| at(InvalidRules::new(text));
    if name.trim().is_empty() {
        return Err(InvalidRules::new("mapping: a field has an empty name"));
    }
    let xml = spec.xml.clone().unwrap_or_else(|| name.clone());
    if !is_xml_name(&xml) {
        return Err(problem(format!(
            "{xml:?} is not a usable XML element name (letters, digits, '_', '-', '.'; \
             starting with a letter; not starting with \"xml\"); set `xml`"
        )));
    }
    if spec.from.is_some() && spec.source.is_some() {
        return Err(problem(
            "give either `from` (a computed value) or `source` (a SCIM path), not both".into(),
        ));
    }
    if spec.from.is_none()
        && spec.source.is_none()
        && spec.transforms.is_empty()
        && spec.default.is_none()
    {
        return Err(problem(
            "give a `source`, a `from`, a script transform or a `default`".into(),
        ));
    }
    let rule = Rule::compile(
        spec.source.as_ref(),
        &spec.transforms,
        spec.default.as_ref(),
        spec.on_missing.unwrap_or(OnMissing::Clear),
        reg,
        sandbox,
    )
    .map_err(at)?;
    Ok(Field {
        name: name.clone(),
        xml,
        linchpin_field: spec.linchpin_field.clone(),
        from: spec.from,
        rule,
    })
}

impl ConnectorMapping {
    /// Compiles a connector's mapping. Errors name the rule and what to fix.
    pub fn compile(
        settings: &MappingSettings,
        reg: &SchemaRegistry,
    ) -> Result<ConnectorMapping, InvalidRules> {
        let sandbox = Sandbox::new(settings.script.clone());
        let mut specs: Vec<FieldSpec> = if settings.default_fields {
            default_fields()
        } else {
            Vec::new()
        };
        let builtin_names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        for (i, spec) in settings.fields.iter().enumerate() {
            if settings.fields[..i].iter().any(|f| f.name == spec.name) {
                return Err(InvalidRules::new(format!(
                    "mapping: the field {:?} is defined twice",
                    spec.name
                )));
            }
            match specs.iter_mut().find(|s| s.name == spec.name) {
                Some(existing) => *existing = spec.clone(),
                None => specs.push(spec.clone()),
            }
        }
        let fields = specs
            .iter()
            .map(|s| field(s, reg, &sandbox))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, f) in fields.iter().enumerate() {
            if fields[..i].iter().any(|g| g.xml == f.xml) {
                return Err(InvalidRules::new(format!(
                    "mapping: two fields use the XML element name {:?}; set `xml` on one",
                    f.xml
                )));
            }
        }
        let fingerprint = {
            let text = serde_json::to_string(settings).unwrap_or_default();
            let digest = Sha256::digest(text.as_bytes());
            digest.iter().map(|b| format!("{b:02x}")).collect()
        };
        let mut table = vec![
            MappingRow::identity(
                "username",
                settings.username.as_ref(),
                &["userName (lower-cased, characters Confluence refuses replaced)"],
            ),
            MappingRow::identity(
                "full_name",
                settings.full_name.as_ref(),
                &[
                    "displayName",
                    "name.formatted",
                    "name.givenName name.familyName",
                    "userName",
                ],
            ),
            MappingRow::identity(
                "email",
                settings.email.as_ref(),
                &[
                    "emails[primary]",
                    "emails[type=work]",
                    "emails[0]",
                    "userName (if an address)",
                ],
            ),
        ];
        table.extend(specs.iter().map(|spec| {
            let written = settings.fields.iter().any(|f| f.name == spec.name);
            MappingRow::field(spec, !written && builtin_names.contains(&spec.name))
        }));
        Ok(ConnectorMapping {
            table,
            username: identity_rule("username", settings.username.as_ref(), reg, &sandbox)?,
            full_name: identity_rule("full_name", settings.full_name.as_ref(), reg, &sandbox)?,
            email: identity_rule("email", settings.email.as_ref(), reg, &sandbox)?,
            fields,
            manager: settings.manager,
            sandbox,
            fingerprint,
        })
    }

    /// The built-in mapping (no rules written) over the built-in schemas.
    pub fn builtin() -> ConnectorMapping {
        Self::compile(&MappingSettings::default(), &SchemaRegistry::builtin())
            .expect("the built-in mapping compiles (tested)")
    }

    /// The rules as a table, identity rules first, then the profile fields in feed order.
    pub fn table(&self) -> &[MappingRow] {
        &self.table
    }

    /// A digest of the rules, so a configuration change shows in the feed's `ETag` and
    /// re-sends every webhook profile.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Whether any rule runs a script: the mapping may then take up to the scripts'
    /// deadlines per user, and async callers run it on the script threads
    /// (`profiles/pool.rs`).
    pub fn uses_scripts(&self) -> bool {
        let scripted = |r: &Rule| {
            r.transforms
                .iter()
                .any(|t| matches!(t, Transform::Script(_)))
        };
        [&self.username, &self.full_name, &self.email]
            .into_iter()
            .flatten()
            .any(scripted)
            || self.fields.iter().any(|f| scripted(&f.rule))
    }

    /// Manager resolution settings.
    pub fn manager(&self) -> &ManagerSettings {
        &self.manager
    }

    /// How many lines of managers the fields read: 1 for `manager` alone (and for a mapping
    /// with no manager field, whose manager is still resolved for `check-config`'s counts),
    /// 3 when a field reads `manager.manager.manager`. The resolver follows each user's chain
    /// this far, and a write re-delivers reports this many lines down.
    pub fn manager_depth(&self) -> u8 {
        self.fields
            .iter()
            .filter_map(|f| f.from.and_then(Computed::manager_level))
            .max()
            .unwrap_or(1)
            .max(1)
    }

    /// The profile fields.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    fn identity(
        &self,
        rule: Option<&Rule>,
        name: &'static str,
        doc: &Document,
        builtin: impl Fn(&Document) -> Result<String, MappingError>,
    ) -> Result<String, MappingError> {
        let Some(rule) = rule else {
            return builtin(doc);
        };
        match rule.run(None, doc, &self.sandbox, false).result {
            Err(reason) => Err(MappingError::Rule { rule: name, reason }),
            Ok(v) => match v.into_iter().next() {
                Some(value) => Ok(value),
                None if rule.on_missing == OnMissing::Keep => builtin(doc),
                None => Err(MappingError::NoValue { rule: name }),
            },
        }
    }

    /// The Confluence username a new link gets, checked against Confluence's rules. A
    /// custom rule's result is checked, never silently repaired: the admin sees why.
    pub fn username(&self, doc: &Document) -> Result<String, MappingError> {
        let name = self.identity(self.username.as_ref(), "username", doc, super::username)?;
        // A custom rule's result is composed to NFC (one spelling, one account) and then
        // checked like the built-in one.
        let name = crate::scim::identifier::nfc(&name).into_owned();
        check_username(&name).map_err(|why| MappingError::InvalidUsername(why.to_string()))?;
        Ok(name)
    }

    /// The Confluence full name (`<` and `>` removed: Confluence refuses them).
    pub fn full_name(&self, doc: &Document) -> Result<String, MappingError> {
        let name = self.identity(self.full_name.as_ref(), "full_name", doc, |d| {
            Ok(super::full_name(d))
        })?;
        let name = name.replace(['<', '>'], "").trim().to_owned();
        if name.is_empty() {
            return Err(MappingError::NoValue { rule: "full_name" });
        }
        Ok(name)
    }

    /// The Confluence e-mail.
    pub fn email(&self, doc: &Document) -> Result<String, MappingError> {
        self.identity(self.email.as_ref(), "email", doc, super::email)
    }

    /// What each identity rule reads and yields (`mapping preview`); built-in rules show
    /// their result only.
    pub fn trace_identity(&self, doc: &Document) -> Vec<(&'static str, Option<RuleTrace>)> {
        [
            ("username", self.username.as_ref()),
            ("full_name", self.full_name.as_ref()),
            ("email", self.email.as_ref()),
        ]
        .into_iter()
        .map(|(name, rule)| (name, rule.map(|r| r.run(None, doc, &self.sandbox, true))))
        .collect()
    }

    /// The user's profile. `username` is their Confluence username (from the identity link
    /// when there is one); `managers` is what the store found for their lines of managers
    /// (`[0]` their `manager.value`, `[1]` that manager's, …: [`super::manager::line`]), at
    /// least [`ConnectorMapping::manager_depth`] long. `trace` keeps each field's source
    /// values for `mapping preview`.
    pub fn profile(
        &self,
        doc: &Document,
        username: &str,
        managers: &[ManagerLookup],
        trace: bool,
    ) -> Result<Profile, Skipped> {
        let mut fields = Vec::with_capacity(self.fields.len());
        for f in &self.fields {
            let (value, source) = self.field_value(f, doc, username, managers, trace)?;
            fields.push(ProfileField {
                name: f.name.clone(),
                xml: f.xml.clone(),
                value,
                source: trace.then_some(source),
            });
        }
        Ok(Profile {
            username: username.to_owned(),
            active: super::active(doc),
            fields,
        })
    }

    fn field_value(
        &self,
        f: &Field,
        doc: &Document,
        username: &str,
        managers: &[ManagerLookup],
        trace: bool,
    ) -> Result<(FieldValue, Vec<String>), Skipped> {
        let computed = |r: Result<String, MappingError>| match r {
            Ok(v) => Ok(vec![v]),
            Err(MappingError::Rule { reason, .. }) => Err(FieldValue::Failed(reason.to_string())),
            Err(_) => Ok(Vec::new()),
        };
        let input = match f.from {
            None => None,
            Some(Computed::Username) => Some(vec![username.to_owned()]),
            Some(Computed::FullName) => match computed(self.full_name(doc)) {
                Ok(v) => Some(v),
                Err(failed) => return Ok((failed, Vec::new())),
            },
            Some(Computed::Email) => match computed(self.email(doc)) {
                Ok(v) => Some(v),
                Err(failed) => return Ok((failed, Vec::new())),
            },
            Some(Computed::Manager(level)) => match &super::manager::line(managers, level) {
                ManagerLookup::NoReference | ManagerLookup::OwnSelf => Some(Vec::new()),
                ManagerLookup::Found {
                    username,
                    active: true,
                    ..
                } => Some(vec![username.clone()]),
                ManagerLookup::Found { username, .. } | ManagerLookup::Deleted { username } => {
                    match self.manager.on_deprovisioned {
                        OnManagerGone::Keep => Some(vec![username.clone()]),
                        OnManagerGone::Clear => return Ok((FieldValue::Clear, Vec::new())),
                    }
                }
                // Not found yet, or several users match: the target keeps what it has rather
                // than being told a guess (docs/mapping.md "Manager resolution").
                ManagerLookup::Missing | ManagerLookup::Ambiguous { .. } => {
                    return Ok((FieldValue::Pending, Vec::new()))
                }
                ManagerLookup::Unmappable => {
                    let why = "the manager has no valid Confluence username".to_owned();
                    return Ok((FieldValue::Failed(why), Vec::new()));
                }
            },
        };
        let run = f.rule.run(input, doc, &self.sandbox, trace);
        let value = match run.result {
            Err(reason) => FieldValue::Failed(reason.to_string()),
            Ok(v) if v.is_empty() => match f.rule.on_missing {
                OnMissing::Keep => FieldValue::Keep,
                OnMissing::Clear => FieldValue::Clear,
                OnMissing::Skip => {
                    return Err(Skipped {
                        field: f.name.clone(),
                    })
                }
            },
            Ok(v) => FieldValue::Set(v),
        };
        Ok((value, run.source))
    }
}

#[cfg(test)]
mod tests;
