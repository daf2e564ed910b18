//! Payments as recorded and shown, and the body that asks for one.

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ErrorCode};
use crate::input;
use crate::money::{Money, MoneyInput};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::EnumString, strum::IntoStaticStr)]
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
pub enum Rechazo {
    #[error("referencia {0:?} was voided; nothing was charged")]
    Anulada(String),
    #[error("referencia {referencia:?} was already charged, as pago {pago_id}")]
    EnUso { referencia: String, pago_id: i64 },
    #[error(transparent)]
    Db(#[from] rusqlite::Error),
}

impl From<Rechazo> for ApiError {
    fn from(rechazo: Rechazo) -> Self {
        let code = match &rechazo {
            Rechazo::Anulada(_) => ErrorCode::ReferenciaVoid,
            Rechazo::EnUso { .. } => ErrorCode::ReferenciaInUse,
            Rechazo::Db(_) => ErrorCode::InternalError,
        };
        match rechazo {
            Rechazo::Db(e) => ApiError::from(e),
            rechazo => ApiError::new(code, rechazo.to_string()),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Pago {
    pub pago_id: i64,
    pub estado: EstadoPago,
    pub monto: Money,
    pub moneda: String,
    pub medio: String,
    pub referencia: Option<String>,
}

/// The body of `POST /pagar`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagarBody {
    monto: MoneyInput,
    moneda: String,
    medio: String,
    #[serde(default)]
    referencia: Option<String>,
    #[serde(default)]
    fail: Option<bool>,
}

/// The body of `POST /anular` and `POST /reembolsar`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenciaBody {
    pub referencia: String,
}

/// A valid charge to make.
#[derive(Debug)]
pub struct Cobro {
    pub monto: Money,
    pub moneda: String,
    pub medio: String,
    pub referencia: Option<String>,
    pub estado: EstadoPago,
}

impl Cobro {
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
