//! Kinesis Video Streams, through AWS's SDK crates: `GetDataEndpoint` (`APIName`
//! `GET_MEDIA`) on the control plane, then `GetMedia` on the endpoint it returns, from the
//! fragment after the call's start fragment (`StartSelectorType` `FRAGMENT_NUMBER`,
//! `AfterFragmentNumber`: the selector AWS's own Connect consumers use).
//! - https://docs.aws.amazon.com/kinesisvideostreams/latest/dg/API_GetDataEndpoint.html:
//!   "The returned endpoint does not have the API name appended" (the SDK adds `/getMedia`).
//! - https://docs.aws.amazon.com/kinesisvideostreams/latest/dg/API_dataplane_GetMedia.html
//!   and .../API_dataplane_StartSelector.html.
//!
//! Both are signed with SigV4 for the service `kinesisvideo` (the SDK models'
//! `endpointPrefix`, no other signing name), in the region of the stream's ARN. Credentials
//! and the control-plane endpoint come from the standard AWS settings: the credentials
//! chain, and `AWS_ENDPOINT_URL_KINESIS_VIDEO` (this service's own) or `AWS_ENDPOINT_URL`
//! (every service's: a DynamoDB Local endpoint set for the store would catch these calls
//! too, so set the service's own to point them elsewhere). The data endpoint is the one
//! `GetDataEndpoint` returns.

use super::AudioError;
use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_kinesisvideo::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kinesisvideo::types::ApiName;
use aws_sdk_kinesisvideomedia::types::{StartSelector, StartSelectorType};
use aws_smithy_types::byte_stream::ByteStream;
use std::time::Duration;

/// TCP + TLS connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// One attempt of a call, until the response's headers (GetMedia's body is read after, under
/// the fetch's own idle limit).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);

/// `arn:PARTITION:kinesisvideo:REGION:ACCOUNT:stream/NAME/CREATION`: the region.
pub fn region_of(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    let (Some("arn"), Some(_), Some("kinesisvideo"), Some(region)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    (!region.is_empty()).then_some(region)
}

/// The SDK configuration for the stream's region: the standard settings, rustls on ring
/// (as the DynamoDB client, src/store/dynamodb/client.rs), the limits above, and no
/// stalled-stream protection (GetMedia's body is idle whenever the call is silent and
/// nobody speaks; the fetch has its own idle limit).
async fn sdk_config(region: &str) -> aws_config::SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .region(Region::new(region.to_string()))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .load()
        .await
}

/// GetMedia's answer: the stream's bytes, and its content type (logged, never checked:
/// what Connect's streams say is not documented).
pub struct Media {
    pub body: ByteStream,
    pub content_type: Option<String>,
    pub endpoint: String,
}

/// GetDataEndpoint, then GetMedia from the fragment after `after_fragment`.
pub async fn get_media(stream_arn: &str, after_fragment: &str) -> Result<Media, AudioError> {
    let region = region_of(stream_arn).ok_or_else(|| {
        AudioError::Kvs(format!(
            "the recorded stream ARN {stream_arn} names no region (arn:aws:kinesisvideo:REGION:ACCOUNT:stream/NAME/N)"
        ))
    })?;
    let sdk = sdk_config(region).await;
    let control = aws_sdk_kinesisvideo::Client::new(&sdk);
    let endpoint = control
        .get_data_endpoint()
        .api_name(ApiName::GetMedia)
        .stream_arn(stream_arn)
        .send()
        .await
        .map_err(|e| describe("GetDataEndpoint", stream_arn, region, e))?
        .data_endpoint
        .filter(|e| !e.trim().is_empty())
        .ok_or_else(|| {
            AudioError::Kvs(format!(
                "Kinesis Video Streams GetDataEndpoint gave no endpoint for {stream_arn}"
            ))
        })?;
    tracing::info!(%endpoint, "GetMedia endpoint");
    let media = aws_sdk_kinesisvideomedia::Client::from_conf(
        aws_sdk_kinesisvideomedia::config::Builder::from(&sdk)
            .endpoint_url(endpoint.trim())
            .build(),
    );
    let selector = StartSelector::builder()
        .start_selector_type(StartSelectorType::FragmentNumber)
        .after_fragment_number(after_fragment)
        .build()
        .map_err(|e| AudioError::Kvs(format!("the GetMedia start selector: {e}")))?;
    let out = media
        .get_media()
        .stream_arn(stream_arn)
        .start_selector(selector)
        .send()
        .await
        .map_err(|e| describe("GetMedia", stream_arn, region, e))?;
    Ok(Media {
        content_type: out.content_type,
        body: out.payload,
        endpoint,
    })
}

/// An SDK error as one line that says what failed and what to do.
fn describe<E, R>(op: &str, arn: &str, region: &str, err: SdkError<E, R>) -> AudioError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let what = format!("Kinesis Video Streams {op} for {arn}");
    AudioError::Kvs(match &err {
        SdkError::ServiceError(e) => {
            let e = e.err();
            let code = e.code().unwrap_or("UnknownError");
            let message = e.message().unwrap_or("no message");
            let todo = match code {
                "ResourceNotFoundException" => format!(
                    "no such stream in {region}: it was deleted, or its data is past AudioRetentionHours; check it with `aws kinesisvideo describe-stream --stream-arn {arn}`"
                ),
                "NotAuthorizedException" | "AccessDeniedException" => "not allowed: use credentials with the stack's analysts' policy (kinesisvideo:GetDataEndpoint, kinesisvideo:GetMedia, and kms:Decrypt through Kinesis Video)".to_string(),
                "ClientLimitExceededException" | "ConnectionLimitExceededException" => "throttled (GetMedia takes 5 calls a second per stream): try again in a moment".to_string(),
                "InvalidArgumentException" => "refused the request: the recorded start fragment may be older than the stream's retention".to_string(),
                _ => "refused".to_string(),
            };
            format!("{what}: {todo} ({code}: {message})")
        }
        SdkError::DispatchFailure(_) => format!(
            "{what}: could not reach the endpoint: check the network, and AWS_ENDPOINT_URL_KINESIS_VIDEO or AWS_ENDPOINT_URL if set ({})",
            DisplayErrorContext(&err)
        ),
        SdkError::TimeoutError(_) => format!(
            "{what} timed out (connect {CONNECT_TIMEOUT:?}, attempt {ATTEMPT_TIMEOUT:?}): try again"
        ),
        _ => format!("{what} failed: {}", DisplayErrorContext(&err)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_is_the_arns() {
        assert_eq!(
            region_of("arn:aws:kinesisvideo:eu-west-1:123456789012:stream/p-connect-x/1"),
            Some("eu-west-1")
        );
        assert_eq!(region_of("arn:aws:kinesisvideo::1:stream/x/1"), None);
        assert_eq!(region_of("arn:aws:s3:::bucket"), None);
        assert_eq!(region_of(""), None);
    }
}
