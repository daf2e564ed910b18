//! The shared bearer token: every request but the public routes (`is_public`) must carry
//! `Authorization: Bearer <SERVICE_TOKEN>`, known route or not. The check runs
//! before routing and compares in constant time.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError, web};

use crate::error::ApiError;
use crate::openapi::Document;

/// The token this service expects, kept in the app's data.
#[derive(Clone)]
pub struct ServiceToken(String);

impl ServiceToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// Whether an `Authorization` header value carries this token.
    pub fn admits(&self, authorization: &[u8]) -> bool {
        // The scheme is case-insensitive (RFC 9110); the token is not.
        let Some((scheme, presented)) = authorization.split_at_checked(7) else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case(b"Bearer ") {
            return false;
        }
        constant_time_eq::constant_time_eq(presented.trim_ascii(), self.0.as_bytes())
    }
}

/// The routes anyone may call: those the service's OpenAPI document states need no
/// token (the probes, the metrics, the documents and pedidos' status page, none of
/// which holds shop data).
fn is_public(req: &ServiceRequest) -> bool {
    req.method() == Method::GET
        && req
            .app_data::<web::Data<Document>>()
            .is_some_and(|document| document.is_public(req.path()))
}

/// Middleware: refuses with `401` any request without the right token.
pub async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let mut presented = req.headers().get_all(header::AUTHORIZATION);
    // Exactly one Authorization header: with a second one, right or wrong, it is refused.
    let only = presented.next().filter(|_| presented.next().is_none());
    let admitted = is_public(&req)
        || match (req.app_data::<web::Data<ServiceToken>>(), only) {
            (Some(token), Some(value)) => token.admits(value.as_bytes()),
            _ => false,
        };
    if admitted {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    }
    let response = ApiError::unauthorized().error_response();
    Ok(req.into_response(response).map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::ServiceToken;

    #[test]
    fn admits_only_the_exact_bearer_token() {
        let token = ServiceToken::new("penguin-secret");
        assert!(token.admits(b"Bearer penguin-secret"));
        assert!(!token.admits(b"Bearer penguin-secre"));
        assert!(!token.admits(b"Bearer penguin-secretX"));
        assert!(token.admits(b"bearer penguin-secret"));
        assert!(!token.admits(b"Bearerpenguin-secret"));
        assert!(!token.admits(b"penguin-secret"));
        assert!(!token.admits(b"Basic penguin-secret"));
        assert!(!token.admits(b""));
    }
}
