//! The crate-wide API error and its JSON shape, `{"error": code, "detail": sentence}`.
//!
//! Every code a client can see is an [`ErrorCode`], and its HTTP status is decided
//! here ([`ErrorCode::status`]); the README's table of codes is checked against this
//! list by a test. Handlers return `Result<HttpResponse, ApiError>`; each service's
//! domain errors become `ApiError`s at the edge. Body failures (bad JSON, wrong content
//! type, oversized bodies) come from `json::Json`, bad path or query parameters are
//! turned into the same shape by [`path_config`] and [`query_config`], and unknown
//! routes by [`not_found`], methods a route does not have by the resources that
//! [`resource`], [`get`] and [`post`] make.

use actix_web::error::{PathError, QueryPayloadError};
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder, ResponseError, web};
use serde::Serialize;

/// How long a client should wait after a full disk before trying again.
const STORAGE_FULL_RETRY_SECS: u64 = 30;

/// The largest request body any service accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The stable, machine-readable code of every error penguin answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumIter, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum ErrorCode {
    // 400: malformed JSON, wrong types, unknown fields, bad ids.
    MalformedJson,
    InvalidBody,
    InvalidId,
    InvalidQuery,
    // 401
    Unauthorized,
    // 402
    PaymentRejected,
    // 404
    ProductoNotFound,
    StockNotFound,
    ReservaNotFound,
    PedidoNotFound,
    PagoNotFound,
    RouteNotFound,
    // 405
    MethodNotAllowed,
    // 408
    RequestTimeout,
    // 409: a conflict with the current state.
    InsufficientStock,
    ReservaNotActive,
    ReservaConfirmed,
    ReservaExpired,
    ReservaReleased,
    ReservaInLote,
    ReferenciaInUse,
    ReferenciaVoid,
    IdempotencyInProgress,
    /// A change asked of a service restored from an older copy than its caller has seen.
    StaleCopy,
    // 413
    PayloadTooLarge,
    // 415
    UnsupportedMediaType,
    // 422: well-formed input with invalid values.
    InvalidValue,
    InvalidLimit,
    InvalidKey,
    IdempotencyKeyReused,
    TotalTooLarge,
    // 500: a bug or a broken database.
    InternalError,
    // 502
    PeerError,
    // 503
    PeerUnavailable,
    Interrupted,
    DatabaseUnavailable,
    StorageFull,
    NotReady,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            MalformedJson | InvalidBody | InvalidId | InvalidQuery => StatusCode::BAD_REQUEST,
            Unauthorized => StatusCode::UNAUTHORIZED,
            PaymentRejected => StatusCode::PAYMENT_REQUIRED,
            ProductoNotFound | StockNotFound | ReservaNotFound | PedidoNotFound | PagoNotFound
            | RouteNotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            InsufficientStock
            | ReservaNotActive
            | ReservaConfirmed
            | ReservaExpired
            | ReservaReleased
            | ReservaInLote
            | ReferenciaInUse
            | ReferenciaVoid
            | IdempotencyInProgress
            | StaleCopy => StatusCode::CONFLICT,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            InvalidValue | InvalidLimit | InvalidKey | IdempotencyKeyReused | TotalTooLarge => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            PeerError => StatusCode::BAD_GATEWAY,
            PeerUnavailable | Interrupted | DatabaseUnavailable | StorageFull | NotReady => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// In the OpenAPI documents: a string, one of the codes.
impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use strum::IntoEnumIterator;
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .enum_values(Some(Self::iter().map(Self::as_str)))
            .into()
    }
}

impl utoipa::ToSchema for ErrorCode {}

/// What a client can be told went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request cannot be done as it is; its code decides the status.
    #[error("{detail}")]
    Refused { code: ErrorCode, detail: String },
    /// 405: the route exists but not with this method; `allow` lists the methods it takes.
    #[error("method not allowed; this route accepts {allow}")]
    MethodNotAllowed { allow: &'static str },
    /// 503: a peer or the database cannot answer now; `retry_after` in seconds.
    #[error("{detail}")]
    Unavailable {
        code: ErrorCode,
        detail: String,
        retry_after: u64,
    },
    /// 500: a bug or a broken database. The cause is logged, never shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody<'a> {
    /// What went wrong, as a stable code.
    #[schema(value_type = ErrorCode)]
    pub error: &'a str,
    /// What went wrong, in a sentence for a person.
    pub detail: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::Refused {
            code,
            detail: detail.into(),
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(ErrorCode::Unauthorized, "missing or invalid bearer token")
    }

    pub fn payload_too_large() -> Self {
        Self::new(
            ErrorCode::PayloadTooLarge,
            format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            ErrorCode::UnsupportedMediaType,
            "the request body must be JSON, sent with Content-Type: application/json",
        )
    }

    /// 503: the disk of the database is full; the write was rolled back.
    pub fn storage_full() -> Self {
        Self::Unavailable {
            code: ErrorCode::StorageFull,
            detail: "the database's disk is full; nothing was changed, try again later".into(),
            retry_after: STORAGE_FULL_RETRY_SECS,
        }
    }

    /// 503: too many writes are waiting for the database; this one was not queued.
    pub fn write_queue_full() -> Self {
        Self::Unavailable {
            code: ErrorCode::DatabaseUnavailable,
            detail: "too many writes are waiting for the database; nothing was changed, try again".into(),
            retry_after: 1,
        }
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }

    /// The stable, machine-readable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Refused { code, .. } | Self::Unavailable { code, .. } => *code,
            Self::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            Self::Internal(_) => ErrorCode::InternalError,
        }
    }

    /// What went wrong, for the logs and operators: an internal error's whole cause chain.
    pub fn cause(&self) -> String {
        match self {
            Self::Internal(cause) => format!("{cause:#}"),
            other => other.to_string(),
        }
    }

    /// The body a client sees: the code and a sentence, never an internal cause.
    pub fn body(&self) -> ErrorBody<'static> {
        ErrorBody {
            error: self.code().as_str(),
            detail: self.to_string(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code().status()
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(cause) = self {
            // The whole chain, once.
            log::error!("internal error: {cause:#}");
        }
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::MethodNotAllowed { allow } => {
                response.insert_header((header::ALLOW, *allow));
            }
            Self::Unavailable { retry_after, .. } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            _ if self.code() == ErrorCode::Unauthorized => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            _ => {}
        }
        response.json(self.body())
    }
}

impl From<r2d2::Error> for ApiError {
    fn from(e: r2d2::Error) -> Self {
        log::warn!("database_unavailable: {e}");
        Self::Unavailable {
            code: ErrorCode::DatabaseUnavailable,
            detail: "the database is busy; try again".into(),
            retry_after: 1,
        }
    }
}

/// Whether SQLite failed for a full disk; says so in the log at error level, since
/// no request can fix it.
pub fn disk_full(e: &rusqlite::Error) -> bool {
    let full = e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull);
    if full {
        log::error!("database: {e}");
    }
    full
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        if disk_full(&e) {
            return Self::storage_full();
        }
        Self::internal(anyhow::Error::new(e).context("database"))
    }
}

/// Path parameters (ids) that do not parse are a `400`.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err: PathError, _req| {
        let PathError::Deserialize(e) = err else {
            return ApiError::new(ErrorCode::InvalidId, err.to_string()).into();
        };
        ApiError::new(
            ErrorCode::InvalidId,
            format!("the id in the path must be a positive integer: {e}"),
        )
        .into()
    })
}

/// Query strings that do not parse are a `400`.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req| {
        ApiError::new(
            ErrorCode::InvalidQuery,
            format!("the query string is invalid: {err}"),
        )
        .into()
    })
}

/// The default service of every app: an unknown route.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        ErrorCode::RouteNotFound,
        format!("no route for {} {}", req.method(), req.path()),
    ))
}

/// The default service of a resource: the route exists, the method does not.
fn method_not_allowed(
    allow: &'static str,
) -> impl Fn() -> std::future::Ready<Result<HttpResponse, ApiError>> + Clone {
    move || std::future::ready(Err(ApiError::MethodNotAllowed { allow }))
}

/// A route table's resource at `path` whose methods are `allow`, spelt as the `Allow`
/// header lists them (`"GET, POST"`): any other method is answered `405` with that
/// header. Its routes are added with `.route(...)`.
pub fn resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed(allow)))
}

/// A handler a route can call: what actix-web's `Route::to` takes.
pub trait Routable<Args>: Handler<Args, Output: Responder + 'static> {}

impl<F: Handler<Args, Output: Responder + 'static>, Args> Routable<Args> for F {}

/// A resource at `path` that answers `GET` with `handler`, and `405` to any other method.
pub fn get<Args: FromRequest + 'static>(path: &str, handler: impl Routable<Args>) -> Resource {
    resource(path, "GET").route(web::get().to(handler))
}

/// A resource at `path` that answers `POST` with `handler`, and `405` to any other method.
pub fn post<Args: FromRequest + 'static>(path: &str, handler: impl Routable<Args>) -> Resource {
    resource(path, "POST").route(web::post().to(handler))
}

#[cfg(test)]
mod tests {
    use strum::IntoEnumIterator;

    use super::*;

    #[test]
    fn every_code_but_internal_has_a_status_a_client_can_act_on() {
        for code in ErrorCode::iter() {
            let status = code.status();
            assert!(status.is_client_error() || status.is_server_error(), "{code:?}");
            if status.is_server_error() {
                assert!(
                    matches!(status.as_u16(), 502..=504) || code == ErrorCode::InternalError,
                    "{code:?} is a 5xx other than 502/503/504"
                );
            }
        }
    }
}
