//! Pages of a list route, by id: `?limit=` (default 100, at most 1000), `?after=` (the
//! last id of the page before: a page's cost does not grow with how deep it is) and
//! `?offset=` (0 or more, skipped after `after`; it reads every row it skips). A full
//! page answers `Link: <...?limit=N&after=ID>; rel="next"`, the next page by `after`.

use actix_web::HttpResponse;
use actix_web::http::header;

use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};

use crate::error::{ApiError, ErrorCode};
use crate::input::{self, schema::in_query as param};

/// `limit`, `after` and `offset` of a list route, as sent; [`Page::bounds`] checks them.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Page {
    pub limit: Option<String>,
    pub after: Option<String>,
    pub offset: Option<String>,
}

/// A checked page: at most `limit` rows whose id is above `after`, skipping `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub limit: i64,
    pub after: i64,
    pub offset: i64,
}

impl Bounds {
    /// This page of `rows`, which are already those past `after`: `offset` of them
    /// skipped, then at most `limit`.
    pub fn window<T>(&self, rows: impl Iterator<Item = T>) -> impl Iterator<Item = T> {
        rows.skip(usize::try_from(self.offset).unwrap_or(usize::MAX))
            .take(usize::try_from(self.limit).unwrap_or(0))
    }

    /// `rows` (read in id order within these bounds) as a JSON array, with a `Link` to
    /// the next page when this one is full.
    pub fn answer<T: serde::Serialize>(
        &self,
        path: &str,
        rows: &[T],
        id: impl Fn(&T) -> i64,
    ) -> HttpResponse {
        let mut answer = HttpResponse::Ok();
        if let Some(last) = rows.last().filter(|_| rows.len() as i64 == self.limit) {
            answer.insert_header((
                header::LINK,
                format!("<{path}?limit={}&after={}>; rel=\"next\"", self.limit, id(last)),
            ));
        }
        answer.json(rows)
    }
}

impl Page {
    pub const DEFAULT_LIMIT: i64 = 100;
    pub const MAX_LIMIT: i64 = 1000;
    /// What [`Page::bounds`] and reading the query can refuse, for the OpenAPI documents.
    pub const REFUSALS: &[ErrorCode] = &[
        ErrorCode::InvalidQuery,
        ErrorCode::InvalidLimit,
        ErrorCode::InvalidValue,
    ];

    /// The bounds to read: a `400` for what is no whole number, a `422` for a limit
    /// outside 1 to 1000 or a negative `after` or offset. Past the end, an empty page.
    pub fn bounds(&self) -> Result<Bounds, ApiError> {
        let limit = match self.limit.as_deref() {
            Some(text) => input::whole_in_query("limit", text)?,
            None => Self::DEFAULT_LIMIT.into(),
        };
        if !(1..=i128::from(Self::MAX_LIMIT)).contains(&limit) {
            return Err(ApiError::new(
                ErrorCode::InvalidLimit,
                format!("`limit` must be between 1 and {}", Self::MAX_LIMIT),
            ));
        }
        let at_least_zero = |name: &str, text: &Option<String>| -> Result<i64, ApiError> {
            text.as_deref()
                .map_or(Ok(0), |t| input::counter_in_query(name, t))
        };
        Ok(Bounds {
            limit: limit as i64,
            after: at_least_zero("after", &self.after)?,
            offset: at_least_zero("offset", &self.offset)?,
        })
    }
}

/// `?limit=` and `?offset=` in the OpenAPI documents, with the bounds [`Page::bounds`] keeps.
impl utoipa::IntoParams for Page {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let limit = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(Self::MAX_LIMIT as isize))
            .default(Some(Self::DEFAULT_LIMIT.into()));
        let at_least_zero = || {
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0))
                .default(Some(0.into()))
        };
        vec![
            param(
                "limit",
                limit,
                format!(
                    "how many at most: 1 to {} (422 `invalid_limit` outside)",
                    Self::MAX_LIMIT
                ),
            ),
            param(
                "after",
                at_least_zero(),
                "only rows whose id is above this one: the last id of the page before, as \
                 the `Link: <...>; rel=\"next\"` header of a full page names it \
                 (422 `invalid_value` if negative)",
            ),
            param(
                "offset",
                at_least_zero(),
                "how many to skip: 0 or more (422 `invalid_value` if negative); past the end, an empty page",
            ),
        ]
    }
}
