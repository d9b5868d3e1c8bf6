//! The Lambda function Amazon Connect invokes (from the contact flow), and EventBridge
//! invokes with the instance's contact events (`DISCONNECTED`, recorded as `CallEnded`). The settings are read once and the clients
//! built once, at cold start; every invocation is one turn of [`connect_triage::app::App`],
//! exactly as `triage invoke` runs it.
//!
//! Settings (environment, read by [`Settings::from_env`]): `TRIAGE_TABLE` (default
//! `triage-events`) or `TRIAGE_STORE` (`dynamodb:TABLE` / `file:PATH`),
//! `TRIAGE_CALLER_HASH_KEY`, and the standard AWS ones. Logs: lambda_runtime's tracing
//! subscriber (JSON when the function's log format is JSON); they never hold callers'
//! numbers or answers.

/// mimalloc: fewer, cheaper allocations per turn than glibc's allocator (see benches/turn_cost.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use connect_triage::app::App;
use connect_triage::{store, Settings};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::value::RawValue;

// One thread: a Lambda container serves one invocation at a time, and the multi-thread
// runtime spent a quarter of each invocation's CPU waking worker threads (futexes) and let
// the Runtime API connection miss the pool (a new TCP connection every ~18 invocations).
// Measured with `cargo bench --bench lambda_turn` (README, Performance).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let settings = Settings::from_env()?;
    let spec = settings.lambda_store();
    let (store, catalog) = store::open_with_catalog(&spec, &settings.dynamo_options()).await?;
    let app = App::new(store)
        .with_settings(&settings)
        .with_catalog(catalog, settings.questionnaire_refresh)
        .with_warm_histories(settings.warm_calls);
    tracing::info!(store = %spec, "ready");
    let app = &app;
    // The payload stays raw JSON: `App::handle_any` reads a ContactFlowEvent in one
    // borrowing pass (or, failing that, a Connect contact event from EventBridge) and checks
    // it exactly as `triage invoke` does.
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Box<RawValue>>| async move {
            app.handle_any(event.payload.get().as_bytes())
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "invocation not served; nothing was written");
                    Error::from(e)
                })
        },
    ))
    .await
}
