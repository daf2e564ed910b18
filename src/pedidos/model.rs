//! An order three ways: the body that asks for one ([`NewPedido`]), the order as its
//! state machine knows it ([`Pedido`] and its [`Stage`]), and the JSON a client sees
//! ([`PedidoView`]), built from the state.

use actix_web::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::ArrayBuilder;
use utoipa::{PartialSchema, ToSchema};

use crate::error::{ApiError, ErrorCode};
use crate::input::{self, Whole};
use crate::money::Money;

/// The most lines one order may have.
pub const MAX_ITEMS: usize = 100;

/// The body of `POST /pedidos`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewPedido)]
pub struct PedidoBody {
    #[schema(schema_with = items)]
    items: Vec<ItemBody>,
    pago: PagoBody,
}

/// One line of an order: a product and how many units.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewItem)]
struct ItemBody {
    #[schema(schema_with = input::schema::id)]
    producto_id: Whole,
    #[schema(schema_with = item_cantidad)]
    cantidad: Whole,
}

fn items() -> ArrayBuilder {
    ArrayBuilder::new()
        .items(ItemBody::schema())
        .min_items(Some(1))
        .max_items(Some(MAX_ITEMS))
        .description(Some(format!(
            "lines for the same product are merged into one, whose `cantidad` is their sum \
             and must be at most {} too",
            input::MAX_CANTIDAD
        )))
}

fn item_cantidad() -> utoipa::openapi::schema::Object {
    input::schema::cantidad(1)
}

/// How the order is paid.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewPago)]
struct PagoBody {
    #[schema(schema_with = input::schema::text)]
    medio: String,
    #[schema(schema_with = input::schema::text)]
    moneda: String,
    /// `true` has pagos reject the charge (the controlled failure): the order is
    /// `rechazado`, `402`.
    #[serde(default)]
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
pub struct NewPedido {
    pub lineas: Vec<Linea>,
    pub medio: String,
    pub moneda: String,
    /// The contract's controlled failure: ask pagos to reject the charge (to see an
    /// order rejected and its lote released without a real payment provider).
    pub fail: bool,
}

impl NewPedido {
    /// The order in canonical form: two requests for the same order have the same one.
    pub fn fingerprint(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Validates an order. Lines for the same product are merged into one, in the
    /// place of the first, with their quantities added.
    pub fn parse(body: PedidoBody) -> Result<Self, ApiError> {
        if body.items.is_empty() {
            return Err(ApiError::new(ErrorCode::InvalidValue, "items must not be empty"));
        }
        if body.items.len() > MAX_ITEMS {
            return Err(ApiError::new(
                ErrorCode::InvalidValue,
                format!("an order has at most {MAX_ITEMS} items"),
            ));
        }
        let mut lineas: Vec<Linea> = Vec::with_capacity(body.items.len());
        for (n, item) in body.items.into_iter().enumerate() {
            let producto_id = input::id(
                &format!("items[{n}].producto_id"),
                item.producto_id,
                ErrorCode::ProductoNotFound,
            )?;
            let cantidad = input::cantidad(&format!("items[{n}].cantidad"), item.cantidad, 1)?;
            match lineas.iter_mut().find(|l| l.producto_id == producto_id) {
                Some(linea) => linea.cantidad += cantidad,
                None => lineas.push(Linea {
                    producto_id,
                    cantidad,
                }),
            }
        }
        if let Some(linea) = lineas.iter().find(|l| l.cantidad > input::MAX_CANTIDAD) {
            return Err(ApiError::new(
                ErrorCode::InvalidValue,
                format!(
                    "the lines of producto {} add up to {} units, more than the {} one order can hold of a product",
                    linea.producto_id,
                    linea.cantidad,
                    input::MAX_CANTIDAD
                ),
            ));
        }
        Ok(Self {
            lineas,
            medio: input::text("medio", &body.pago.medio)?,
            moneda: input::text("moneda", &body.pago.moneda)?,
            fail: body.pago.fail.unwrap_or(false),
        })
    }
}

/// One line of a recorded order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub producto_id: i64,
    pub cantidad: i64,
    /// The price productos gave; `None` only if the order failed before it was priced.
    pub precio_unitario: Option<Money>,
    /// The line's reservation at inventario, once an answer named it.
    pub reserva_id: Option<i64>,
}

/// An order as its state machine knows it: what was asked, priced, and its stage.
#[derive(Debug, Clone)]
pub struct Pedido {
    pub id: i64,
    pub items: Vec<Item>,
    pub total: Money,
    pub moneda: String,
    pub medio: String,
    pub fail: bool,
    pub creado_en: String,
    /// Unix milliseconds after which the order, if not yet charged, is never charged.
    pub vence_en: i64,
    /// The id of the request that placed it, which its log lines carry.
    pub request_id: Option<String>,
    /// The random part of its key at its peers; `None` for orders recorded before keys had one.
    pub nonce: Option<i64>,
    /// Its key at its peers when it is not made of its id and nonce: an order lost by a
    /// restore of this database and brought back from its peers under another id.
    pub brought_back_key: Option<String>,
    /// The `traceparent` of the request that placed it, when its trace is sampled:
    /// recovery's spans for the order link to it.
    pub traceparent: Option<String>,
    pub etapa: Stage,
}

impl Pedido {
    /// The key this order is known by at its peers: its lote at inventario and its
    /// `referencia` at pagos. Its random part makes it one no other order ever had,
    /// even in a database restored from an older copy that hands out the same ids.
    pub fn clave(&self, prefijo: &str) -> String {
        if let Some(clave) = &self.brought_back_key {
            return clave.clone();
        }
        match self.nonce {
            Some(nonce) => format!("{prefijo}-{}-{nonce:x}", self.id),
            None => format!("{prefijo}-{}", self.id),
        }
    }

    /// Whether its deadline has passed at `now` (Unix milliseconds).
    pub fn overdue(&self, now: i64) -> bool {
        now >= self.vence_en
    }

    /// Whether productos priced every line: an order that failed before it was
    /// priced (an open circuit, an unknown product) has no total to show.
    pub fn priced(&self) -> bool {
        self.items.iter().all(|item| item.precio_unitario.is_some())
    }

    /// Whether it costs nothing: then pagos is never asked.
    pub fn is_free(&self) -> bool {
        self.total == Money::ZERO
    }

    /// Whether nothing is left to do: the order is over and owes nothing.
    pub fn is_over(&self) -> bool {
        matches!(&self.etapa, Stage::Cerrado { deuda, .. } if deuda.is_empty())
    }
}

/// Where an order's life stands. Each stage is recorded as it is reached, and each
/// change of stage names the stage it comes from.
#[derive(Debug, Clone, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Stage {
    /// Recorded with its prices. Its units may be reserved and its charge under
    /// way, under the order's key, or neither: both are asked for idempotently.
    Registrado,
    /// pagos approved the charge (or the order was free); the confirmation of its
    /// units at inventario is owed.
    Cobrado { pago_id: Option<i64> },
    /// Over: its outcome, and what is still owed to a peer that did not answer.
    Cerrado { desenlace: Outcome, deuda: Owed },
}

/// How an order ended.
#[derive(Debug, Clone, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Outcome {
    /// With the payment, if it cost anything (pagos names it, if its answer did).
    Confirmado { pago_id: Option<i64> },
    /// pagos rejected the charge (the controlled failure).
    Rechazado { pago_id: Option<i64> },
    Fallido {
        causa: Cause,
        /// What happened, in a sentence the client is shown.
        motivo: String,
        /// A charge that was made and then refunded.
        pago_id: Option<i64>,
    },
}

/// Work an order still owes to its peers after its outcome is known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Owed {
    /// Its lote must still be released at inventario.
    pub liberar: bool,
    /// Its referencia must still be voided at pagos, or its charge refunded: a
    /// charge may have been made for an order that failed.
    pub anular_cobro: bool,
}

impl Stage {
    /// The status an order is answered with, and its error code when it did not succeed.
    pub fn answer(&self) -> (StatusCode, Option<ErrorCode>) {
        let desenlace = match self {
            // Not final yet: the client polls the order's Location.
            Stage::Registrado | Stage::Cobrado { .. } => return (StatusCode::ACCEPTED, None),
            Stage::Cerrado { desenlace, .. } => desenlace,
        };
        let code = match desenlace {
            Outcome::Confirmado { .. } => return (StatusCode::CREATED, None),
            Outcome::Rechazado { .. } => ErrorCode::PaymentRejected,
            Outcome::Fallido { causa, .. } => ErrorCode::from(*causa),
        };
        (code.status(), Some(code))
    }

    /// What a client sees of this stage.
    pub fn estado(&self) -> EstadoPedido {
        match self {
            Self::Registrado | Self::Cobrado { .. } => EstadoPedido::Pendiente,
            Self::Cerrado { desenlace, .. } => match desenlace {
                Outcome::Confirmado { .. } => EstadoPedido::Confirmado,
                Outcome::Rechazado { .. } => EstadoPedido::Rechazado,
                Outcome::Fallido { .. } => EstadoPedido::Fallido,
            },
        }
    }
}

impl Owed {
    pub fn is_empty(self) -> bool {
        !self.liberar && !self.anular_cobro
    }
}

/// Why an order failed, as its error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Cause {
    /// A line names a product productos does not have.
    ProductoNotFound,
    /// The total is beyond what penguin can charge.
    TotalTooLarge,
    /// inventario has not enough units (or no stock row) for a line.
    InsufficientStock,
    /// The order's lote was released before it could be reserved or confirmed.
    ReservaReleased,
    /// A peer did not answer, or its circuit is open.
    PeerUnavailable,
    /// A peer answered something pedidos cannot use.
    PeerError,
    /// The order's deadline passed before it was charged.
    Interrupted,
}

crate::db::stored_as_text!(Cause);

impl From<Cause> for ErrorCode {
    /// The error code an order that failed for `causa` is answered with.
    fn from(causa: Cause) -> Self {
        match causa {
            Cause::ProductoNotFound => Self::ProductoNotFound,
            Cause::TotalTooLarge => Self::TotalTooLarge,
            Cause::InsufficientStock => Self::InsufficientStock,
            Cause::ReservaReleased => Self::ReservaReleased,
            Cause::PeerError => Self::PeerError,
            Cause::PeerUnavailable => Self::PeerUnavailable,
            Cause::Interrupted => Self::Interrupted,
        }
    }
}

/// What a client sees of an order's stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, strum::IntoStaticStr, strum::EnumString)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum EstadoPedido {
    /// Not final yet: poll `GET /pedidos/{id}`.
    Pendiente,
    Confirmado,
    Rechazado,
    Fallido,
}

/// The JSON of an order.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Pedido)]
pub struct PedidoView<'a> {
    pub(super) id: i64,
    estado: EstadoPedido,
    /// What the order costs, from the prices productos gave; `null` when it failed
    /// before it was priced (every `precio_unitario` is `null` then too). A free
    /// order's total is `0`.
    total: Option<Money>,
    moneda: &'a str,
    medio: &'a str,
    items: Vec<ItemView>,
    pago_id: Option<i64>,
    creado_en: &'a str,
    /// The id of the request that placed it: `grep` the logs for it.
    request_id: Option<&'a str>,
    /// Why an order did not succeed, or what it still waits for.
    #[serde(skip_serializing_if = "Option::is_none")]
    motivo: Option<String>,
}

/// One line of an order, with the price productos gave when it was placed.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ItemPedido)]
struct ItemView {
    producto_id: i64,
    cantidad: i64,
    precio_unitario: Option<Money>,
    subtotal: Option<Money>,
    reserva_id: Option<i64>,
}

impl<'a> From<&'a Pedido> for PedidoView<'a> {
    fn from(pedido: &'a Pedido) -> Self {
        let (pago_id, motivo) = match &pedido.etapa {
            Stage::Registrado => (None, None),
            Stage::Cobrado { pago_id } => (
                *pago_id,
                Some(
                    "paid; the confirmation of its units at inventario is still owed, and the \
                     order is confirmed as soon as inventario answers"
                        .to_string(),
                ),
            ),
            Stage::Cerrado { desenlace, .. } => match desenlace {
                Outcome::Confirmado { pago_id } => (*pago_id, None),
                Outcome::Rechazado { pago_id } => (
                    *pago_id,
                    Some(format!("pagos rejected {}", payment_named(*pago_id))),
                ),
                Outcome::Fallido { motivo, pago_id, .. } => (*pago_id, Some(motivo.clone())),
            },
        };
        Self {
            id: pedido.id,
            estado: pedido.etapa.estado(),
            // An order brought back from its peers has no prices, but its charge tells its total.
            total: (pedido.priced() || pedido.total > Money::ZERO).then_some(pedido.total),
            moneda: &pedido.moneda,
            medio: &pedido.medio,
            items: pedido
                .items
                .iter()
                .map(|item| ItemView {
                    producto_id: item.producto_id,
                    cantidad: item.cantidad,
                    precio_unitario: item.precio_unitario,
                    subtotal: item.precio_unitario.and_then(|p| p.times(item.cantidad).ok()),
                    reserva_id: item.reserva_id,
                })
                .collect(),
            pago_id,
            creado_en: &pedido.creado_en,
            request_id: pedido.request_id.as_deref(),
            motivo,
        }
    }
}

/// A payment in a sentence: `the payment 5`, or `the payment` when pagos gave no id.
pub fn payment_named(pago_id: Option<i64>) -> String {
    pago_id.map_or_else(|| "the payment".into(), |id| format!("the payment {id}"))
}

impl PedidoView<'_> {
    pub fn motivo(&self) -> Option<&str> {
        self.motivo.as_deref()
    }
}

/// The peers that keep a record of an order: its lote, its charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Ledger {
    Inventario,
    Pagos,
}

impl Ledger {
    pub const BOTH: [Ledger; 2] = [Ledger::Inventario, Ledger::Pagos];
}

/// The highest number each peer gave a change it made for an order (see `secuencia`),
/// as a driver saw them: recorded with the order, so that the orders a restored peer
/// lost can be found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChangeNumbers {
    pub inventario: Option<i64>,
    pub pagos: Option<i64>,
}

impl ChangeNumbers {
    pub fn get(&self, ledger: Ledger) -> Option<i64> {
        match ledger {
            Ledger::Inventario => self.inventario,
            Ledger::Pagos => self.pagos,
        }
    }

    /// Notes a number `ledger` answered with.
    pub fn saw(&mut self, ledger: Ledger, secuencia: Option<i64>) {
        let slot = match ledger {
            Ledger::Inventario => &mut self.inventario,
            Ledger::Pagos => &mut self.pagos,
        };
        *slot = (*slot).max(secuencia);
    }
}
