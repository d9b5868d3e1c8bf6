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
    // The App lives as long as the process.
    let app: &'static App = Box::leak(Box::new(app));
    // The Runtime API loop runs as a task of its own, not as the runtime's `block_on`
    // future: a wake-up of the `block_on` future from another task (each of the hyper
    // connection tasks' answers) makes the current-thread scheduler poll the I/O driver
    // first (an `epoll_wait` with no timeout, three an invocation), a wake-up between
    // tasks does not.
    // A timer always pending, due sooner than any a turn sets (a DynamoDB attempt's 1 s, the
    // turn's 5 s budget): tokio wakes its own I/O driver (an eventfd write, then one more
    // trip round the event loop) whenever a timer is set that is due before every pending
    // one, which was each of a turn's two timers.
    tokio::spawn(async {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
        }
    });
    let serve = tokio::spawn(lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Box<RawValue>>| async move {
            // The payload stays raw JSON: `App::handle_any` reads a ContactFlowEvent in one
            // borrowing pass (or, failing that, a Connect contact event from EventBridge)
            // and checks it exactly as `triage invoke` does.
            app.handle_any(event.payload.get().as_bytes())
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "invocation not served; nothing was written");
                    Error::from(e)
                })
        },
    )));
    serve.await?
}
