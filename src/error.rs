//! The crate-wide API error and its JSON shape, `{"error": code, "detail": sentence}`.
//!
//! Every handler returns `Result<HttpResponse, ApiError>`; body failures (bad JSON,
//! wrong content type, oversized bodies) come as `ApiError`s from `json::Json`, bad
//! path or query parameters are turned into the same shape by [`path_config`] and
//! [`query_config`], and unknown routes or methods by [`not_found`] and
//! [`method_not_allowed`].

use actix_web::error::{PathError, QueryPayloadError};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;

/// The largest request body any service accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What a client can be told went wrong. Each variant names its status code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: malformed JSON, wrong types, unknown fields, bad ids.
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    /// 401: missing or wrong bearer token.
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// 404: the resource does not exist.
    #[error("{detail}")]
    NotFound { code: &'static str, detail: String },
    /// 405: the route exists but not with this method; `allow` lists the methods it takes.
    #[error("method not allowed; this route accepts {allow}")]
    MethodNotAllowed { allow: &'static str },
    /// 408: the request took longer than the server allows (a body that never ends).
    #[error("the request took longer than {0} s")]
    RequestTimeout(u64),
    /// 409: a conflict with the current state (not enough stock, ...).
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// 413: the body is larger than [`MAX_BODY_BYTES`].
    #[error("the request body is larger than {MAX_BODY_BYTES} bytes")]
    PayloadTooLarge,
    /// 415: a body that is not declared as `application/json`.
    #[error("the request body must be JSON, sent with Content-Type: application/json")]
    UnsupportedMediaType,
    /// 422: well-formed input with invalid values (negative price, zero quantity).
    #[error("{detail}")]
    Unprocessable { code: &'static str, detail: String },
    /// 503: a peer is unavailable or its circuit is open; `retry_after` in seconds.
    #[error("{detail}")]
    Unavailable {
        code: &'static str,
        detail: String,
        retry_after: u64,
    },
    /// 500: a bug or a broken database. The cause is logged, never shown.
    #[error("internal error")]
    Internal(String),
}

/// The body of every error response.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    pub error: &'a str,
    pub detail: String,
}

impl ApiError {
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            detail: detail.into(),
        }
    }

    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::NotFound {
            code,
            detail: detail.into(),
        }
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            detail: detail.into(),
        }
    }

    pub fn unprocessable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Unprocessable {
            code,
            detail: detail.into(),
        }
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    /// The stable, machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::NotFound { code, .. }
            | Self::Conflict { code, .. }
            | Self::Unprocessable { code, .. }
            | Self::Unavailable { code, .. } => code,
            Self::Unauthorized => "unauthorized",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::RequestTimeout(_) => "request_timeout",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Internal(_) => "internal_error",
        }
    }

    /// The body a client sees: the code and a sentence, never an internal cause.
    pub fn body(&self) -> ErrorBody<'static> {
        ErrorBody {
            error: self.code(),
            detail: self.to_string(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(cause) = self {
            log::error!("internal error: {cause}");
        }
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::Unauthorized => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            Self::MethodNotAllowed { allow } => {
                response.insert_header((header::ALLOW, *allow));
            }
            Self::Unavailable { retry_after, .. } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            _ => {}
        }
        response.json(self.body())
    }
}

impl From<r2d2::Error> for ApiError {
    fn from(e: r2d2::Error) -> Self {
        Self::Unavailable {
            code: "database_unavailable",
            detail: "the database is busy; try again".into(),
            retry_after: 1,
        }
        .logged(&e)
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        Self::internal(format!("database: {e}"))
    }
}

impl ApiError {
    fn logged(self, cause: &dyn std::fmt::Display) -> Self {
        log::warn!("{}: {cause}", self.code());
        self
    }
}

/// Path parameters (ids) that do not parse are a `400`.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err: PathError, _req| {
        let PathError::Deserialize(e) = err else {
            return ApiError::bad_request("invalid_path", err.to_string()).into();
        };
        ApiError::bad_request(
            "invalid_id",
            format!("the id in the path must be a positive integer: {e}"),
        )
        .into()
    })
}

/// Query strings that do not parse are a `400`.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req| {
        ApiError::bad_request("invalid_query", format!("the query string is invalid: {err}")).into()
    })
}

/// The default service of every app: an unknown route.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(
        "route_not_found",
        format!("no route for {} {}", req.method(), req.path()),
    ))
}

/// The default service of a resource: the route exists, the method does not.
pub fn method_not_allowed(
    allow: &'static str,
) -> impl Fn() -> std::future::Ready<Result<HttpResponse, ApiError>> + Clone {
    move || std::future::ready(Err(ApiError::MethodNotAllowed { allow }))
}
