//! The projector function: Lambda's DynamoDB Streams event source mapping hands it batches
//! of the events table's stream records; it keeps the read model (`TABLE-model`) in step and
//! answers with the records it could not project (`ReportBatchItemFailures`), see
//! [`connect_triage::read::stream`].
//!
//! Settings: as the `bootstrap` function's (`TRIAGE_TABLE` or `TRIAGE_STORE`,
//! `TRIAGE_DAY_SHARDS`, the standard AWS ones), read once at cold start. Logs: one line per
//! batch (records, calls, changes, failures), never a caller's number or answers.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use connect_triage::read::{open_reader, stream};
use connect_triage::Settings;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let settings = Settings::from_env()?;
    let spec = settings.lambda_store();
    let reader = open_reader(&spec, &settings.dynamo_options()).await?;
    // Calls asked with a published questionnaire version fold with that version: read
    // from the store's catalog the first time this container meets it.
    if let Some(catalog) = reader.catalog() {
        connect_triage::questionnaires::read_versions_from(catalog.clone());
    }
    let model = reader
        .model_as_is()
        .ok_or_else(|| Error::from(format!("{spec} has no read model")))?;
    let shards = reader.model_shards();
    tracing::info!(store = %spec, model = %model.describe(), "ready");
    let (events, model) = (&reader.events, &model);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<StreamEvent>| async move {
            let report =
                stream::handle_batch(events.clone(), model.clone(), shards, &event.payload)
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "batch not projected");
                        Error::from(e)
                    })?;
            tracing::info!(
                records = report.records,
                skipped = report.skipped,
                calls = report.calls,
                changed = report.changed,
                failures = report.failures.len(),
                "batch projected"
            );
            Ok::<DynamoDbEventResponse, Error>(report.response())
        },
    ))
    .await
}
