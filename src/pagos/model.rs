//! Payments as recorded and shown, and the body that asks for one.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::input::{self, present};
use crate::money::{Money, MoneyInput};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EstadoPago {
    Aprobado,
    Rechazado,
    /// Not a charge: the referencia was voided before any charge was made with it.
    Anulado,
    /// An approved charge whose money was given back.
    Reembolsado,
}

impl EstadoPago {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aprobado => "aprobado",
            Self::Rechazado => "rechazado",
            Self::Anulado => "anulado",
            Self::Reembolsado => "reembolsado",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "aprobado" => Some(Self::Aprobado),
            "rechazado" => Some(Self::Rechazado),
            "anulado" => Some(Self::Anulado),
            "reembolsado" => Some(Self::Reembolsado),
            _ => None,
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
    #[serde(default, deserialize_with = "present")]
    referencia: Option<String>,
    #[serde(default, deserialize_with = "present")]
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
            .map_err(|e| ApiError::unprocessable("invalid_value", format!("monto {e}")))?;
        if monto <= Money::ZERO {
            return Err(ApiError::unprocessable(
                "invalid_value",
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
