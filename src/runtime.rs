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
use std::sync::Arc;

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
    pub auth: Option<ConnectorAuth>,
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
                    auth: Some(ConnectorAuth::new(name, c, &settings.secrets, &mut caches)),
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

    /// The runtime of `name`: the declared one, or the defaults a stored connector gets.
    pub fn connector(&self, name: &str) -> Arc<ConnectorRuntime> {
        match self.declared.get(name) {
            Some(rt) => rt.clone(),
            None => Arc::new(ConnectorRuntime {
                name: name.to_owned(),
                source: Source::Stored,
                auth: None,
                profile_targets: self.default_targets.clone(),
                provisioning: self.default_provisioning.clone(),
            }),
        }
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
        self.declared.get(connector)?.auth.as_ref()
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
        Ok(Runtime {
            table,
            store,
            tokens,
            auth,
        })
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
