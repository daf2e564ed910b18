//! Products as stored and shown, and the bodies that create or change them.

use serde::{Deserialize, Serialize};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn, ParameterStyle};
use utoipa::openapi::schema::ArrayBuilder;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorCode};
use crate::input::{self, BadId};
use crate::money::{self, Money, MoneyInput};
use crate::pagination::{Bounds, Page};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Producto {
    pub id: i64,
    pub nombre: String,
    pub precio: Money,
}

/// The body of `POST /productos`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewProducto)]
pub struct NewProductoBody {
    #[schema(schema_with = input::schema::text)]
    nombre: String,
    #[schema(schema_with = money::schema)]
    precio: MoneyInput,
}

/// The body of `PUT /productos/{id}`: any of the fields; `null` keeps the current value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ProductoChange)]
pub struct ProductoChangeBody {
    #[serde(default)]
    #[schema(schema_with = input::schema::optional_text)]
    nombre: Option<String>,
    #[serde(default)]
    #[schema(schema_with = money::optional_schema)]
    precio: Option<MoneyInput>,
}

/// A valid new product.
#[derive(Debug)]
pub struct NewProducto {
    pub nombre: String,
    pub precio: Money,
}

/// A valid change to a product; `None` keeps the current value.
#[derive(Debug)]
pub struct ProductoChange {
    pub nombre: Option<String>,
    pub precio: Option<Money>,
}

fn precio(value: MoneyInput) -> Result<Money, ApiError> {
    let precio = value
        .0
        .map_err(|e| ApiError::new(ErrorCode::InvalidValue, format!("precio {e}")))?;
    if precio.is_negative() {
        return Err(ApiError::new(ErrorCode::InvalidValue, "precio must be 0 or more"));
    }
    Ok(precio)
}

impl NewProducto {
    pub fn parse(body: NewProductoBody) -> Result<Self, ApiError> {
        Ok(Self {
            nombre: input::text("nombre", &body.nombre)?,
            precio: precio(body.precio)?,
        })
    }
}

impl ProductoChange {
    pub fn parse(body: ProductoChangeBody) -> Result<Self, ApiError> {
        Ok(Self {
            nombre: body.nombre.map(|n| input::text("nombre", &n)).transpose()?,
            precio: body.precio.map(precio).transpose()?,
        })
    }
}

/// The query of `GET /productos`: a page of the catalog, or the products named by
/// `ids` (comma-separated), which is how pedidos prices a whole order in one call.
#[derive(Debug, Deserialize)]
pub struct ListingQuery {
    limit: Option<String>,
    after: Option<String>,
    offset: Option<String>,
    ids: Option<String>,
}

/// `?limit=&offset=` or `?ids=`, in the OpenAPI document.
impl IntoParams for ListingQuery {
    fn into_params(parameter_in: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let ids = ArrayBuilder::new()
            .items(input::schema::id())
            .min_items(Some(1))
            .max_items(Some(Page::MAX_LIMIT as usize));
        let mut params = Page::into_params(parameter_in);
        params.push(
            ParameterBuilder::new()
                .name("ids")
                .parameter_in(ParameterIn::Query)
                .style(Some(ParameterStyle::Form))
                .explode(Some(false))
                .schema(Some(ids))
                .description(Some(format!(
                    "instead of a page, the products with these ids that exist, in the order \
                     asked: 1 to {} ids, separated by commas; with `limit`, `after` or `offset`, a page of them (all of them unless `limit` is given)",
                    Page::MAX_LIMIT
                )))
                .build(),
        );
        params
    }
}

/// What `GET /productos` asks for.
#[derive(Debug)]
pub enum Listing {
    Page(Page),
    /// Distinct ids, in the order given, and the page of them wanted: those above
    /// `after`, past `offset`, at most `limit` (all of them unless `limit` is given).
    Ids(Vec<i64>, Bounds),
}

impl Listing {
    pub fn parse(query: ListingQuery) -> Result<Self, ApiError> {
        let page = Page {
            limit: query.limit,
            after: query.after,
            offset: query.offset,
        };
        let Some(ids) = query.ids else {
            return Ok(Self::Page(page));
        };
        let mut bounds = page.bounds()?;
        if page.limit.is_none() {
            bounds.limit = Page::MAX_LIMIT;
        }
        if ids.split(',').count() > Page::MAX_LIMIT as usize {
            return Err(ApiError::new(
                ErrorCode::InvalidValue,
                format!("ids names at most {} products", Page::MAX_LIMIT),
            ));
        }
        let mut parsed: Vec<i64> = Vec::new();
        for text in ids.split(',') {
            match input::id_in_text(text) {
                Ok(id) if !parsed.contains(&id) => parsed.push(id),
                // Named twice, or larger than any id can be (so naming no product): left out.
                Ok(_) | Err(BadId::BeyondAnyId) => {}
                Err(BadId::NotANumber) => {
                    let detail = format!("ids must be product ids separated by commas, got {text:?}");
                    return Err(ApiError::new(ErrorCode::InvalidQuery, detail));
                }
                Err(BadId::NotPositive) => {
                    return Err(ApiError::new(
                        ErrorCode::InvalidValue,
                        "ids must be positive integers",
                    ));
                }
            }
        }
        Ok(Self::Ids(parsed, bounds))
    }
}
