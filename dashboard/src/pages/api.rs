//! The JSON API: the overview's selection (`/api/v1/slos`) and one SLO with its
//! history (`/api/v1/slos/{namespace}/{name}`).

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::detail::{DetailQuery, find, parse_range};
use super::overview::{OverviewQuery, select};
use crate::read::{ReadModel, SloView};
use crate::server::{Shared, json_error};

/// `GET /api/v1/slos`, serialized once per snapshot version and query.
pub(crate) async fn list<M: ReadModel>(
    State(app): State<Shared<M>>,
    uri: Uri,
    Query(q): Query<OverviewQuery>,
) -> Response {
    let snap = app.model.snapshot().await;
    let key = uri.to_string();
    if let Some(hit) = app.pages.get(&key, snap.version) {
        return hit.response();
    }
    let items: Vec<&SloView> = select(&snap.slos, &q);
    let body = serde_json::json!({
        "items": items,
        "total": snap.slos.len(),
        "warnings": snap.warnings,
    });
    match serde_json::to_string(&body) {
        Ok(json) => app
            .pages
            .put(key, snap.version, json, "application/json")
            .response(),
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `GET /api/v1/slos/{namespace}/{name}`: the SLO and its history over the range.
pub(crate) async fn one<M: ReadModel>(
    State(app): State<Shared<M>>,
    Path((namespace, name)): Path<(String, String)>,
    Query(q): Query<DetailQuery>,
) -> Response {
    let range = match parse_range(&q) {
        Ok(r) => r,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let Some(slo) = find(&app, &namespace, &name).await else {
        return json_error(
            StatusCode::NOT_FOUND,
            format!("no ServiceLevelObjective {namespace}/{name}"),
        );
    };
    let history = match app.model.history(&namespace, &name, range).await {
        Ok(points) => serde_json::json!({ "range": range, "points": points }),
        Err(e) => serde_json::json!({ "range": range, "error": e.to_string() }),
    };
    axum::Json(serde_json::json!({ "slo": slo, "history": history })).into_response()
}
