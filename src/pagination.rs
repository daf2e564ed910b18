//! Pages of a list route: `?limit=` (default 100, at most 1000) and `?offset=` (0 or more).

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
