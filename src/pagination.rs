//! Pages of a list route: `?limit=` (default 100, at most 1000) and `?offset=`.

use crate::error::{ApiError, ErrorCode};

/// `LIMIT`/`OFFSET` of a list route: `?limit=` (default 100, at most 1000) and `?offset=`.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
pub struct Page {
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

impl Page {
    pub const DEFAULT_LIMIT: u32 = 100;
    pub const MAX_LIMIT: u32 = 1000;

    /// The `(limit, offset)` to bind, or a `422` for a limit of 0 or above the maximum.
    pub fn bounds(self) -> Result<(i64, i64), ApiError> {
        let limit = self.limit.unwrap_or(Self::DEFAULT_LIMIT);
        if limit == 0 || limit > Self::MAX_LIMIT {
            return Err(ApiError::new(
                ErrorCode::InvalidLimit,
                format!("limit must be between 1 and {}", Self::MAX_LIMIT),
            ));
        }
        Ok((i64::from(limit), i64::from(self.offset.unwrap_or(0))))
    }
}
