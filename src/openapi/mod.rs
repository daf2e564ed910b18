//! Each service's OpenAPI 3.1 document, `GET /openapi.json`, and a page that shows it
//! to a person, `GET /docs`; both answer without a token and work offline (the page is
//! embedded in the binary and loads nothing from anywhere else).
//!
//! A service's document is its own `Api` (built by utoipa from its handlers and
//! types) and what every service shares, added here by [`document`]: the bearer token,
//! stated on each of the service's own routes with the `401` and `408` every one of
//! them can answer; the public routes; and the error body. A route's refusals are
//! declared as the codes it can answer ([`refusals!`](crate::openapi::refusals)): each
//! status gets one response whose `error` is one of those codes of that status.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use utoipa::OpenApi;
use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder, Object, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, Response, ResponseBuilder};

use crate::error::{ErrorBody, ErrorCode, get};
use crate::health;
use crate::service::Service;

/// The page of `GET /docs`.
const DOCS_HTML: &str = include_str!("docs.html");
/// The paths of the documents.
const OPENAPI_JSON: &str = "/openapi.json";
const DOCS: &str = "/docs";
/// The name of the bearer scheme in the documents.
const BEARER: &str = "bearer";

/// A service's document, as the JSON `GET /openapi.json` answers, and the paths whose
/// `GET` it states needs no token (what the token check lets through).
#[derive(Debug, Clone)]
pub struct Document {
    json: web::Bytes,
    public: Arc<[String]>,
}

impl Document {
    pub fn new(service: Service, own: utoipa::openapi::OpenApi) -> Self {
        let document = document(service, own);
        let public = document
            .paths
            .paths
            .iter()
            .filter(|(_, item)| item.get.as_ref().is_some_and(|get| get.security.is_none()))
            .map(|(path, _)| path.clone())
            .collect();
        let json = serde_json::to_vec(&document).unwrap_or_default();
        Self {
            json: json.into(),
            public,
        }
    }

    /// Whether `GET path` is answered without a token.
    pub fn is_public(&self, path: &str) -> bool {
        self.public.iter().any(|p| p == path)
    }
}

/// The whole document of `service`: its own routes, guarded by the token, and the
/// public ones every service has.
fn document(service: Service, mut own: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    guard(&mut own);
    own.merge(PublicRoutes::openapi());
    own.info.title = format!("penguin {service}");
    own.info.version = env!("CARGO_PKG_VERSION").to_string();
    let components = own.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "`Authorization: Bearer <SERVICE_TOKEN>`, on every route but the public ones; \
                     missing or wrong, `401 unauthorized`, known route or not",
                ))
                .build(),
        ),
    );
    own
}

/// States the token on every operation of `api` but those tagged `public` (pedidos'
/// status page), with what the token check and the request timeout can answer on
/// any of them.
fn guard(api: &mut utoipa::openapi::OpenApi) {
    for item in api.paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete];
        let guarded = operations.into_iter().flatten().filter(|o| {
            !o.tags
                .as_ref()
                .is_some_and(|tags| tags.iter().any(|t| t == "public"))
        });
        for operation in guarded {
            operation.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
            let guarded = responses_for(&[ErrorCode::Unauthorized, ErrorCode::RequestTimeout], None);
            for (status, response) in guarded {
                operation.responses.responses.entry(status).or_insert(response);
            }
        }
    }
}

/// The routes of every service that answer without a token.
#[derive(OpenApi)]
#[openapi(
    paths(health::health, health::ready, health::metrics, openapi_json, docs),
    components(schemas(ErrorBody, ErrorCode))
)]
struct PublicRoutes;

/// What a route can refuse, as OpenAPI responses: for each status, an error whose
/// `error` is one of `codes` with that status. The codes of `beside.0` may also come with
/// more fields beside `error` and `detail`: then the body is the schema named `beside.1`.
pub fn responses_for(
    codes: &[ErrorCode],
    beside: Option<(&[ErrorCode], &str)>,
) -> BTreeMap<String, RefOr<Response>> {
    let (rich, rich_schema) = beside.unwrap_or((&[], "Error"));
    let mut statuses: Vec<StatusCode> = codes.iter().chain(rich).map(|c| c.status()).collect();
    statuses.sort();
    statuses.dedup();
    let of = |status: StatusCode, codes: &[ErrorCode]| -> Vec<ErrorCode> {
        let mut same: Vec<ErrorCode> = Vec::new();
        for code in codes.iter().filter(|c| c.status() == status) {
            if !same.contains(code) {
                same.push(*code);
            }
        }
        same
    };
    statuses
        .into_iter()
        .map(|status| {
            let plain = of(status, codes);
            let rich = of(status, rich);
            let schema: Schema = match (plain.is_empty(), rich.is_empty()) {
                (_, true) => error_schema(&plain, "Error"),
                (true, false) => error_schema(&rich, rich_schema),
                (false, false) => AnyOfBuilder::new()
                    .item(error_schema(&rich, rich_schema))
                    .item(error_schema(&plain, "Error"))
                    .build()
                    .into(),
            };
            let mut listed: Vec<&str> = plain.iter().chain(&rich).map(|c| c.as_str()).collect();
            listed.sort();
            listed.dedup();
            let listed: Vec<String> = listed.iter().map(|c| format!("`{c}`")).collect();
            let mut response = ResponseBuilder::new().description(listed.join(", ")).content(
                "application/json",
                ContentBuilder::new().schema(Some(schema)).build(),
            );
            if status == StatusCode::SERVICE_UNAVAILABLE {
                response = response.header(
                    "Retry-After",
                    HeaderBuilder::new()
                        .schema(Some(
                            ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)),
                        ))
                        .description(Some("seconds to wait before trying again"))
                        .build(),
                );
            }
            if status == StatusCode::UNAUTHORIZED {
                response = response.header(
                    "WWW-Authenticate",
                    HeaderBuilder::new()
                        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                        .description(Some("`Bearer`"))
                        .build(),
                );
            }
            (status.as_u16().to_string(), response.build().into())
        })
        .collect()
}

/// The schema `name` (an error body), its `error` one of `codes`.
fn error_schema(codes: &[ErrorCode], name: &str) -> Schema {
    AllOfBuilder::new()
        .item(Ref::from_schema_name(name))
        .item(
            ObjectBuilder::new().property(
                "error",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(codes.iter().map(|c| c.as_str()))),
            ),
        )
        .build()
        .into()
}

/// `schema`, or `null`: an optional field, where `null` means absent.
pub fn nullable(mut schema: Object) -> Object {
    let mut types = match schema.schema_type {
        SchemaType::Type(one) => vec![one],
        SchemaType::Array(several) => several,
        SchemaType::AnyValue => return schema,
    };
    if !types.contains(&Type::Null) {
        types.push(Type::Null);
    }
    schema.schema_type = SchemaType::Array(types);
    schema
}

/// Declares `$name`, the refusals of a route for its `#[utoipa::path]`: groups of the
/// codes it can answer, each a `&[ErrorCode]`. The token's `401` and the timeout's `408`
/// are added to every guarded route by [`document`].
macro_rules! refusals {
    ($(#[$meta:meta])* $name:ident: $($codes:expr),+ $(,)?) => {
        $(#[$meta])*
        pub struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<
                String,
                utoipa::openapi::RefOr<utoipa::openapi::Response>,
            > {
                let codes: &[&[$crate::error::ErrorCode]] = &[$($codes),+];
                $crate::openapi::responses_for(&codes.concat(), None)
            }
        }
    };
}
pub(crate) use refusals;

/// The service's OpenAPI 3.1 document: every route, parameter, body, limit, status and
/// error code.
#[utoipa::path(
    get,
    path = OPENAPI_JSON,
    tag = "public",
    responses((status = 200, description = "this document", content_type = "application/json", body = Object))
)]
async fn openapi_json(document: web::Data<Document>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document.json.clone())
}

/// This document as a page for a person: routes, parameters, bodies, statuses and error
/// codes, rendered in the browser from `/openapi.json` with nothing fetched from elsewhere.
#[utoipa::path(
    get,
    path = DOCS,
    tag = "public",
    responses((status = 200, description = "an HTML page", content_type = "text/html", body = String))
)]
async fn docs() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        // The page may talk to this service only, and loads no code or style from anywhere.
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; connect-src 'self'; script-src 'unsafe-inline'; \
             style-src 'unsafe-inline'; img-src data:",
        ))
        .body(DOCS_HTML)
}

/// The route table of the documents; the app must hold a `web::Data<Document>`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get(OPENAPI_JSON, openapi_json))
        .service(get(DOCS, docs));
}
