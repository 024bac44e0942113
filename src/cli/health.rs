//! `usersync healthcheck`: asks a running `usersync serve` whether it is up, for container
//! health checks where no `curl` exists (the distroless image, deploy/Dockerfile).

use std::time::Duration;

use crate::config::Settings;

/// The default path asked.
pub const DEFAULT_PATH: &str = "/healthz";

/// The URL to ask: `url` when given, else `path` on the address `serve` listens on (an
/// unspecified address, `0.0.0.0` or `::`, is asked on the loopback).
pub fn target(settings: Option<&Settings>, url: Option<&str>, path: &str) -> String {
    if let Some(url) = url {
        return url.to_owned();
    }
    let listen = settings
        .and_then(|s| s.listen_addr().ok())
        .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 8080)));
    let host = match listen.ip() {
        ip if ip.is_unspecified() && ip.is_ipv6() => "[::1]".to_owned(),
        ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("http://{host}:{}{path}", listen.port())
}

/// GETs `url`; `Ok(())` on a 2xx answer within `timeout`, else what went wrong.
pub async fn check(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().timeout(timeout).build()?;
    match client.get(url).send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => anyhow::bail!("{url} answered {}", r.status()),
        Err(e) => anyhow::bail!("{url}: {}", crate::errors::error_chain(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_listen_address_is_asked_on_the_loopback() {
        let mut s = Settings::defaults();
        s.listen = "0.0.0.0:9000".into();
        assert_eq!(
            target(Some(&s), None, "/readyz"),
            "http://127.0.0.1:9000/readyz"
        );
        s.listen = "[::]:9000".into();
        assert_eq!(
            target(Some(&s), None, "/healthz"),
            "http://[::1]:9000/healthz"
        );
        assert_eq!(
            target(None, None, "/healthz"),
            "http://127.0.0.1:8080/healthz"
        );
        assert_eq!(
            target(Some(&s), Some("http://x/healthz"), "/healthz"),
            "http://x/healthz"
        );
    }
}
