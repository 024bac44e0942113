//! One runtime per connector, built in one place.
//!
//! A connector is served (authentication), mapped (its rules compiled against the schemas),
//! fed to Linchpin (the feed key), sent to a webhook and provisioned into Confluence (its
//! policy). [`ConnectorTable::build`](crate::runtime::ConnectorTable::build) builds all of that once from the settings, whose
//! secrets were read once at load (`config/secrets.rs`), into one [`ConnectorRuntime`](crate::runtime::ConnectorRuntime) per
//! declared connector; connectors created with the CLI (or, later, the admin API) have only
//! stored bearer tokens and get the defaults: the built-in mapping, the default provisioning
//! policy, neither feed nor webhook. [`Runtime`](crate::runtime::Runtime) adds the store and the token registry that
//! reloads on a miss, so a connector created or rotated while the server runs works at once.
//!
//! `usersync serve`, every command and the tests share this module: nothing else builds
//! connector state. The modules below the configuration read the table through the narrow
//! traits they define ([`AuthLookup`](crate::auth::AuthLookup),
//! [`ConnectorLookup`](crate::delivery::lookup::ConnectorLookup)), so they neither build it again
//! nor depend on `config`.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use anyhow::Context;

use crate::auth::{self, AuthLookup, Authenticator, ConnectorAuth};
use crate::config::{ConfigError, ConnectorSettings, Settings};
use crate::connectors::{self, ConnectorInfo, Connectors, Source, TokenHash};
use crate::delivery::lookup::ConnectorLookup;
use crate::delivery::settings::Provisioning;
use crate::mapping::{ConnectorMapping, MappingSettings};
use crate::profiles::ProfileTargets;
use crate::scim::schema::SchemaRegistry;
use crate::store::{Store, StoreResult};
use crate::targets::confluence::{ConfluenceClient, ConfluenceConfig};
use crate::targets::linchpin::FeedSettings;
use crate::targets::webhook::WebhookClient;

/// Everything about one connector that does not change while the process runs.
#[derive(Debug)]
pub struct ConnectorRuntime {
    /// Name: the SCIM base URL segment, `/scim/v2/NAME`.
    pub name: String,
    /// Where it is declared.
    pub source: Source,
    /// The authentication modes it offers beyond static bearer tokens (declared connectors).
    pub auth: Option<Arc<ConnectorAuth>>,
    /// Its compiled mapping, Linchpin feed and webhook.
    pub profile_targets: Arc<ProfileTargets>,
    /// How its users and groups are provisioned into Confluence.
    pub provisioning: Arc<Provisioning>,
}

/// The runtimes of the declared connectors, and the defaults of the others: everything built
/// from the settings alone (`check-config` uses it without a database).
pub struct ConnectorTable {
    settings: Arc<Settings>,
    schemas: Arc<SchemaRegistry>,
    declared: BTreeMap<String, Arc<ConnectorRuntime>>,
    /// Static token hashes of the declared connectors, for the token registry.
    declared_tokens: Vec<(String, Vec<TokenHash>)>,
    /// What a connector without a table in the file gets.
    default_targets: Arc<ProfileTargets>,
    default_provisioning: Arc<Provisioning>,
    confluence: Option<ConfluenceConfig>,
    /// Mappings edited in the console or through the operations API (docs/console.md), by
    /// connector: the version in force and the profile targets built with it. They replace
    /// the built-in rules of a stored connector, or of a declared connector whose table in
    /// the file has no mapping rules.
    edited: RwLock<BTreeMap<String, Edited>>,
}

/// An edited mapping in force.
struct Edited {
    version: i64,
    targets: Arc<ProfileTargets>,
}

impl ConnectorTable {
    /// Loads the schemas (`schemas_dir`) and builds the table, with the Confluence client's
    /// configuration from `[confluence]`.
    pub fn from_settings(settings: Arc<Settings>) -> anyhow::Result<ConnectorTable> {
        let schemas = settings
            .load_schemas()
            .context("cannot load the schema documents (setting `schemas_dir`)")?;
        let confluence = settings.confluence_config()?;
        Self::build(settings, Arc::new(schemas), confluence)
    }

    /// Builds every declared connector's runtime once: its authentication modes, its mapping
    /// compiled against `schemas`, its feed key and webhook client from the secrets read at
    /// load, and its provisioning policy. Errors name the connector and what to fix. The
    /// settings are validated again, since settings built in code skip [`Settings::load`].
    pub fn build(
        settings: Arc<Settings>,
        schemas: Arc<SchemaRegistry>,
        confluence: Option<ConfluenceConfig>,
    ) -> anyhow::Result<ConnectorTable> {
        settings.validate_connectors()?;
        let mut caches = auth::jwks_caches(&settings.auth)?;
        let mut declared = BTreeMap::new();
        let mut declared_tokens = Vec::new();
        for (name, c) in &settings.connectors {
            let profile_targets = profile_targets(&settings, c, &schemas)
                .map_err(|e| e.at(format!("[connectors.{name}]")))
                .context("the connectors' mapping rules are not valid")?;
            let tokens = c
                .token_env
                .iter()
                .flat_map(|t| t.values())
                .filter_map(|var| settings.secrets.get(var))
                .map(connectors::hash_token)
                .collect();
            declared_tokens.push((name.clone(), tokens));
            declared.insert(
                name.clone(),
                Arc::new(ConnectorRuntime {
                    name: name.clone(),
                    source: Source::Config,
                    auth: Some(Arc::new(ConnectorAuth::new(
                        name,
                        c,
                        &settings.secrets,
                        &mut caches,
                    ))),
                    profile_targets: Arc::new(profile_targets),
                    provisioning: Arc::new(c.provisioning.clone()),
                }),
            );
        }
        let builtin = ConnectorMapping::compile(&MappingSettings::default(), &schemas)
            .context("the built-in mapping does not compile against the schemas")?;
        Ok(ConnectorTable {
            default_targets: Arc::new(ProfileTargets::new(
                builtin,
                FeedSettings::default(),
                None,
                None,
            )),
            default_provisioning: Arc::default(),
            settings,
            schemas,
            declared,
            declared_tokens,
            confluence,
            edited: RwLock::new(BTreeMap::new()),
        })
    }

    /// The settings the table was built from.
    pub fn settings(&self) -> &Arc<Settings> {
        &self.settings
    }

    /// The schemas the mappings were compiled against.
    pub fn schemas(&self) -> &Arc<SchemaRegistry> {
        &self.schemas
    }

    /// The declared connectors, by name.
    pub fn declared(&self) -> impl Iterator<Item = &Arc<ConnectorRuntime>> {
        self.declared.values()
    }

    /// The runtime of `name`: the declared one, or the defaults a stored connector gets;
    /// with its edited mapping, when one is in force.
    pub fn connector(&self, name: &str) -> Arc<ConnectorRuntime> {
        let edited = self.edited_targets(name);
        match (self.declared.get(name), edited) {
            (Some(rt), None) => rt.clone(),
            (Some(rt), Some(targets)) => Arc::new(ConnectorRuntime {
                name: rt.name.clone(),
                source: rt.source,
                auth: rt.auth.clone(),
                profile_targets: targets,
                provisioning: rt.provisioning.clone(),
            }),
            (None, edited) => Arc::new(ConnectorRuntime {
                name: name.to_owned(),
                source: Source::Stored,
                auth: None,
                profile_targets: edited.unwrap_or_else(|| self.default_targets.clone()),
                provisioning: self.default_provisioning.clone(),
            }),
        }
    }

    /// Whether `name`'s mapping may be edited in the console or the operations API: a
    /// stored connector, or a declared one whose table in the file writes no mapping rules.
    /// Rules written in usersync.toml stay the file's (read-only elsewhere).
    pub fn mapping_editable(&self, name: &str) -> bool {
        self.settings
            .connectors
            .get(name)
            .is_none_or(|c| c.mapping == MappingSettings::default())
    }

    /// The version of `name`'s edited mapping in force, if any.
    pub fn edited_version(&self, name: &str) -> Option<i64> {
        self.edited
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .map(|e| e.version)
    }

    fn edited_targets(&self, name: &str) -> Option<Arc<ProfileTargets>> {
        self.edited
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .map(|e| e.targets.clone())
    }

    /// Compiles `rules` for `name` exactly as the configuration file's rules are compiled,
    /// with the connector's feed and webhook (declared connectors), without putting them in
    /// force: what a save validates and a preview runs.
    pub fn compile_mapping(
        &self,
        name: &str,
        rules: &MappingSettings,
    ) -> Result<ProfileTargets, ConfigError> {
        match self.settings.connectors.get(name) {
            Some(c) => {
                let mut c = c.clone();
                c.mapping = rules.clone();
                profile_targets(&self.settings, &c, &self.schemas)
            }
            None => {
                let mapping = ConnectorMapping::compile(rules, &self.schemas)
                    .map_err(|e| ConfigError(e.to_string()))?;
                Ok(ProfileTargets::new(
                    mapping,
                    FeedSettings::default(),
                    None,
                    None,
                ))
            }
        }
    }

    /// Puts `rules` (version `version`) in force for `name`; errors like
    /// [`ConnectorTable::compile_mapping`].
    pub fn set_edited(
        &self,
        name: &str,
        version: i64,
        rules: &MappingSettings,
    ) -> Result<(), ConfigError> {
        let targets = Arc::new(self.compile_mapping(name, rules)?);
        self.edited
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), Edited { version, targets });
        Ok(())
    }

    /// The Confluence client's configuration, when `[confluence]` is set (or one was given).
    pub fn confluence(&self) -> Option<&ConfluenceConfig> {
        self.confluence.as_ref()
    }

    /// A Confluence client, or an error saying how to configure one.
    pub fn confluence_client(&self) -> anyhow::Result<ConfluenceClient> {
        let config = self.confluence.clone().ok_or_else(|| {
            anyhow::anyhow!("no [confluence] section: set base_url and token_env first")
        })?;
        ConfluenceClient::new(config)
            .map_err(|e| anyhow::anyhow!(e.0))
            .context("invalid [confluence] settings")
    }
}

/// A declared connector's mapping compiled against `schemas`, its feed key and its webhook
/// client, with the secrets read at load.
fn profile_targets(
    settings: &Settings,
    c: &ConnectorSettings,
    schemas: &SchemaRegistry,
) -> Result<ProfileTargets, ConfigError> {
    let mapping =
        ConnectorMapping::compile(&c.mapping, schemas).map_err(|e| ConfigError(e.to_string()))?;
    let feed_key = match &c.linchpin.feed_key_env {
        Some(var) => Some(
            settings
                .secrets
                .get(var)
                .ok_or_else(|| ConfigError(format!("linchpin.feed_key_env: {var} is not set")))?,
        ),
        None => None,
    };
    let webhook = match &c.webhook {
        Some(w) => {
            let secret = settings.secrets.get(&w.secret_env).ok_or_else(|| {
                ConfigError(format!("webhook.secret_env: {} is not set", w.secret_env))
            })?;
            Some(WebhookClient::new(w, secret.as_bytes().to_vec())?)
        }
        None => None,
    };
    Ok(ProfileTargets::new(
        mapping,
        c.linchpin.clone(),
        feed_key,
        webhook,
    ))
}

impl AuthLookup for ConnectorTable {
    fn auth(&self, connector: &str) -> Option<&ConnectorAuth> {
        self.declared.get(connector)?.auth.as_deref()
    }
}

impl ConnectorLookup for ConnectorTable {
    fn provisioning(&self, connector: &str) -> Arc<Provisioning> {
        match self.declared.get(connector) {
            Some(rt) => rt.provisioning.clone(),
            None => self.default_provisioning.clone(),
        }
    }

    fn profile_targets(&self, connector: &str) -> Arc<ProfileTargets> {
        if let Some(edited) = self.edited_targets(connector) {
            return edited;
        }
        match self.declared.get(connector) {
            Some(rt) => rt.profile_targets.clone(),
            None => self.default_targets.clone(),
        }
    }

    fn declared(&self) -> Vec<String> {
        self.declared.keys().cloned().collect()
    }
}

/// The connector table with the store: the token registry (declared and stored tokens,
/// reloaded on a miss) and the authenticator over both. Cheap to clone; shared by the HTTP
/// layer, the delivery worker, reconcile and every command.
#[derive(Clone)]
pub struct Runtime {
    table: Arc<ConnectorTable>,
    store: Store,
    tokens: Connectors,
    auth: Authenticator,
    /// The edited mappings' stamp last put in force ([`Runtime::reload_mappings`]).
    mappings_stamp: Arc<std::sync::Mutex<Option<(i64, i64)>>>,
}

impl Runtime {
    /// The table of `settings` (schemas loaded, `[confluence]` resolved) over `store`.
    pub async fn build(settings: Settings, store: Store) -> anyhow::Result<Runtime> {
        let table = ConnectorTable::from_settings(Arc::new(settings))?;
        Self::with_table(table, store).await
    }

    /// A runtime over `store` for a table already built.
    pub async fn with_table(table: ConnectorTable, store: Store) -> anyhow::Result<Runtime> {
        let table = Arc::new(table);
        let tokens = Connectors::load(table.declared_tokens.clone(), store.clone())
            .await
            .context("cannot read connectors from the database")?;
        let lookup: Arc<dyn AuthLookup> = table.clone();
        let auth = Authenticator::new(tokens.clone(), lookup);
        let runtime = Runtime {
            table,
            store,
            tokens,
            auth,
            mappings_stamp: Arc::new(std::sync::Mutex::new(None)),
        };
        runtime
            .reload_mappings()
            .await
            .context("cannot read the edited mappings from the database")?;
        Ok(runtime)
    }

    /// Puts in force the newest saved version of every edited mapping, when another
    /// instance (or this one) saved one since the last look; cheap when nothing changed (one
    /// small query). A saved version that no longer compiles (the schemas changed since) is
    /// skipped with a warning, keeping what is in force.
    pub async fn reload_mappings(&self) -> StoreResult<()> {
        let stamp = self.store.mappings_stamp().await?;
        {
            let last = self
                .mappings_stamp
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if *last == Some(stamp) {
                return Ok(());
            }
        }
        for m in self.store.current_mappings().await? {
            if self.table.edited_version(&m.connector) == Some(m.version) {
                continue;
            }
            if !self.table.mapping_editable(&m.connector) {
                tracing::warn!(
                    connector = %m.connector,
                    version = m.version,
                    "an edited mapping is ignored: usersync.toml now writes this connector's rules"
                );
                continue;
            }
            let compiled = MappingSettings::from_toml(&m.rules)
                .map_err(|e| ConfigError(e.to_string()))
                .and_then(|rules| self.table.set_edited(&m.connector, m.version, &rules));
            match compiled {
                Ok(()) => tracing::info!(
                    connector = %m.connector,
                    version = m.version,
                    "edited mapping in force"
                ),
                Err(e) => tracing::warn!(
                    connector = %m.connector,
                    version = m.version,
                    error.message = %e,
                    "an edited mapping does not compile and is not in force"
                ),
            }
        }
        *self
            .mappings_stamp
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(stamp);
        self.publish_report_depths();
        Ok(())
    }

    /// Tells the store how many lines of managers each connector's mapping in force reads,
    /// so a write re-delivers the reports that many lines down (docs/mapping.md "Lines of
    /// managers"). Called whenever a mapping is put in force.
    pub fn publish_report_depths(&self) {
        let mut names: Vec<String> = self.table.declared.keys().cloned().collect();
        names.extend(
            self.table
                .edited
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .keys()
                .cloned(),
        );
        for name in names {
            let depth = self
                .table
                .connector(&name)
                .profile_targets
                .mapping
                .manager_depth();
            self.store.set_report_depth(&name, depth);
        }
    }

    /// The table: settings, schemas, every connector's runtime.
    pub fn table(&self) -> &Arc<ConnectorTable> {
        &self.table
    }

    /// The table as delivery and reconcile ask it.
    pub fn lookup(&self) -> Arc<dyn ConnectorLookup> {
        self.table.clone()
    }

    /// The settings.
    pub fn settings(&self) -> &Arc<Settings> {
        &self.table.settings
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The token registry: declared and stored connectors with their bearer tokens.
    pub fn tokens(&self) -> &Connectors {
        &self.tokens
    }

    /// Authenticates requests of every connector.
    pub fn authenticator(&self) -> &Authenticator {
        &self.auth
    }

    /// The runtime of `name` (declared, else the defaults of a stored connector).
    pub fn connector(&self, name: &str) -> Arc<ConnectorRuntime> {
        self.table.connector(name)
    }

    /// Every connector, declared or stored, with its source and live tokens.
    pub fn list(&self) -> Vec<ConnectorInfo> {
        self.tokens.list()
    }

    /// Re-reads the stored connectors, after one was created or rotated (the registry also
    /// does this by itself when a token is not found).
    pub async fn reload(&self) -> StoreResult<()> {
        self.tokens.reload().await
    }
}
