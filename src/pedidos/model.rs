//! Orders as stored and shown, and the body that asks for one.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::input::{self, present};
use crate::money::Money;

/// The most lines one order may have.
pub const MAX_ITEMS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EstadoPedido {
    /// Written before the first peer call; final states replace it when the flow ends.
    Pendiente,
    Confirmado,
    Rechazado,
    Fallido,
}

impl EstadoPedido {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pendiente => "pendiente",
            Self::Confirmado => "confirmado",
            Self::Rechazado => "rechazado",
            Self::Fallido => "fallido",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pendiente" => Some(Self::Pendiente),
            "confirmado" => Some(Self::Confirmado),
            "rechazado" => Some(Self::Rechazado),
            "fallido" => Some(Self::Fallido),
            _ => None,
        }
    }
}

/// The last step of the flow whose outcome is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paso {
    /// The order and its lines are recorded; nothing asked of any peer is known yet.
    Creado,
    /// Every line is reserved; the reservations are recorded.
    Reservado,
    /// pagos approved the charge; the payment is recorded.
    Cobrado,
    /// The flow is over; only [`Pendiente`] work may remain.
    Cerrado,
}

impl Paso {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creado => "creado",
            Self::Reservado => "reservado",
            Self::Cobrado => "cobrado",
            Self::Cerrado => "cerrado",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "creado" => Some(Self::Creado),
            "reservado" => Some(Self::Reservado),
            "cobrado" => Some(Self::Cobrado),
            "cerrado" => Some(Self::Cerrado),
            _ => None,
        }
    }
}

/// Work at inventario still owed once an order's outcome is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pendiente {
    Confirmar,
    Liberar,
}

impl Pendiente {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmar => "confirmar",
            Self::Liberar => "liberar",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "confirmar" => Some(Self::Confirmar),
            "liberar" => Some(Self::Liberar),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PedidoItem {
    pub producto_id: i64,
    pub cantidad: i64,
    /// `None` until productos gave the price.
    pub precio_unitario: Option<Money>,
    pub subtotal: Option<Money>,
    /// `None` until inventario reserved the units.
    pub reserva_id: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Pedido {
    pub id: i64,
    pub estado: EstadoPedido,
    pub total: Money,
    pub moneda: String,
    pub medio: String,
    pub items: Vec<PedidoItem>,
    pub pago_id: Option<i64>,
    pub creado_en: String,
    /// Why an order did not succeed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub motivo: Option<String>,
    #[serde(skip)]
    pub paso: Paso,
    #[serde(skip)]
    pub pendiente: Option<Pendiente>,
    /// The order failed while a charge's answer was lost: pagos must still void its
    /// referencia, so that the charge never happens (or is found, for a refund).
    #[serde(skip)]
    pub verificar_pago: bool,
    /// The HTTP status the order was answered with, once it was.
    #[serde(skip)]
    pub respuesta: Option<u16>,
    /// The error code of that answer.
    #[serde(skip)]
    pub error: Option<String>,
    /// Unix milliseconds of the last recorded change.
    #[serde(skip)]
    pub actualizado_en: i64,
    /// Whether the lines' prices and reservations are recorded as they are now.
    #[serde(skip)]
    pub lineas_guardadas: bool,
}

impl Pedido {
    /// The key this order is known by at its peers: `referencia` at pagos, and with
    /// the line number appended, each reservation's key at inventario.
    pub fn clave(&self, prefijo: &str) -> String {
        format!("{prefijo}-{}", self.id)
    }
}

/// The body of `POST /pedidos`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PedidoBody {
    items: Vec<ItemBody>,
    pago: PagoBody,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemBody {
    producto_id: i64,
    cantidad: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PagoBody {
    medio: String,
    moneda: String,
    #[serde(default, deserialize_with = "present")]
    fail: Option<bool>,
}

/// One line of a valid order.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Linea {
    pub producto_id: i64,
    pub cantidad: i64,
}

/// A valid order to place: lines of distinct products, and how to pay.
#[derive(Debug, Clone, Serialize)]
pub struct NuevoPedido {
    pub lineas: Vec<Linea>,
    pub medio: String,
    pub moneda: String,
    /// The original design's controlled failure: ask pagos to reject the charge.
    pub fail: bool,
}

impl NuevoPedido {
    /// The order in canonical form: two requests for the same order have the same one.
    pub fn huella(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Validates an order. Lines for the same product are merged into one, in the
    /// place of the first, with their quantities added.
    pub fn parse(body: PedidoBody) -> Result<Self, ApiError> {
        if body.items.is_empty() {
            return Err(ApiError::unprocessable(
                "invalid_value",
                "items must not be empty",
            ));
        }
        if body.items.len() > MAX_ITEMS {
            return Err(ApiError::unprocessable(
                "invalid_value",
                format!("an order has at most {MAX_ITEMS} items"),
            ));
        }
        let mut lineas: Vec<Linea> = Vec::with_capacity(body.items.len());
        for item in body.items {
            let producto_id = input::id("producto_id", item.producto_id)?;
            let cantidad = input::cantidad("cantidad", item.cantidad, 1)?;
            match lineas.iter_mut().find(|l| l.producto_id == producto_id) {
                Some(linea) => linea.cantidad = input::cantidad("cantidad", linea.cantidad + cantidad, 1)?,
                None => lineas.push(Linea {
                    producto_id,
                    cantidad,
                }),
            }
        }
        Ok(Self {
            lineas,
            medio: input::text("medio", &body.pago.medio)?,
            moneda: input::text("moneda", &body.pago.moneda)?,
            fail: body.pago.fail.unwrap_or(false),
        })
    }
}
