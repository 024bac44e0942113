//! `usersync emulator …`: the command-line arguments and the entry point the CLI calls.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;

use super::config::{ConfluenceVersion, EmulatorConfig};
use super::seed::{Seed, SeedUser};
use super::Emulator;

/// Arguments of `usersync emulator`.
#[derive(Debug, Clone, clap::Args)]
pub struct EmulatorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// Personal access token of the built-in system administrator.
    #[arg(
        long,
        env = "USERSYNC_EMULATOR_ADMIN_TOKEN",
        hide_env_values = true,
        required_unless_present = "idp"
    )]
    pub admin_token: Option<String>,
    /// Emulate an IdP's API for pull connectors instead of Confluence: `graph` (the token
    /// endpoint at /{tenant}/oauth2/v2.0/token, Graph at /v1.0), `google` (/token and
    /// /admin/directory/v1), `okta` (/oauth2/v1/token and /api/v1/users) or `onelogin`
    /// (/auth/oauth2/v2/token and /api/2/users); docs/emulator.md, "IdP emulators for pull
    /// connectors".
    #[arg(long, value_name = "IDP", value_parser = ["graph", "google", "okta", "onelogin"])]
    pub idp: Option<String>,
    /// `--idp graph|onelogin`: the client id accepted; `--idp google`: the service account's
    /// e-mail; `--idp okta`: the service app's client id (with `--idp-public-key`).
    #[arg(long, default_value = "usersync", requires = "idp")]
    pub idp_client: String,
    /// `--idp okta`: an API token accepted as `SSWS`.
    #[arg(
        long,
        env = "USERSYNC_EMULATOR_IDP_TOKEN",
        hide_env_values = true,
        requires = "idp"
    )]
    pub idp_token: Option<String>,
    /// `--idp graph|onelogin`: the client secret accepted.
    #[arg(
        long,
        env = "USERSYNC_EMULATOR_IDP_SECRET",
        hide_env_values = true,
        requires = "idp"
    )]
    pub idp_secret: Option<String>,
    /// `--idp google`: the PEM file of the service account's public key; `--idp okta`: of the
    /// service app's public key.
    #[arg(long, value_name = "FILE", requires = "idp")]
    pub idp_public_key: Option<PathBuf>,
    /// `--idp google`: the administrator the service account may act for.
    #[arg(long, default_value = "admin@example.com", requires = "idp")]
    pub idp_admin: String,
    /// Username of the built-in system administrator.
    #[arg(long, default_value = "admin")]
    pub admin_username: String,
    /// Basic-auth password of the administrator (none: PAT only).
    #[arg(long, env = "USERSYNC_EMULATOR_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Confluence feature level: 8.2, 8.4, 9.4 or 10.2.
    #[arg(long = "version", value_name = "VERSION", default_value = "10.2")]
    pub confluence_version: ConfluenceVersion,
    /// Context path, e.g. /confluence (default: none).
    #[arg(long, default_value = "")]
    pub context_path: String,
    /// JSON seed file (users, groups, licence_seats, lup_fields, lup_values).
    #[arg(long, value_name = "FILE")]
    pub seed: Option<PathBuf>,
    /// Extra licensed user with a PAT, as USERNAME:PAT (repeatable).
    #[arg(long = "user", value_name = "USERNAME:PAT")]
    pub users: Vec<String>,
    /// Seed of the random generator (user keys, failure ratios).
    #[arg(long, default_value_t = 0x5eed)]
    pub rng_seed: u64,
}

impl EmulatorArgs {
    /// The emulator configuration these arguments describe (reads the seed file).
    pub fn to_config(&self) -> anyhow::Result<EmulatorConfig> {
        let mut seed = match &self.seed {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading seed file {}", path.display()))?;
                Some(
                    serde_json::from_str::<Seed>(&text)
                        .with_context(|| format!("parsing seed file {}", path.display()))?,
                )
            }
            None => None,
        };
        for spec in &self.users {
            let (username, pat) = spec
                .split_once(':')
                .filter(|(u, p)| !u.is_empty() && !p.is_empty())
                .with_context(|| "--user expects USERNAME:PAT".to_owned())?;
            let user: SeedUser = serde_json::from_value(serde_json::json!({
                "username": username,
                "pat": pat,
                "groups": ["confluence-users"],
            }))
            .context("building a --user entry")?;
            seed.get_or_insert_with(Seed::default).users.push(user);
        }
        let mut config = EmulatorConfig::new(self.admin_token.clone().unwrap_or_default());
        config.admin_username = self.admin_username.clone();
        config.admin_password = self.admin_password.clone();
        config.version = self.confluence_version;
        config.context_path = self.context_path.clone();
        config.seed = seed;
        config.rng_seed = self.rng_seed;
        Ok(config)
    }
}

/// Runs the emulator until Ctrl-C.
pub async fn run(args: EmulatorArgs) -> anyhow::Result<()> {
    if let Some(idp) = &args.idp {
        return run_idp(&args, idp).await;
    }
    let config = args.to_config()?;
    let emulator = Emulator::try_new(config).context("applying the seed")?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(
        listen = %args.listen,
        version = %args.confluence_version,
        context_path = %args.context_path,
        "Confluence emulator listening (control API at /__emulator, unprotected)"
    );
    emulator
        .serve(listener, async {
            if let Err(error) = tokio::signal::ctrl_c().await {
                tracing::error!(error = %error, "cannot wait for Ctrl-C; stopping");
            }
        })
        .await
        .context("serving the emulator")
}

/// `--idp graph|google|okta|onelogin`: an IdP emulator, with users added through its control
/// API (`POST /_control/users`).
async fn run_idp(args: &EmulatorArgs, idp: &str) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let stop = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %error, "cannot wait for Ctrl-C; stopping");
        }
    };
    tracing::info!(listen = %args.listen, idp, "IdP emulator listening (control API unprotected)");
    match idp {
        "graph" => {
            let secret = args
                .idp_secret
                .clone()
                .context("--idp graph needs --idp-secret (or USERSYNC_EMULATOR_IDP_SECRET)")?;
            super::graph::GraphEmulator::new(&args.idp_client, &secret)
                .serve(listener, stop)
                .await
                .context("serving the Graph emulator")
        }
        "okta" => {
            let pem = match &args.idp_public_key {
                Some(path) => Some(read_public_key(path)?),
                None => None,
            };
            if pem.is_none() && args.idp_token.is_none() {
                anyhow::bail!(
                    "--idp okta needs --idp-token (an API token) and/or --idp-public-key FILE \
                     (the service app's public key, PEM)"
                );
            }
            let app = pem.as_deref().map(|p| (args.idp_client.as_str(), p));
            super::okta::OktaEmulator::new(args.idp_token.as_deref(), app)
                .serve(listener, stop)
                .await
                .context("serving the Okta emulator")
        }
        "onelogin" => {
            let secret = args
                .idp_secret
                .clone()
                .context("--idp onelogin needs --idp-secret (or USERSYNC_EMULATOR_IDP_SECRET)")?;
            super::onelogin::OneloginEmulator::new(&args.idp_client, &secret)
                .serve(listener, stop)
                .await
                .context("serving the OneLogin emulator")
        }
        _ => {
            let path = args.idp_public_key.as_ref().context(
                "--idp google needs --idp-public-key FILE (the service account's public key, PEM)",
            )?;
            let pem = read_public_key(path)?;
            super::google::GoogleEmulator::new(&args.idp_client, &pem, &args.idp_admin)
                .serve(listener, stop)
                .await
                .context("serving the Google emulator")
        }
    }
}

/// An RSA public key in PEM, checked before the emulator starts.
fn read_public_key(path: &std::path::Path) -> anyhow::Result<String> {
    let pem =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).is_err() {
        anyhow::bail!("{} is not an RSA public key in PEM", path.display());
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: EmulatorArgs,
    }

    #[test]
    fn the_arguments_parse_into_a_config() {
        let cli = Cli::try_parse_from([
            "emulator",
            "--admin-token",
            "t0k",
            "--version",
            "8.4",
            "--context-path",
            "/confluence",
            "--user",
            "svc:pat1",
        ])
        .expect("parses");
        let config = cli.args.to_config().expect("config");
        assert_eq!(config.version, ConfluenceVersion::V8_4);
        assert_eq!(config.normalised_context_path(), "/confluence");
        assert_eq!(config.seed.map(|s| s.users.len()), Some(1));
    }

    #[test]
    fn a_user_without_a_token_is_refused() {
        let cli = Cli::try_parse_from(["emulator", "--admin-token", "t", "--user", "svc"])
            .expect("parses");
        assert!(cli.args.to_config().is_err());
    }
}
