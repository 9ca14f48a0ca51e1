//! Ended spans as OTLP protobuf: one `ExportTraceServiceRequest` per batch, under a
//! resource naming the service and the gateway's instrumentation scope.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind as OtlpKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, SpanFlags, Status};
use prost::Message;

use super::span::{AttrValue, Span, SpanKind, SpanStatus};

/// The instrumentation scope every span is reported under.
pub(crate) const SCOPE_NAME: &str = "apollo-gateway";

fn key_value(key: &str, value: &AttrValue) -> KeyValue {
    let value = match value {
        AttrValue::Str(s) => any_value::Value::StringValue(s.clone()),
        AttrValue::Int(i) => any_value::Value::IntValue(*i),
    };
    KeyValue { key: key.to_string(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn otlp_span(span: &Span) -> opentelemetry_proto::tonic::trace::v1::Span {
    let kind = match span.kind {
        SpanKind::Server => OtlpKind::Server,
        SpanKind::Client => OtlpKind::Client,
    };
    let status = match &span.status {
        SpanStatus::Ok => Status { code: StatusCode::Ok as i32, message: String::new() },
        SpanStatus::Error(message) => Status { code: StatusCode::Error as i32, message: message.clone() },
    };
    // Low byte: the W3C trace flags. Bits 8/9: whether the parent is remote is known,
    // and is it (only a server span's parent, the caller's span, is).
    let mut flags = u32::from(span.flags) | SpanFlags::ContextHasIsRemoteMask as u32;
    if span.parent_is_remote {
        flags |= SpanFlags::ContextIsRemoteMask as u32;
    }
    opentelemetry_proto::tonic::trace::v1::Span {
        trace_id: span.trace_id.to_vec(),
        span_id: span.span_id.to_vec(),
        trace_state: span.tracestate.clone().unwrap_or_default(),
        parent_span_id: span.parent_span_id.map(|p| p.to_vec()).unwrap_or_default(),
        flags,
        name: span.name.clone(),
        kind: kind as i32,
        start_time_unix_nano: span.start_unix_nanos,
        end_time_unix_nano: span.end_unix_nanos,
        attributes: span.attributes.iter().map(|(k, v)| key_value(k, v)).collect(),
        status: Some(status),
        ..Default::default()
    }
}

/// The export request for one batch.
pub(crate) fn export_request(service_name: &str, spans: &[Span]) -> ExportTraceServiceRequest {
    let resource =
        Resource { attributes: vec![key_value("service.name", &AttrValue::from(service_name))], ..Default::default() };
    let scope = InstrumentationScope {
        name: SCOPE_NAME.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource),
            scope_spans: vec![ScopeSpans {
                scope: Some(scope),
                spans: spans.iter().map(otlp_span).collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The request body of `POST <endpoint>` with `Content-Type: application/x-protobuf`.
pub(crate) fn encode(service_name: &str, spans: &[Span]) -> Vec<u8> {
    export_request(service_name, spans).encode_to_vec()
}
