//! Pages of a list route: `?limit=` (default 100, at most 1000) and `?offset=` (0 or more).

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};

use crate::error::{ApiError, ErrorCode};
use crate::input;

/// `LIMIT`/`OFFSET` of a list route, as sent; [`Page::bounds`] checks them.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Page {
    pub limit: Option<String>,
    pub offset: Option<String>,
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

    /// The `(limit, offset)` to bind: a `400` for what is no whole number, a `422` for a
    /// limit outside 1 to 1000 or a negative offset. An offset past the end is an empty page.
    pub fn bounds(&self) -> Result<(i64, i64), ApiError> {
        let number = |name: &str, text: &Option<String>| -> Result<Option<i128>, ApiError> {
            text.as_deref()
                .map(|t| {
                    input::whole_number(t).ok_or_else(|| {
                        ApiError::new(
                            ErrorCode::InvalidQuery,
                            format!("`{name}` must be a whole number, not {t:?}"),
                        )
                    })
                })
                .transpose()
        };
        let limit = number("limit", &self.limit)?.unwrap_or(Self::DEFAULT_LIMIT.into());
        if !(1..=i128::from(Self::MAX_LIMIT)).contains(&limit) {
            return Err(ApiError::new(
                ErrorCode::InvalidLimit,
                format!("`limit` must be between 1 and {}", Self::MAX_LIMIT),
            ));
        }
        let offset = number("offset", &self.offset)?.unwrap_or(0);
        if offset < 0 {
            return Err(ApiError::new(
                ErrorCode::InvalidValue,
                "`offset` must be 0 or more",
            ));
        }
        Ok((limit as i64, i64::try_from(offset).unwrap_or(i64::MAX)))
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
        let offset = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0))
            .default(Some(0.into()));
        vec![
            ParameterBuilder::new()
                .name("limit")
                .parameter_in(ParameterIn::Query)
                .schema(Some(limit))
                .description(Some(format!(
                    "how many at most: 1 to {} (422 `invalid_limit` outside)",
                    Self::MAX_LIMIT
                )))
                .build(),
            ParameterBuilder::new()
                .name("offset")
                .parameter_in(ParameterIn::Query)
                .schema(Some(offset))
                .description(Some(
                    "how many to skip: 0 or more (422 `invalid_value` if negative); past the end, an empty page",
                ))
                .build(),
        ]
    }
}
