//! The emulator's shared state: one [`World`] behind a `std::sync::Mutex` and the call log
//! behind another. Locks are held for a few map operations only and never across `.await`;
//! the two are never held together.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::Notify;

use super::calls::CallLog;
use super::config::{EmulatorConfig, Knobs};
use super::faults::{FaultBook, OutageMode};
use super::ratelimit::RateLimiter;
use super::seed::{self, Seed, SeedError};
use super::state::State;

/// Everything a request may read or change.
#[derive(Debug)]
pub(crate) struct World {
    pub state: State,
    pub knobs: Knobs,
    pub faults: FaultBook,
    pub limiter: RateLimiter,
    pub rng: StdRng,
}

impl World {
    /// A fresh world from the config and a seed (the config's own when `None`).
    fn build(config: &EmulatorConfig, seed: Option<&Seed>) -> Result<Self, SeedError> {
        let mut rng = StdRng::seed_from_u64(config.rng_seed);
        let state = seed::initial_state(config, seed, &mut rng)?;
        let mut knobs = config.initial_knobs();
        if let Some(seats) = seed.and_then(|s| s.licence_seats) {
            knobs.licence_seats = Some(seats);
        }
        Ok(Self {
            state,
            knobs,
            faults: FaultBook::default(),
            limiter: RateLimiter::default(),
            rng,
        })
    }
}

/// State shared by all handlers of one emulator.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: EmulatorConfig,
    /// Normalised context path (`""` or `/confluence`).
    pub context_path: String,
    world: Mutex<World>,
    calls: Mutex<CallLog>,
    /// Woken when faults change, so the listener notices a refuse-mode outage at once.
    pub outage_changed: Notify,
}

impl Shared {
    /// Builds the shared state; fails when the configured seed cannot be applied.
    pub fn new(config: EmulatorConfig) -> Result<Self, SeedError> {
        let world = World::build(&config, config.seed.as_ref())?;
        Ok(Self::with_world(config, world))
    }

    /// Like [`Shared::new`] but ignores a bad seed (logged) and starts with the admin only.
    pub fn new_lenient(config: EmulatorConfig) -> Self {
        match World::build(&config, config.seed.as_ref()) {
            Ok(world) => Self::with_world(config, world),
            Err(error) => {
                tracing::error!(error = %error, "emulator seed rejected; starting without it");
                let world = World::build(&config, None);
                let world = world.unwrap_or_else(|_| World {
                    state: State::new(),
                    knobs: config.initial_knobs(),
                    faults: FaultBook::default(),
                    limiter: RateLimiter::default(),
                    rng: StdRng::seed_from_u64(config.rng_seed),
                });
                Self::with_world(config, world)
            }
        }
    }

    fn with_world(config: EmulatorConfig, world: World) -> Self {
        Self {
            context_path: config.normalised_context_path(),
            config,
            world: Mutex::new(world),
            calls: Mutex::new(CallLog::default()),
            outage_changed: Notify::new(),
        }
    }

    /// Locks the world, first finishing any long task that is due.
    pub fn world(&self) -> MutexGuard<'_, World> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters to a test tool; keep serving rather than poisoning every later call.
        let mut world = self.world.lock().unwrap_or_else(PoisonError::into_inner);
        world.state.tick(Instant::now());
        world
    }

    /// Locks the call log.
    pub fn calls(&self) -> MutexGuard<'_, CallLog> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Back to the start: state from `seed` (or the configured seed), initial knobs, no
    /// faults, empty buckets and call log. On error nothing changes.
    pub fn reset(&self, seed: Option<&Seed>) -> Result<(), SeedError> {
        let fresh = World::build(&self.config, seed.or(self.config.seed.as_ref()))?;
        *self.world() = fresh;
        self.calls().clear();
        self.outage_changed.notify_one();
        Ok(())
    }

    /// End of a running refuse-mode outage, if any.
    pub fn refusing_until(&self) -> Option<Instant> {
        match self.world().faults.outage(Instant::now()) {
            Some((OutageMode::Refuse, until)) => Some(until),
            _ => None,
        }
    }
}
