//! The numbering of the changes inventario and pagos make for pedidos, so that a
//! restore of either from an older copy of its database is seen before it can do harm.
//!
//! Each of the two keeps one counter (table `secuencia`) and numbers every change that
//! a caller asks for with `?visto=N`: the highest number that caller was ever
//! answered. A database whose counter is below `N` is an older copy than the one the
//! caller spoke to (a restore: the file alone cannot tell, since it is byte for byte
//! the copy), and refuses the change with `409 stale_copy`, changing nothing. The
//! caller (pedidos) then re-asserts what it recorded after the copy's number, and
//! raises the counter to what it has seen (`POST /secuencia`), which lifts the refusal.
//! `GET /cambios` lists what changed after a number (`GET /cambios/{clave}`, one key's), so that a pedidos restored from
//! an older copy of its own can learn of the orders it lost.
//!
//! A change asked for without `?visto=` (a client other than pedidos) is neither
//! fenced nor numbered.

use actix_web::{FromRequest, HttpResponse, web};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};

use crate::db::{self, Pool, run_blocking, run_write};
use crate::error::{ApiError, ErrorCode, Routable, get, post};
use crate::input::{self, Whole};
use crate::json::{self, Json};
use crate::openapi::refusals;
use crate::pagination::Page;

pub const CAMBIOS: &str = "/cambios";
pub const CAMBIOS_DE: &str = "/cambios/{clave}";
pub const SECUENCIA: &str = "/secuencia";

refusals!(CambiosRefusals: CambiosQuery::REFUSALS, db::REFUSALS);
refusals!(CambiosDeRefusals: ClavePath::REFUSALS, db::REFUSALS);
refusals!(SecuenciaRefusals: json::REFUSALS, db::WRITE_REFUSALS);

/// The routes of a numbered service: its own `GET /cambios` and `GET /cambios/{clave}`
/// (what it lists is its own), and `POST /secuencia`, the same for both.
pub fn configure<C: FromRequest + 'static, D: FromRequest + 'static>(
    cfg: &mut web::ServiceConfig,
    cambios: impl Routable<C>,
    cambios_de: impl Routable<D>,
) {
    cfg.service(get(CAMBIOS, cambios))
        .service(get(CAMBIOS_DE, cambios_de))
        .service(post(SECUENCIA, subir_secuencia));
}

/// Answers `GET /cambios` or `GET /cambios/{clave}`: the service's numbers, with what
/// `read` finds of `cambios` in its database.
pub async fn listed<T, F>(pool: &Pool, cambios: Cambios, read: F) -> Result<HttpResponse, ApiError>
where
    T: Serialize + Send + 'static,
    F: FnOnce(&Connection, SequenceState, Cambios) -> rusqlite::Result<T> + Send + 'static,
{
    let answer = run_blocking(pool, move |conn| Ok(read(conn, numbers(conn)?, cambios)?)).await?;
    Ok(HttpResponse::Ok().json(answer))
}

/// Raises the number of the last change to at least `secuencia`: pedidos does it once
/// it has re-asserted what an older copy of this database had lost, which lifts the
/// `409 stale_copy` its changes got meanwhile.
#[utoipa::path(
    post,
    path = SECUENCIA,
    tag = "secuencia",
    request_body = SecuenciaBody,
    responses((status = 200, description = "the number of the last change now", body = Secuencia), SecuenciaRefusals)
)]
pub async fn subir_secuencia(
    pool: web::Data<Pool>,
    body: Json<SecuenciaBody>,
) -> Result<HttpResponse, ApiError> {
    let to = body.into_inner().parse()?;
    let secuencia = run_write(&pool, move |conn| Ok(raise(conn, to)?)).await?;
    Ok(HttpResponse::Ok().json(Secuencia { secuencia }))
}

/// A change refused because this database is older than what the caller has seen.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "this database is an older copy: its changes are numbered up to {secuencia}, and the caller \
     has seen {visto}; nothing was changed"
)]
pub struct Stale {
    pub secuencia: i64,
    pub visto: i64,
}

impl From<Stale> for ApiError {
    fn from(stale: Stale) -> Self {
        ApiError::new(ErrorCode::StaleCopy, stale.to_string())
    }
}

/// The number of the last change made here.
pub fn current(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT n FROM secuencia WHERE id = 1")?
        .query_row([], |row| row.get(0))
}

/// Before a change asked for with `visto`: the number of the last change made here,
/// or [`Stale`] if that is behind what the caller has seen. `None` for a change that
/// is not numbered (no `visto`).
pub fn check(conn: &Connection, visto: Option<i64>) -> Result<Option<i64>, Fenced> {
    let Some(visto) = visto else {
        return Ok(None);
    };
    let secuencia = current(conn)?;
    if secuencia < visto {
        // Kept (the caller commits it) so that pedidos learns it even if it restarts
        // before it heals this database: changes sent before it was restored and
        // numbered since may have brought the counter up again.
        conn.prepare_cached("UPDATE secuencia SET rezagada = max(coalesce(rezagada, 0), ?1) WHERE id = 1")?
            .execute([visto])?;
        return Err(Fenced::Stale(Stale { secuencia, visto }));
    }
    Ok(Some(secuencia))
}

/// [`check`] inside an open savepoint `tx`: the number a change asked with `visto`
/// gets; a refusal commits the mark [`check`] leaves and returns it.
#[macro_export]
macro_rules! fenced {
    ($tx:ident, $visto:expr) => {
        match $crate::secuencia::check(&$tx, $visto) {
            Ok(checked) => checked,
            Err($crate::secuencia::Fenced::Stale(stale)) => {
                $tx.commit()?;
                return Err(stale.into());
            }
            Err($crate::secuencia::Fenced::Db(e)) => return Err(e.into()),
        }
    };
}

/// What a service says of its numbers at the head of `GET /cambios`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SequenceState {
    /// The number of the last change made here.
    pub secuencia: i64,
    /// The number of the last change when this service last started: a database
    /// restored from a copy starts at the copy's.
    #[serde(default)]
    pub al_iniciar: Option<i64>,
    /// Set while this database is known to be a copy behind its caller: the highest
    /// `visto` a change was refused with since it was last healed.
    #[serde(default)]
    pub rezagada: Option<i64>,
}

/// This database's numbers, in one read.
pub fn numbers(conn: &Connection) -> rusqlite::Result<SequenceState> {
    conn.prepare_cached("SELECT n, al_iniciar, rezagada FROM secuencia WHERE id = 1")?
        .query_row([], |row| {
            Ok(SequenceState {
                secuencia: row.get(0)?,
                al_iniciar: row.get(1)?,
                rezagada: row.get(2)?,
            })
        })
}

/// Numbers a change that [`check`] let through: its number, if it is numbered.
pub fn next(conn: &Connection, checked: Option<i64>) -> rusqlite::Result<Option<i64>> {
    if checked.is_none() {
        return Ok(None);
    }
    conn.prepare_cached("UPDATE secuencia SET n = n + 1 WHERE id = 1 RETURNING n")?
        .query_row([], |row| row.get(0))
        .map(Some)
}

/// Notes the number of the last change as this service starts: if its database was
/// restored from a copy, the copy's, which is where what the copy lost begins.
pub fn started(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE secuencia SET al_iniciar = n WHERE id = 1")?
        .execute([])?;
    Ok(())
}

/// Raises the counter to at least `to`, and forgets that it was found behind; returns it.
pub fn raise(conn: &Connection, to: i64) -> rusqlite::Result<i64> {
    // Healed: the number it started at no longer tells where a copy's loss begins.
    conn.prepare_cached(
        "UPDATE secuencia SET n = max(n, ?1), rezagada = NULL, al_iniciar = max(n, ?1) WHERE id = 1 RETURNING n",
    )?
        .query_row([to], |row| row.get(0))
}

/// Why a numbered change was not made.
#[derive(Debug, thiserror::Error)]
pub enum Fenced {
    #[error(transparent)]
    Stale(#[from] Stale),
    #[error(transparent)]
    Db(#[from] rusqlite::Error),
}

/// `?visto=N` of a numbered change, as sent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Visto {
    pub visto: Option<String>,
}

impl Visto {
    /// What [`Visto::parse`] can refuse.
    pub const REFUSALS: &[ErrorCode] = &[
        ErrorCode::InvalidQuery,
        ErrorCode::InvalidValue,
        ErrorCode::StaleCopy,
    ];

    pub fn parse(&self) -> Result<Option<i64>, ApiError> {
        self.visto
            .as_deref()
            .map(|t| input::counter_in_query("visto", t))
            .transpose()
    }
}

fn counter_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Int64,
        )))
}

impl utoipa::IntoParams for Visto {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![input::schema::in_query(
            "visto",
            counter_schema(),
            "the highest `secuencia` the caller was answered here: the change is numbered, and refused \
             (409 `stale_copy`, nothing changed) if this database is behind it",
        )]
    }
}

/// `GET /cambios?prefijo=P&desde=N&limit=L`, as sent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CambiosQuery {
    pub prefijo: Option<String>,
    pub desde: Option<String>,
    pub limit: Option<String>,
}

/// The `{clave}` of `GET /cambios/{clave}`, as sent.
#[derive(Debug, Clone, Deserialize)]
pub struct ClavePath {
    pub clave: String,
}

impl ClavePath {
    pub const REFUSALS: &[ErrorCode] = &[ErrorCode::InvalidKey];

    pub fn parse(&self) -> Result<Cambios, ApiError> {
        Ok(Cambios::Key(input::key("clave", &self.clave)?))
    }
}

impl utoipa::IntoParams for ClavePath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![input::schema::in_path(
            "clave",
            input::schema::key(),
            "the key of one lote or charge (an order's, for pedidos); an empty list if nothing was made with it",
        )]
    }
}

/// Which changes `GET /cambios` lists.
#[derive(Debug, Clone)]
pub enum Cambios {
    /// Those whose key starts with `prefijo`, changed after `desde`, oldest first.
    After { prefijo: String, desde: i64, limit: i64 },
    /// The one with this key, however old.
    Key(String),
}

impl CambiosQuery {
    pub const REFUSALS: &[ErrorCode] = &[
        ErrorCode::InvalidQuery,
        ErrorCode::InvalidValue,
        ErrorCode::InvalidLimit,
        ErrorCode::InvalidKey,
    ];

    pub fn parse(&self) -> Result<Cambios, ApiError> {
        let prefijo = input::key("prefijo", self.prefijo.as_deref().unwrap_or_default())?;
        let desde = self
            .desde
            .as_deref()
            .map(|t| input::counter_in_query("desde", t))
            .transpose()?
            .unwrap_or(0);
        let page = Page {
            limit: self.limit.clone(),
            ..Page::default()
        };
        let limit = page.bounds()?.limit;
        Ok(Cambios::After {
            prefijo,
            desde,
            limit,
        })
    }
}

impl utoipa::IntoParams for CambiosQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let prefijo = ParameterBuilder::new()
            .name("prefijo")
            .parameter_in(ParameterIn::Query)
            .required(utoipa::openapi::Required::True)
            .schema(Some(input::schema::key()))
            .description(Some("the start of the keys listed (pedidos' prefix)"))
            .build();
        vec![
            prefijo,
            input::schema::in_query(
                "desde",
                counter_schema(),
                "list the changes numbered after this one (default 0)",
            ),
            input::schema::in_query(
                "limit",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .maximum(Some(Page::MAX_LIMIT as isize))
                    .default(Some(Page::DEFAULT_LIMIT.into())),
                "how many at most: 1 to 1000",
            ),
        ]
    }
}

/// The highest number the counter may be raised to: far beyond any count of changes,
/// and far enough below 2^63 that numbering one more never overflows.
pub const MAX_SECUENCIA: i64 = 1 << 62;

/// The body of `POST /secuencia`: the number to raise the counter to.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SequenceRaise)]
pub struct SecuenciaBody {
    #[schema(value_type = i64, minimum = 0, maximum = 4_611_686_018_427_387_904_i64)]
    secuencia: Whole,
}

impl SecuenciaBody {
    pub fn parse(self) -> Result<i64, ApiError> {
        match self.secuencia {
            Whole::Value(n) if (0..=MAX_SECUENCIA).contains(&n) => Ok(n),
            _ => Err(ApiError::new(
                ErrorCode::InvalidValue,
                format!("`secuencia` must be a whole number from 0 to {MAX_SECUENCIA}"),
            )),
        }
    }
}

/// The answer of `POST /secuencia`: the counter now.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Secuencia {
    pub secuencia: i64,
}
