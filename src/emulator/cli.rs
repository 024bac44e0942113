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
    #[arg(long, env = "USERSYNC_EMULATOR_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: String,
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
        let mut config = EmulatorConfig::new(self.admin_token.clone());
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
