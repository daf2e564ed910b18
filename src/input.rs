//! Parsing request values into domain types at the edge: names, ids and quantities.
//! A value of the wrong JSON type fails deserialisation (`400`); a value of the right
//! type that breaks a rule is refused here with a `422`.

use serde::{Deserialize, Deserializer};

use crate::error::{ApiError, ErrorCode};

/// The longest name or text field penguin stores, in characters.
pub const MAX_TEXT_CHARS: usize = 200;
/// The largest quantity of one item; keeps every product of quantity and price in range.
pub const MAX_CANTIDAD: i64 = 1_000_000;

/// For optional fields: absent is `None`, but an explicit `null` is a wrong type.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// A trimmed, non-empty text of at most [`MAX_TEXT_CHARS`] characters.
pub fn text(field: &'static str, value: &str) -> Result<String, ApiError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidValue,
            format!("{field} must not be empty"),
        ));
    }
    if trimmed.chars().count() > MAX_TEXT_CHARS {
        return Err(ApiError::new(
            ErrorCode::InvalidValue,
            format!("{field} must be at most {MAX_TEXT_CHARS} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ApiError::new(
            ErrorCode::InvalidValue,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(trimmed.to_string())
}

/// The longest idempotency key or reservation key accepted.
pub const MAX_KEY_CHARS: usize = 200;

/// An idempotency key: 1 to [`MAX_KEY_CHARS`] visible ASCII characters.
pub fn key(field: &'static str, value: &str) -> Result<String, ApiError> {
    if value.is_empty() || value.len() > MAX_KEY_CHARS || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::new(
            ErrorCode::InvalidKey,
            format!("{field} must be 1 to {MAX_KEY_CHARS} visible ASCII characters"),
        ));
    }
    Ok(value.to_string())
}

/// The request's `Idempotency-Key` header, if any, validated like [`key`].
pub fn idempotency_key(req: &actix_web::HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::new(ErrorCode::InvalidKey, "Idempotency-Key must be visible ASCII"))?;
    key("Idempotency-Key", text).map(Some)
}

/// An id: a positive integer.
pub fn id(field: &'static str, value: i64) -> Result<i64, ApiError> {
    if value <= 0 {
        return Err(ApiError::new(
            ErrorCode::InvalidValue,
            format!("{field} must be a positive integer"),
        ));
    }
    Ok(value)
}

/// A quantity: at least `min` (0 or 1) and at most [`MAX_CANTIDAD`].
pub fn cantidad(field: &'static str, value: i64, min: i64) -> Result<i64, ApiError> {
    if value < min || value > MAX_CANTIDAD {
        return Err(ApiError::new(
            ErrorCode::InvalidValue,
            format!("{field} must be between {min} and {MAX_CANTIDAD}"),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(text("nombre", "  Hielo  ").ok().as_deref(), Some("Hielo"));
        assert!(text("nombre", "   ").is_err());
        assert!(text("nombre", &"ñ".repeat(MAX_TEXT_CHARS)).is_ok());
        assert!(text("nombre", &"ñ".repeat(MAX_TEXT_CHARS + 1)).is_err());
        assert!(text("nombre", "a\u{0}b").is_err());
    }

    #[test]
    fn keys_are_short_visible_ascii() {
        assert!(key("clave", "pedido-1-2").is_ok());
        assert!(key("clave", "").is_err());
        assert!(key("clave", "a b").is_err());
        assert!(key("clave", "ñ").is_err());
        assert!(key("clave", &"k".repeat(MAX_KEY_CHARS + 1)).is_err());
    }

    #[test]
    fn ids_and_quantities_are_bounded() {
        assert!(id("producto_id", 0).is_err());
        assert!(id("producto_id", 1).is_ok());
        assert!(cantidad("cantidad", 0, 1).is_err());
        assert!(cantidad("cantidad", 0, 0).is_ok());
        assert!(cantidad("cantidad", MAX_CANTIDAD + 1, 0).is_err());
    }
}
