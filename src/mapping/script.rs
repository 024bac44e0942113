//! The script transform: an embedded Rhai interpreter in a sandbox, for whatever the built-in
//! transforms cannot say ("the answer to custom connectors with scripts").
//!
//! A mapping runs on the delivery worker and inside the Linchpin feed, so a script must never
//! hang either or eat the machine's memory. The sandbox bounds every run by operations, call
//! depth, string, array and map sizes, and a wall-clock deadline checked from Rhai's progress
//! callback (every few hundred operations, so it interrupts a running loop); a script that
//! hits a bound fails with an error naming the bound, and the rule it belongs to is reported
//! as failed (the user is still delivered). Scripts have no I/O: no modules, no `eval`, and
//! `print`/`debug` go nowhere (their output would be personal data in the logs).
//!
//! **Sizes are checked before allocating where one call could otherwise explode.** Rhai
//! checks a value's size *after* the function that built it returns. For nearly every
//! function that is harmless: concatenation (`+`, `+=`, `append`, array and map `+`) at most
//! doubles a value already within bounds, `pad` and `blob` check their length first, and
//! `split`, `chars`, `to_upper`... grow a bounded input by a small factor. `replace` is the
//! exception: its result is the input times the number of matches times the replacement
//! (`replace("", s)` inserts `s` between every character), so one call on a 64 KiB string could
//! allocate gigabytes before the check. The sandbox registers its own `replace` (every
//! string/character combination), which computes the result's length first and fails with
//! the string-size error before allocating anything.
//!
//! **This module runs scripts synchronously on the calling thread.** It stays pure (no
//! Tokio); callers on async threads hop to the dedicated script threads of
//! `profiles/pool.rs` first, so a script that runs to its deadline delays no request.

use std::cell::Cell;
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, Scope, AST};
use serde::{Deserialize, Serialize};

use crate::scim::resource::Document;

/// The bounds of one script run (`[connectors.NAME.mapping.script]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScriptLimits {
    /// Rhai operations per run (roughly: expressions evaluated).
    pub max_operations: u64,
    /// Nested function calls.
    pub max_call_levels: usize,
    /// Longest string, in bytes.
    pub max_string_size: usize,
    /// Largest array, in elements (nested arrays count).
    pub max_array_size: usize,
    /// Largest object map, in entries.
    pub max_map_size: usize,
    /// Wall-clock time per run, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for ScriptLimits {
    fn default() -> Self {
        // Generous for string shaping (a few hundred operations per user in practice), tiny
        // next to what a runaway loop would do: 100k users × 50 ms would still be too slow
        // for the feed, so the deadline is a safety net, not a budget.
        Self {
            max_operations: 100_000,
            max_call_levels: 16,
            max_string_size: 64 * 1024,
            max_array_size: 10_000,
            max_map_size: 10_000,
            timeout_ms: 50,
        }
    }
}

thread_local! {
    /// Deadline of the run on this thread. Rhai evaluates synchronously on the calling
    /// thread, so the progress callback (shared by all runs of an engine) reads the deadline
    /// of exactly the run it is reporting on.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Operations between two clock reads: reading the clock on every operation would double
/// the cost of a script; every 256 keeps the overshoot far below a millisecond.
const CLOCK_EVERY: u64 = 256;

/// A compiled script.
#[derive(Debug, Clone)]
pub struct Script {
    ast: AST,
}

/// The interpreter with its bounds. One per connector; shared by all rules and threads.
pub struct Sandbox {
    engine: Engine,
    limits: ScriptLimits,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("limits", &self.limits)
            .finish()
    }
}

/// Why a script did not compile or run. Worded without the values it ran on (personal
/// data): the reason reaches logs, the sync queue and `mapping preview`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// A syntax error, found at start.
    #[error("script does not compile: {0}")]
    Compile(String),
    /// The user's document could not be handed to the script.
    #[error("the user cannot be handed to the script: {0}")]
    Input(String),
    /// The script threw, or hit a bound (operations, time, size, depth).
    #[error("script failed: {0}")]
    Failed(String),
    /// The script returned a value of a type it may not return.
    #[error("the script returned a {0} where a string, an array of strings or () was expected")]
    Returned(&'static str),
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new(ScriptLimits::default())
    }
}

impl Sandbox {
    /// An interpreter with these bounds.
    pub fn new(limits: ScriptLimits) -> Self {
        let mut engine = Engine::new();
        engine
            .set_max_operations(limits.max_operations)
            .set_max_call_levels(limits.max_call_levels)
            .set_max_string_size(limits.max_string_size)
            .set_max_array_size(limits.max_array_size)
            .set_max_map_size(limits.max_map_size)
            .set_max_expr_depths(64, 32)
            .on_print(|_| {})
            .on_debug(|_, _, _| {})
            .on_progress(|ops| {
                if ops % CLOCK_EVERY != 0 {
                    return None;
                }
                let late = DEADLINE.with(|d| d.get().is_some_and(|t| Instant::now() >= t));
                late.then(|| Dynamic::from("deadline"))
            });
        engine.disable_symbol("eval");
        register_checked_replace(&mut engine, limits.max_string_size);
        check_variables_while_running(&mut engine);
        Self { engine, limits }
    }

    /// The bounds.
    pub fn limits(&self) -> &ScriptLimits {
        &self.limits
    }

    /// Compiles a script; syntax errors are reported at start.
    pub fn compile(&self, code: &str) -> Result<Script, ScriptError> {
        self.engine
            .compile(code)
            .map(|ast| Script { ast })
            .map_err(|e| ScriptError::Compile(e.to_string()))
    }

    /// Runs a script with `value` (the first value or `()`), `values` (all) and `user` (the
    /// SCIM document) in scope. The result is a string, a number or boolean (as text), an
    /// array of those, or `()` for "no value".
    pub fn run(
        &self,
        script: &Script,
        values: &[String],
        user: &Document,
    ) -> Result<Vec<String>, ScriptError> {
        let mut scope = Scope::new();
        scope.push(
            "value",
            values
                .first()
                .map(|v| Dynamic::from(v.clone()))
                .unwrap_or(Dynamic::UNIT),
        );
        scope.push(
            "values",
            Dynamic::from_array(values.iter().cloned().map(Dynamic::from).collect()),
        );
        let user = rhai::serde::to_dynamic(user).map_err(|e| ScriptError::Input(describe(&e)))?;
        // A constant: scripts read the user, and could otherwise grow it in place.
        scope.push_constant_dynamic("user", user);
        let deadline = Instant::now() + Duration::from_millis(self.limits.timeout_ms.max(1));
        DEADLINE.with(|d| d.set(Some(deadline)));
        VAR_READS.with(|c| c.set(0));
        let result = self
            .engine
            .eval_ast_with_scope::<Dynamic>(&mut scope, &script.ast);
        DEADLINE.with(|d| d.set(None));
        let out = result.map_err(|e| ScriptError::Failed(self.why(&e)))?;
        to_values(out)
    }

    /// Why a run stopped, naming the bound that stopped it.
    fn why(&self, e: &EvalAltResult) -> String {
        let l = &self.limits;
        match e {
            EvalAltResult::ErrorTooManyOperations(_) => format!(
                "it ran more than {} operations (script.max_operations)",
                l.max_operations
            ),
            EvalAltResult::ErrorTerminated(..) => {
                format!("it ran longer than {} ms (script.timeout_ms)", l.timeout_ms)
            }
            EvalAltResult::ErrorDataTooLarge(what, _) => format!(
                "it built a {} larger than allowed (script.max_string_size, max_array_size, \
                 max_map_size)",
                what.to_lowercase()
            ),
            EvalAltResult::ErrorStackOverflow(_) => format!(
                "it nested calls deeper than {} (script.max_call_levels)",
                l.max_call_levels
            ),
            other => describe(other),
        }
    }
}

/// Variable reads between two checks of every variable's size.
const CHECK_VARS_EVERY: u64 = 256;

thread_local! {
    /// Variable reads of the run on this thread (see [`check_variables_while_running`]).
    static VAR_READS: Cell<u64> = const { Cell::new(0) };
}

/// Checks the sizes of the variables in scope every few hundred variable reads. Rhai checks a
/// value's size when a function or operator returns it, and an indexed item when it is
/// assigned, but not the map an item is assigned *into*: `loop { m[`${i}`] = big + i; i += 1; }`
/// grows `m` by one bounded item per step without any check, and grew a test process by
/// 440 MiB within the operation limit. Every variable of the running script is held to the
/// sandbox's bounds instead, on a thread-local count of reads (Rhai's variable callback; its
/// API is marked volatile). The inputs are left out: `user` is a constant (it cannot grow)
/// and may legitimately exceed the string bound, as may `value` and `values` copied from it.
#[allow(deprecated)] // `on_var` is not deprecated, only marked volatile by Rhai.
fn check_variables_while_running(engine: &mut Engine) {
    engine.on_var(|_, _, ctx| {
        let reads = VAR_READS.with(|c| {
            let n = c.get().wrapping_add(1);
            c.set(n);
            n
        });
        if reads % CHECK_VARS_EVERY == 0 {
            for (name, _, value) in ctx.scope().iter_raw() {
                if matches!(name, "user" | "value" | "values") {
                    continue;
                }
                ctx.engine().ensure_data_size_within_limits(value)?;
            }
        }
        Ok(None)
    });
}

/// Overrides Rhai's `replace` (string or character, by string or character) with one that
/// computes the result's length first and refuses, before allocating, a result longer than
/// `max` bytes (0: unlimited). Functions registered on the engine take precedence over the
/// standard package's.
fn register_checked_replace(engine: &mut Engine, max: usize) {
    fn replace(
        max: usize,
        s: &mut ImmutableString,
        find: &str,
        with: &str,
    ) -> Result<(), Box<EvalAltResult>> {
        if s.is_empty() {
            return Ok(());
        }
        if max > 0 && with.len() > find.len() {
            // `str::replace("")` inserts at every character boundary, both ends included.
            let matches = if find.is_empty() {
                s.chars().count() + 1
            } else {
                s.matches(find).count()
            };
            let grown = s
                .len()
                .saturating_add(matches.saturating_mul(with.len() - find.len()));
            if grown > max {
                return Err(Box::new(EvalAltResult::ErrorDataTooLarge(
                    "Length of string".to_owned(),
                    rhai::Position::NONE,
                )));
            }
        }
        *s = s.replace(find, with).into();
        Ok(())
    }
    engine
        .register_fn(
            "replace",
            move |s: &mut ImmutableString, find: &str, with: &str| replace(max, s, find, with),
        )
        .register_fn(
            "replace",
            move |s: &mut ImmutableString, find: &str, with: char| {
                replace(max, s, find, with.encode_utf8(&mut [0u8; 4]))
            },
        )
        .register_fn(
            "replace",
            move |s: &mut ImmutableString, find: char, with: &str| {
                replace(max, s, find.encode_utf8(&mut [0u8; 4]), with)
            },
        )
        .register_fn(
            "replace",
            move |s: &mut ImmutableString, find: char, with: char| {
                replace(
                    max,
                    s,
                    find.encode_utf8(&mut [0u8; 4]),
                    with.encode_utf8(&mut [0u8; 4]),
                )
            },
        );
}

/// A runtime error without the values it may carry: Rhai's messages for type errors and
/// `throw` include data, which is personal here.
fn describe(e: &EvalAltResult) -> String {
    match e {
        EvalAltResult::ErrorRuntime(_, pos) => format!("the script threw an error ({pos})"),
        other => {
            let text = other.to_string();
            // Keep the kind of error ("Function not found: …", "Variable not found: …"),
            // which names code, not data.
            text.chars().take(200).collect()
        }
    }
}

fn to_values(d: Dynamic) -> Result<Vec<String>, ScriptError> {
    if d.is_unit() {
        return Ok(Vec::new());
    }
    if d.is_array() {
        let items = d.into_array().unwrap_or_default();
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if item.is_unit() {
                continue;
            }
            out.push(scalar(item)?);
        }
        return Ok(out);
    }
    Ok(vec![scalar(d)?])
}

fn scalar(d: Dynamic) -> Result<String, ScriptError> {
    if d.is_string() || d.is_char() || d.is_int() || d.is_bool() || d.is_float() {
        Ok(d.to_string())
    } else {
        Err(ScriptError::Returned(d.type_name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Document {
        json!({"userName": "ada@example.com",
               "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"division": "R&D"}})
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    fn run_with(sandbox: &Sandbox, code: &str, values: &[&str]) -> Result<Vec<String>, String> {
        let script = sandbox.compile(code).map_err(|e| e.to_string())?;
        let values: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        sandbox
            .run(&script, &values, &user())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn scripts_see_the_values_and_the_user_and_return_strings_or_lists() {
        let s = Sandbox::default();
        assert_eq!(
            run_with(&s, "value.to_upper() + \"!\"", &["hi"]).unwrap(),
            ["HI!"]
        );
        assert_eq!(run_with(&s, "values.len()", &["a", "b"]).unwrap(), ["2"]);
        assert_eq!(
            run_with(
                &s,
                "user[\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\"].division",
                &[]
            )
            .unwrap(),
            ["R&D"]
        );
        assert_eq!(
            run_with(&s, "user.userName.split(\"@\")", &[]).unwrap(),
            ["ada", "example.com"]
        );
        assert!(run_with(&s, "()", &["x"]).unwrap().is_empty());
        assert!(run_with(&s, "#{a: 1}", &[]).unwrap_err().contains("map"));
    }

    #[test]
    fn a_script_that_loops_forever_is_stopped_by_the_operation_limit() {
        let s = Sandbox::new(ScriptLimits {
            max_operations: 10_000,
            timeout_ms: 10_000,
            ..ScriptLimits::default()
        });
        let e = run_with(&s, "loop {}", &[]).unwrap_err();
        assert!(e.contains("10000 operations"), "{e}");
    }

    #[test]
    fn a_script_that_loops_forever_is_stopped_by_the_deadline() {
        let s = Sandbox::new(ScriptLimits {
            max_operations: 0, // unlimited: only the clock can stop it
            timeout_ms: 30,
            ..ScriptLimits::default()
        });
        let started = Instant::now();
        let e = run_with(&s, "let x = 0; loop { x += 1; }", &[]).unwrap_err();
        assert!(e.contains("longer than 30 ms"), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "stopped promptly: {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_script_that_allocates_without_bound_is_stopped() {
        let s = Sandbox::new(ScriptLimits {
            max_operations: 0,
            timeout_ms: 10_000,
            ..ScriptLimits::default()
        });
        let strings = run_with(&s, "let s = \"x\"; loop { s += s; }", &[]).unwrap_err();
        assert!(strings.contains("larger than allowed"), "{strings}");
        let arrays = run_with(&s, "let a = []; loop { a.push(1); }", &[]).unwrap_err();
        assert!(arrays.contains("larger than allowed"), "{arrays}");
        let deep = run_with(&s, "fn f(n) { f(n + 1) } f(0)", &[]).unwrap_err();
        assert!(deep.contains("deeper than"), "{deep}");
    }

    #[test]
    fn scripts_have_no_eval_and_errors_do_not_quote_data() {
        let s = Sandbox::default();
        assert!(s.compile("eval(\"1\")").is_err());
        let e = run_with(&s, "throw value", &["secret-name"]).unwrap_err();
        assert!(!e.contains("secret-name"), "{e}");
        assert!(s
            .compile("let = ;")
            .unwrap_err()
            .to_string()
            .contains("compile"));
    }
}
