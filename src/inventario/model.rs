//! Stock rows, reservations, and the bodies that change them.

use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, Object, ObjectBuilder, OneOfBuilder, Schema, Type,
};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use crate::error::{ApiError, ErrorCode};
use crate::input::{self, Whole};

/// A product's stock: `cantidad` can still be reserved, `reservado` is held by active
/// reservations, `confirmado` has left for good with confirmed ones.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Stock {
    pub producto_id: i64,
    pub cantidad: i64,
    pub reservado: i64,
    pub confirmado: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, strum::EnumString, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum EstadoReserva {
    /// Holds its units until confirmed, released, or expired.
    Activa,
    /// Its units left for good.
    Confirmada,
    /// Its units went back to the stock on request.
    Liberada,
    /// Its units went back to the stock when its time ran out.
    Expirada,
}

crate::db::stored_as_text!(EstadoReserva);

/// Why inventario refuses a request, in its own words; `ApiError` gives each its code.
#[derive(Debug, thiserror::Error)]
pub enum InventarioError {
    #[error("producto {0} has no stock row")]
    NoStockRow(i64),
    #[error("producto {producto_id} has {disponible} units available, {pedidas} were asked for")]
    Insufficient {
        producto_id: i64,
        disponible: i64,
        pedidas: i64,
    },
    /// What was asked for (`reserva 3`, `the lote "k"`) does not exist.
    #[error("{0} does not exist")]
    Missing(String),
    /// A reservation asked for with a key that was released: nothing is taken.
    #[error("{0} was released; nothing was reserved")]
    Released(String),
    /// Confirming what was released or expired.
    #[error("{0} is {estado}; it can no longer be confirmed", estado = <&str>::from(.1))]
    NotActive(String, EstadoReserva),
    /// Releasing what was confirmed.
    #[error("{0} is confirmed; its units are gone")]
    Confirmed(String),
    #[error("reserva {reserva_id} belongs to the lote {lote:?}; confirm or release the lote")]
    InLote { reserva_id: i64, lote: String },
    /// The same key with another request.
    #[error("clave {0:?} was used for a different {1}")]
    KeyReused(String, &'static str),
    #[error(transparent)]
    Stale(#[from] crate::secuencia::Stale),
    #[error(transparent)]
    Db(#[from] rusqlite::Error),
}

impl From<InventarioError> for ApiError {
    fn from(error: InventarioError) -> Self {
        let detail = error.to_string();
        let code = match error {
            InventarioError::Db(e) => return ApiError::from(e),
            InventarioError::Stale(stale) => return ApiError::from(stale),
            InventarioError::NoStockRow(_) => ErrorCode::StockNotFound,
            InventarioError::Insufficient { .. } => ErrorCode::InsufficientStock,
            InventarioError::Missing(_) => ErrorCode::ReservaNotFound,
            InventarioError::Released(_) => ErrorCode::ReservaReleased,
            InventarioError::NotActive(_, EstadoReserva::Expirada) => ErrorCode::ReservaExpired,
            InventarioError::NotActive(..) => ErrorCode::ReservaNotActive,
            InventarioError::Confirmed(_) => ErrorCode::ReservaConfirmed,
            InventarioError::InLote { .. } => ErrorCode::ReservaInLote,
            InventarioError::KeyReused(..) => ErrorCode::IdempotencyKeyReused,
        };
        ApiError::new(code, detail)
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Reserva {
    pub reserva_id: i64,
    /// `null` only for a key released before any reservation was made with it.
    pub producto_id: Option<i64>,
    pub cantidad: i64,
    pub estado: EstadoReserva,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clave: Option<String>,
}

/// The body of `POST /stock`: a product and the units it has, none or more.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = StockLoad)]
pub struct StockBody {
    #[schema(schema_with = input::schema::id)]
    producto_id: Whole,
    #[schema(schema_with = stock_cantidad)]
    cantidad: Whole,
}

/// The body of `POST /reservar`, and a line of a lote: a product and units to reserve.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Units)]
pub struct UnitsBody {
    #[schema(schema_with = input::schema::id)]
    producto_id: Whole,
    #[schema(schema_with = reserva_cantidad)]
    cantidad: Whole,
}

fn stock_cantidad() -> Object {
    input::schema::cantidad(0)
}

fn reserva_cantidad() -> Object {
    input::schema::cantidad(1)
}

/// The `{producto_id}` of `GET /stock/{producto_id}`, as sent.
#[derive(Debug, Deserialize)]
pub struct StockPath {
    pub producto_id: String,
}

impl IntoParams for StockPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![input::schema::in_path(
            "producto_id",
            input::schema::id(),
            "0 or less: 422 `invalid_value`; beyond 64 bits there is no stock row (404); one \
             that is no whole number, 400 `invalid_id`",
        )]
    }
}

/// The body of `POST /liberar` and `POST /confirmar`: a reservation by id or by key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReservaRefBody {
    #[serde(default)]
    reserva_id: Option<Whole>,
    #[serde(default)]
    clave: Option<String>,
}

/// Exactly one of `reserva_id` and `clave`; the other absent or `null`.
impl PartialSchema for ReservaRefBody {
    fn schema() -> RefOr<Schema> {
        let null = || ObjectBuilder::new().schema_type(Type::Null);
        let by = |field: &str, schema: Object, other: &str| {
            ObjectBuilder::new()
                .property(field, schema)
                .property(other, null())
                .required(field)
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        };
        OneOfBuilder::new()
            .item(by("reserva_id", input::schema::id(), "clave"))
            .item(by("clave", input::schema::key(), "reserva_id"))
            .description(Some(
                "a reservation by its id, or by the Idempotency-Key it was made with",
            ))
            .into()
    }
}

impl ToSchema for ReservaRefBody {
    fn name() -> std::borrow::Cow<'static, str> {
        "ReservaRef".into()
    }
}

/// A valid number of units of one product.
#[derive(Debug, Clone, Copy)]
pub struct Units {
    pub producto_id: i64,
    pub cantidad: i64,
}

impl Units {
    /// Stock to set: zero units allowed.
    pub fn stock(body: StockBody) -> Result<Self, ApiError> {
        Self::parse(body.producto_id, body.cantidad, 0)
    }

    /// Units to reserve: at least one.
    pub fn reserva(body: UnitsBody) -> Result<Self, ApiError> {
        Self::parse(body.producto_id, body.cantidad, 1)
    }

    fn parse(producto_id: Whole, cantidad: Whole, min: i64) -> Result<Self, ApiError> {
        Ok(Self {
            producto_id: input::id("producto_id", producto_id, ErrorCode::StockNotFound)?,
            cantidad: input::cantidad("cantidad", cantidad, min)?,
        })
    }
}

/// The most lines one lote may have: as many as an order.
pub const MAX_LINEAS: usize = 100;

/// The body of `POST /reservas`: every line of one order, under the order's key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewLote)]
pub struct LoteBody {
    #[schema(schema_with = input::schema::key)]
    clave: String,
    #[schema(schema_with = lineas)]
    lineas: Vec<UnitsBody>,
}

fn lineas() -> ArrayBuilder {
    ArrayBuilder::new()
        .items(UnitsBody::schema())
        .min_items(Some(1))
        .max_items(Some(MAX_LINEAS))
}

/// The body of `POST /reservas/confirmar` and `POST /reservas/liberar`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Clave)]
pub struct ClaveBody {
    #[schema(schema_with = input::schema::key)]
    clave: String,
}

impl ClaveBody {
    pub fn parse(self) -> Result<String, ApiError> {
        input::key("clave", &self.clave)
    }
}

/// A valid lote to reserve: 1 to [`MAX_LINEAS`] lines, all or none of them.
#[derive(Debug, Clone)]
pub struct NewLote {
    pub clave: String,
    pub lineas: Vec<Units>,
}

impl NewLote {
    pub fn parse(body: LoteBody) -> Result<Self, ApiError> {
        if body.lineas.is_empty() || body.lineas.len() > MAX_LINEAS {
            return Err(ApiError::new(
                ErrorCode::InvalidValue,
                format!("lineas must have 1 to {MAX_LINEAS} lines"),
            ));
        }
        Ok(Self {
            clave: input::key("clave", &body.clave)?,
            lineas: body
                .lineas
                .into_iter()
                .map(Units::reserva)
                .collect::<Result<_, _>>()?,
        })
    }
}

/// The reservations of one order, named by its key, which move together.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Lote {
    pub clave: String,
    pub estado: EstadoReserva,
    /// One per line, in the order they were asked for; none for a key released
    /// before any reservation was made with it.
    pub reservas: Vec<Reserva>,
    /// The number of the change this answer reports (see `secuencia`): asked with
    /// `?visto=`, the lote's last change, or the last change made here if this request
    /// changed nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secuencia: Option<i64>,
}

/// Which reservation a request means.
#[derive(Debug, Clone)]
pub enum ReservaRef {
    Id(i64),
    Clave(String),
}

impl ReservaRef {
    pub fn parse(body: ReservaRefBody) -> Result<Self, ApiError> {
        match (body.reserva_id, body.clave) {
            (Some(id), None) => Ok(Self::Id(input::id("reserva_id", id, ErrorCode::ReservaNotFound)?)),
            (None, Some(clave)) => Ok(Self::Clave(input::key("clave", &clave)?)),
            (None, None) => Err(ApiError::new(ErrorCode::InvalidBody, "reserva_id is required")),
            (Some(_), Some(_)) => Err(ApiError::new(
                ErrorCode::InvalidValue,
                "give either reserva_id or clave, not both",
            )),
        }
    }
}
