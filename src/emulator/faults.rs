//! Fault injection: one-shot failures for the next N matching calls, connection resets,
//! full outages, and the steady latency / failure-ratio knobs.
//!
//! Faults act before authentication, like a failing proxy or node would. A reset only
//! drops the TCP connection when the emulator runs through [`Emulator::serve`]
//! (see [`super::server`]); through a bare [`Emulator::router`] it degrades to a 500 with
//! `X-Emulator-Fault: connection-reset`.
//!
//! [`Emulator::serve`]: super::Emulator::serve
//! [`Emulator::router`]: super::Emulator::router

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::config::{ErrorRatioKnobs, LatencyKnobs};

/// Which calls a fault or delay applies to. Empty fields match everything. `path` is
/// compared, without the context path, against both the concrete path and the route
/// template (`/rest/api/admin/user/{username}`); `*` matches any run of characters.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteScope {
    /// HTTP method, case-insensitive.
    pub method: Option<String>,
    /// Path pattern.
    pub path: Option<String>,
}

/// The call a fault is matched against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallSite<'a> {
    pub method: &'a str,
    /// Path without the context path.
    pub path: &'a str,
    /// Route template without the context path, when a route matched.
    pub template: Option<&'a str>,
    /// 1-based page of a paged list call: `start / limit + 1`, with `limit` after its default
    /// and the `max_page_limit` cap (1 when the query has no `start`).
    pub page: u32,
}

impl RouteScope {
    /// Whether `call` is in scope.
    pub(crate) fn matches(&self, call: CallSite<'_>) -> bool {
        let method_ok = self
            .method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(call.method));
        let path_ok = self
            .path
            .as_deref()
            .is_none_or(|p| glob(p, call.path) || call.template.is_some_and(|t| glob(p, t)));
        method_ok && path_ok
    }
}

/// `*` matches any (possibly empty) run of characters; everything else is literal.
fn glob(pattern: &str, text: &str) -> bool {
    let Some((head, rest)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let Some(mut remaining) = text.strip_prefix(head) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('*').collect();
    let Some((last, middle)) = parts.split_last() else {
        return true;
    };
    for part in middle {
        match remaining.find(part) {
            Some(i) => remaining = &remaining[i + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

/// How an outage looks to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum OutageMode {
    /// Every call answers 503 (HTML, like a proxy in front of a dead node).
    #[default]
    #[serde(rename = "503")]
    ServiceUnavailable,
    /// The listening socket is closed, so connects are refused (through
    /// [`Emulator::serve`](super::Emulator::serve) only); requests on open keep-alive
    /// connections get the connection reset.
    #[serde(rename = "refuse")]
    Refuse,
}

fn one() -> u32 {
    1
}

/// A fault to arm (`POST /__emulator/faults`, [`Emulator::arm_fault`](super::Emulator::arm_fault)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// The next `times` matching calls answer `status` (JSON error body).
    Status {
        /// Usually 500 or 503.
        status: u16,
        /// Optional `Retry-After` in seconds.
        #[serde(default)]
        retry_after_s: Option<u64>,
        /// How many calls (default 1).
        #[serde(default = "one")]
        times: u32,
        /// Method filter.
        #[serde(default)]
        method: Option<String>,
        /// Path filter (see [`RouteScope`]).
        #[serde(default)]
        path: Option<String>,
        /// Only this page (1-based) of a paged list, e.g. 3 for the third page of
        /// `GET /rest/api/user/list` (a read error in the middle of a full sync).
        #[serde(default)]
        page: Option<u32>,
    },
    /// The next `times` matching calls get their TCP connection reset, no response.
    Reset {
        /// How many calls (default 1).
        #[serde(default = "one")]
        times: u32,
        /// Method filter.
        #[serde(default)]
        method: Option<String>,
        /// Path filter.
        #[serde(default)]
        path: Option<String>,
        /// Only this page (1-based) of a paged list.
        #[serde(default)]
        page: Option<u32>,
    },
    /// Everything fails for `duration_ms`.
    Outage {
        /// Length of the outage.
        duration_ms: u64,
        /// 503 or refused connections.
        #[serde(default)]
        mode: OutageMode,
        /// Optional `Retry-After` on the 503s.
        #[serde(default)]
        retry_after_s: Option<u64>,
    },
}

impl Fault {
    /// One call answers `status`.
    pub fn status(status: u16) -> Self {
        Self::Status {
            status,
            retry_after_s: None,
            times: 1,
            method: None,
            path: None,
            page: None,
        }
    }

    /// One call gets its connection reset.
    pub fn reset() -> Self {
        Self::Reset {
            times: 1,
            method: None,
            path: None,
            page: None,
        }
    }

    /// A 503 outage of `duration`.
    pub fn outage(duration: Duration, mode: OutageMode) -> Self {
        Self::Outage {
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            mode,
            retry_after_s: None,
        }
    }

    /// Sets `Retry-After` (status and outage faults).
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        match &mut self {
            Self::Status { retry_after_s, .. } | Self::Outage { retry_after_s, .. } => {
                *retry_after_s = Some(seconds);
            }
            Self::Reset { .. } => {}
        }
        self
    }

    /// Applies to the next `n` matching calls (status and reset faults).
    pub fn times(mut self, n: u32) -> Self {
        match &mut self {
            Self::Status { times, .. } | Self::Reset { times, .. } => *times = n,
            Self::Outage { .. } => {}
        }
        self
    }

    /// Limits the fault to one method and path pattern.
    pub fn on(mut self, on_method: &str, on_path: &str) -> Self {
        match &mut self {
            Self::Status { method, path, .. } | Self::Reset { method, path, .. } => {
                *method = Some(on_method.to_owned());
                *path = Some(on_path.to_owned());
            }
            Self::Outage { .. } => {}
        }
        self
    }

    /// Limits the fault to one page (1-based) of a paged list call (status and reset faults).
    pub fn on_page(mut self, n: u32) -> Self {
        match &mut self {
            Self::Status { page, .. } | Self::Reset { page, .. } => *page = Some(n),
            Self::Outage { .. } => {}
        }
        self
    }
}

/// What the pipeline must do instead of serving a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Injected {
    /// Answer with this status (JSON error body).
    Status {
        status: u16,
        retry_after_s: Option<u64>,
    },
    /// Drop the connection.
    Reset,
    /// Outage: 503 or reset.
    Outage {
        mode: OutageMode,
        retry_after_s: Option<u64>,
    },
}

impl Injected {
    /// Short label for the call log.
    pub fn label(&self) -> String {
        match self {
            Self::Status { status, .. } => format!("status {status}"),
            Self::Reset => "connection reset".to_owned(),
            Self::Outage { mode, .. } => match mode {
                OutageMode::ServiceUnavailable => "outage 503".to_owned(),
                OutageMode::Refuse => "outage refuse".to_owned(),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Armed {
    fault: Fault,
    remaining: u32,
}

/// Armed faults and the running outage.
#[derive(Debug, Default)]
pub(crate) struct FaultBook {
    armed: Vec<Armed>,
    outage: Option<(Instant, OutageMode, Option<u64>)>,
}

/// Armed faults as the control API shows them.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FaultsView {
    armed: Vec<Armed>,
    outage_remaining_ms: Option<u64>,
    outage_mode: Option<OutageMode>,
}

impl FaultBook {
    /// Arms a fault.
    pub fn arm(&mut self, fault: Fault, now: Instant) {
        match fault {
            Fault::Outage {
                duration_ms,
                mode,
                retry_after_s,
            } => {
                self.outage = Some((
                    now + Duration::from_millis(duration_ms),
                    mode,
                    retry_after_s,
                ));
            }
            Fault::Status { times, .. } | Fault::Reset { times, .. } => {
                if times > 0 {
                    self.armed.push(Armed {
                        fault,
                        remaining: times,
                    });
                }
            }
        }
    }

    /// Disarms everything, including a running outage.
    pub fn clear(&mut self) {
        self.armed.clear();
        self.outage = None;
    }

    /// The running outage, if any: its mode and end.
    pub fn outage(&self, now: Instant) -> Option<(OutageMode, Instant)> {
        self.outage
            .filter(|(until, _, _)| *until > now)
            .map(|(until, mode, _)| (mode, until))
    }

    /// The fault for this call, if one applies (outage, then armed faults in arming order,
    /// then the failure ratio). Consumes one use of a one-shot fault.
    pub fn take(
        &mut self,
        call: CallSite<'_>,
        now: Instant,
        ratio: &ErrorRatioKnobs,
        rng: &mut StdRng,
    ) -> Option<Injected> {
        if let Some((until, mode, retry_after_s)) = self.outage {
            if until > now {
                return Some(Injected::Outage {
                    mode,
                    retry_after_s,
                });
            }
            self.outage = None;
        }
        let hit = self.armed.iter_mut().find(|a| match &a.fault {
            Fault::Status {
                method, path, page, ..
            }
            | Fault::Reset {
                method, path, page, ..
            } => {
                page.is_none_or(|p| p == call.page)
                    && RouteScope {
                        method: method.clone(),
                        path: path.clone(),
                    }
                    .matches(call)
            }
            Fault::Outage { .. } => false,
        });
        if let Some(armed) = hit {
            armed.remaining = armed.remaining.saturating_sub(1);
            let injected = match armed.fault {
                Fault::Status {
                    status,
                    retry_after_s,
                    ..
                } => Injected::Status {
                    status,
                    retry_after_s,
                },
                _ => Injected::Reset,
            };
            self.armed.retain(|a| a.remaining > 0);
            return Some(injected);
        }
        if ratio.ratio > 0.0 && ratio.scope.matches(call) && rng.gen_bool(ratio.ratio.min(1.0)) {
            return Some(Injected::Status {
                status: ratio.status,
                retry_after_s: ratio.retry_after_s,
            });
        }
        None
    }

    /// Snapshot for `GET /__emulator/state`.
    pub fn view(&self, now: Instant) -> FaultsView {
        let outage = self.outage(now);
        FaultsView {
            armed: self.armed.clone(),
            outage_remaining_ms: outage.map(|(_, until)| {
                u64::try_from(until.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX)
            }),
            outage_mode: outage.map(|(mode, _)| mode),
        }
    }
}

/// Delay for a call: the global delay plus the first matching per-route delay.
pub(crate) fn latency(knobs: &LatencyKnobs, call: CallSite<'_>) -> Duration {
    let route = knobs
        .routes
        .iter()
        .find(|r| r.scope.matches(call))
        .map_or(0, |r| r.ms);
    Duration::from_millis(knobs.global_ms.saturating_add(route))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn site<'a>(method: &'a str, path: &'a str) -> CallSite<'a> {
        CallSite {
            method,
            path,
            template: None,
            page: 1,
        }
    }

    #[test]
    fn globs_match_literal_and_starred_paths() {
        assert!(glob("/rest/api/user", "/rest/api/user"));
        assert!(!glob("/rest/api/user", "/rest/api/user/list"));
        assert!(glob(
            "/rest/api/admin/*",
            "/rest/api/admin/user/jdoe/disable"
        ));
        assert!(glob("*/disable", "/rest/api/admin/user/jdoe/disable"));
        assert!(glob(
            "/rest/*/user/*/group/*",
            "/rest/api/user/jdoe/group/g"
        ));
        assert!(!glob("/rest/*/x", "/rest/api/y"));
    }

    #[test]
    fn a_one_shot_fault_hits_only_matching_calls_and_then_disarms() {
        let mut book = FaultBook::default();
        let mut rng = StdRng::seed_from_u64(1);
        let now = Instant::now();
        book.arm(Fault::status(503).times(2).on("PUT", "*/disable"), now);
        let ratio = ErrorRatioKnobs::default();
        assert_eq!(
            book.take(site("GET", "/rest/api/user"), now, &ratio, &mut rng),
            None
        );
        let put = site("put", "/rest/api/admin/user/jdoe/disable");
        assert!(book.take(put, now, &ratio, &mut rng).is_some());
        assert!(book.take(put, now, &ratio, &mut rng).is_some());
        assert_eq!(book.take(put, now, &ratio, &mut rng), None);
    }

    #[test]
    fn a_page_fault_hits_only_that_page_of_a_list() {
        let mut book = FaultBook::default();
        let mut rng = StdRng::seed_from_u64(1);
        let now = Instant::now();
        book.arm(
            Fault::status(500)
                .times(2)
                .on("GET", "/rest/api/user/list")
                .on_page(3),
            now,
        );
        let ratio = ErrorRatioKnobs::default();
        let page = |n| CallSite {
            page: n,
            ..site("GET", "/rest/api/user/list")
        };
        assert_eq!(book.take(page(1), now, &ratio, &mut rng), None);
        assert_eq!(book.take(page(2), now, &ratio, &mut rng), None);
        assert!(book.take(page(3), now, &ratio, &mut rng).is_some());
        assert_eq!(book.take(page(4), now, &ratio, &mut rng), None);
        assert!(book.take(page(3), now, &ratio, &mut rng).is_some());
        assert_eq!(book.take(page(3), now, &ratio, &mut rng), None);
    }

    #[test]
    fn an_outage_ends_by_itself() {
        let mut book = FaultBook::default();
        let mut rng = StdRng::seed_from_u64(1);
        let now = Instant::now();
        book.arm(
            Fault::outage(Duration::from_millis(300), OutageMode::ServiceUnavailable),
            now,
        );
        let ratio = ErrorRatioKnobs::default();
        let call = site("GET", "/rest/api/user/current");
        assert!(matches!(
            book.take(call, now, &ratio, &mut rng),
            Some(Injected::Outage { .. })
        ));
        let later = now + Duration::from_millis(300);
        assert_eq!(book.take(call, later, &ratio, &mut rng), None);
    }

    #[test]
    fn faults_parse_from_control_api_json() {
        let fault: Fault = serde_json::from_str(
            r#"{"kind":"status","status":503,"retry_after_s":2,"path":"/rest/api/*"}"#,
        )
        .expect("parses");
        assert_eq!(
            fault,
            Fault::Status {
                status: 503,
                retry_after_s: Some(2),
                times: 1,
                method: None,
                path: Some("/rest/api/*".to_owned()),
                page: None,
            }
        );
        let outage: Fault =
            serde_json::from_str(r#"{"kind":"outage","duration_ms":300,"mode":"refuse"}"#)
                .expect("parses");
        assert!(matches!(
            outage,
            Fault::Outage {
                mode: OutageMode::Refuse,
                ..
            }
        ));
    }
}
