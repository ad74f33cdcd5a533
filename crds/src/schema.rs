//! Schema helpers for fields whose full OpenAPI schema would bloat the CRD.

use schemars::{Schema, SchemaGenerator, json_schema};

/// An object the API server stores as given (a Job template): checked in Rust by
/// `validate()`, not by the CRD schema, which keeps the CRD small.
pub fn preserve_unknown_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}
