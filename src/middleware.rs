//! What every request of every service goes through before its route: it is counted
//! while in flight (a draining shutdown waits for it), cut off after `REQUEST_TIMEOUT`
//! (a body that never ends holds no worker for long), logged with its method, path,
//! status and time, and answered with `Connection: close` while the process drains.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::web;

use crate::error::{ApiError, ErrorCode};
use crate::service::Service;
use crate::shutdown::InFlight;

/// What the middleware needs of its service, kept in the app's data.
#[derive(Debug, Clone)]
pub struct Context {
    pub service: Service,
    pub request_timeout: Duration,
    pub in_flight: Arc<InFlight>,
}

pub async fn around(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(context) = req.app_data::<web::Data<Context>>().cloned() else {
        return next.call(req).await;
    };
    let counted = context.in_flight.enter();
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_owned();
    let timeout = context.request_timeout;
    let mut response = actix_web::rt::time::timeout(timeout, next.call(req))
        .await
        .unwrap_or_else(|_| {
            let detail = format!("the request took longer than {} s", timeout.as_secs_f64());
            Err(ApiError::new(ErrorCode::RequestTimeout, detail).into())
        });
    if counted.draining()
        && let Ok(response) = &mut response
    {
        response
            .response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    let status = match &response {
        Ok(r) => r.status(),
        Err(e) => e.as_response_error().status_code(),
    };
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    log::info!(target: context.service.name(), "{method} {path} {} {millis:.2}ms", status.as_u16());
    response
}
