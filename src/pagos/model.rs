//! Payments as recorded and shown, and the body that asks for one.

use serde::{Deserialize, Serialize};
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorCode};
use crate::input;
use crate::money::{self, Money, MoneyInput};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, strum::EnumString, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum EstadoPago {
    Aprobado,
    Rechazado,
    /// Not a charge: the referencia was voided before any charge was made with it.
    Anulado,
    /// An approved charge whose money was given back.
    Reembolsado,
}

crate::db::stored_as_text!(EstadoPago);

/// Why pagos refuses a charge, in its own words; `ApiError` gives each its code.
#[derive(Debug, thiserror::Error)]
pub enum PagosError {
    #[error("referencia {0:?} was voided; nothing was charged")]
    Voided(String),
    #[error("referencia {referencia:?} was already charged, as pago {pago_id}")]
    AlreadyCharged { referencia: String, pago_id: i64 },
    #[error(transparent)]
    Db(#[from] rusqlite::Error),
    #[error(transparent)]
    Stale(#[from] crate::secuencia::Stale),
}

impl From<PagosError> for ApiError {
    fn from(error: PagosError) -> Self {
        let detail = error.to_string();
        let code = match error {
            PagosError::Db(e) => return ApiError::from(e),
            PagosError::Stale(stale) => return ApiError::from(stale),
            PagosError::Voided(_) => ErrorCode::ReferenciaVoid,
            PagosError::AlreadyCharged { .. } => ErrorCode::ReferenciaInUse,
        };
        ApiError::new(code, detail)
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Pago {
    pub pago_id: i64,
    pub estado: EstadoPago,
    pub monto: Money,
    pub moneda: String,
    pub medio: String,
    pub referencia: Option<String>,
    /// The number of the change this answer reports (see `secuencia`): asked with
    /// `?visto=`, the payment's last change, or the last change made here if this
    /// request changed nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secuencia: Option<i64>,
}

/// The body of `POST /pagar`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Charge)]
pub struct PagarBody {
    #[schema(schema_with = money::positive_schema)]
    monto: MoneyInput,
    #[schema(schema_with = input::schema::text)]
    moneda: String,
    #[schema(schema_with = input::schema::text)]
    medio: String,
    #[serde(default)]
    #[schema(schema_with = referencia)]
    referencia: Option<String>,
    /// `true` has the payment recorded as `rechazado` (the controlled failure).
    #[serde(default)]
    fail: Option<bool>,
}

fn referencia() -> utoipa::openapi::schema::Object {
    let mut schema = input::schema::optional_text();
    schema.description = Some(
        "charged at most once: the same charge again answers the first payment; another \
         charge with it is 409 `referencia_in_use`, and one voided, 409 `referencia_void`"
            .into(),
    );
    schema
}

/// The body of `POST /anular` and `POST /reembolsar`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Referencia)]
pub struct ReferenciaBody {
    #[schema(schema_with = input::schema::text)]
    pub referencia: String,
}

/// The `{referencia}` of `GET /pagos/referencia/{referencia}`, as sent.
#[derive(Debug, Deserialize)]
pub struct ReferenciaPath {
    pub referencia: String,
}

impl IntoParams for ReferenciaPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![input::schema::in_path(
            "referencia",
            input::schema::text(),
            "the referencia a payment was made with; if none was, 404 `pago_not_found`",
        )]
    }
}

/// A valid charge to make.
#[derive(Debug)]
pub struct Charge {
    pub monto: Money,
    pub moneda: String,
    pub medio: String,
    pub referencia: Option<String>,
    pub estado: EstadoPago,
}

impl Charge {
    pub fn parse(body: PagarBody) -> Result<Self, ApiError> {
        let monto = body
            .monto
            .0
            .map_err(|e| ApiError::new(ErrorCode::InvalidValue, format!("monto {e}")))?;
        if monto <= Money::ZERO {
            return Err(ApiError::new(
                ErrorCode::InvalidValue,
                "monto must be more than 0",
            ));
        }
        Ok(Self {
            monto,
            moneda: input::text("moneda", &body.moneda)?,
            medio: input::text("medio", &body.medio)?,
            referencia: body
                .referencia
                .map(|r| input::text("referencia", &r))
                .transpose()?,
            estado: if body.fail.unwrap_or(false) {
                EstadoPago::Rechazado
            } else {
                EstadoPago::Aprobado
            },
        })
    }
}
