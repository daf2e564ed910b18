//! Parsing request values into domain types at the edge: names, ids and quantities.
//! A value of the wrong JSON type fails deserialisation (`400`); a value of the right
//! type that breaks a rule is refused here with a `422`; an id beyond any that can
//! exist names nothing (`404`). An optional field sent as `null` is absent.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

use crate::error::{ApiError, ErrorCode};

/// The longest name or text field penguin stores, in characters.
pub const MAX_TEXT_CHARS: usize = 200;
/// The largest quantity of one item; keeps every product of quantity and price in range.
pub const MAX_CANTIDAD: i64 = 1_000_000;

/// A JSON number meant as a whole number, kept as sent so that the rule it breaks can
/// be named: `1e22` is simply too large. A number with a fraction is no whole number
/// at all, refused while reading, as a value of the wrong type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Whole {
    Value(i64),
    /// Beyond what a 64-bit integer holds, either way.
    Huge,
}

impl<'de> Deserialize<'de> for Whole {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct WholeVisitor;

        impl Visitor<'_> for WholeVisitor {
            type Value = Whole;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Whole, E> {
                Ok(Whole::Value(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Whole, E> {
                Ok(i64::try_from(v).map_or(Whole::Huge, Whole::Value))
            }

            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Whole, E> {
                Ok(i64::try_from(v).map_or(Whole::Huge, Whole::Value))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Whole, E> {
                if v.fract() != 0.0 || !v.is_finite() {
                    Err(de::Error::invalid_type(de::Unexpected::Float(v), &self))
                } else if v.abs() < 9.2e18 {
                    Ok(Whole::Value(v as i64))
                } else {
                    Ok(Whole::Huge)
                }
            }
        }

        // Asked for as an integer, so that [`crate::json`] refuses a fraction itself.
        deserializer.deserialize_i64(WholeVisitor)
    }
}

/// A text of 1 to [`MAX_TEXT_CHARS`] characters as sent, not blank, without control
/// characters (Unicode Cc) anywhere; kept trimmed.
pub fn text(field: &'static str, value: &str) -> Result<String, ApiError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidValue,
            format!("{field} must not be empty"),
        ));
    }
    // Counted and checked as sent, so that the limits are the ones the document states.
    if value.chars().count() > MAX_TEXT_CHARS {
        return Err(ApiError::new(
            ErrorCode::InvalidValue,
            format!("{field} must be at most {MAX_TEXT_CHARS} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
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

/// The request's `Idempotency-Key` header, if any, validated like [`key`]; an empty
/// one is refused like any other malformed key.
pub fn idempotency_key(req: &actix_web::HttpRequest) -> Result<Option<String>, ApiError> {
    let mut values = req.headers().get_all("idempotency-key");
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::new(
            ErrorCode::InvalidKey,
            "send one Idempotency-Key, not several",
        ));
    }
    let text = value
        .to_str()
        .map_err(|_| ApiError::new(ErrorCode::InvalidKey, "Idempotency-Key must be visible ASCII"))?;
    key("Idempotency-Key", text).map(Some)
}

/// An id: a positive integer. One larger than any id can be names nothing: `missing`,
/// the code of the thing it would name, with a `404`.
pub fn id(field: &str, value: Whole, missing: ErrorCode) -> Result<i64, ApiError> {
    match value {
        Whole::Value(id) if id > 0 => Ok(id),
        Whole::Value(_) => Err(ApiError::new(
            ErrorCode::InvalidValue,
            format!("`{field}` must be a positive integer"),
        )),
        Whole::Huge => Err(ApiError::new(
            missing,
            format!("`{field}` is larger than any id; there is no such thing"),
        )),
    }
}

/// A whole number written in a path or a query string, as JSON may write it: `7`,
/// `-7`, `7.0`, `7e2`. Beyond what an `i128` holds it saturates; `None` if it is no
/// whole number (`7.5`, `seven`, empty).
pub fn whole_number(text: &str) -> Option<i128> {
    Decimal::parse(text)?.whole()
}

/// A decimal number as written (`-12`, `+7`, `10.50`, `7e2`, `1000e-5`): its sign, its
/// digits without the zeros at either end, and how many of them fall after the point
/// once the exponent is applied (negative: that many zeros follow them). The one
/// reader of number literals: whole numbers, amounts and a JSON number's decimal
/// places all come from it, never through a float.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal {
    pub negative: bool,
    /// Each a digit 0 to 9; empty for zero.
    digits: Vec<u8>,
    pub scale: i64,
}

impl Decimal {
    /// `None` if `text` is no decimal number (`seven`, `.5`, `1e`, empty).
    pub fn parse(text: &str) -> Option<Self> {
        let (negative, unsigned) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
            Some((mantissa, exponent)) => (mantissa, Self::exponent(exponent)?),
            None => (unsigned, 0),
        };
        let (units, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if units.is_empty() || !units.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut digits: Vec<u8> = units
            .bytes()
            .chain(fraction.bytes())
            .map(|b| b - b'0')
            .skip_while(|d| *d == 0)
            .collect();
        let mut scale = fraction.len() as i64 - exponent;
        while digits.last() == Some(&0) {
            digits.pop();
            scale -= 1;
        }
        if digits.is_empty() {
            scale = 0;
        }
        Some(Self {
            negative: negative && !digits.is_empty(),
            digits,
            scale,
        })
    }

    /// An exponent's value, however many digits it has: clamped, since a body is
    /// 64 KiB at most, so no literal has more digits than a million.
    fn exponent(text: &str) -> Option<i64> {
        let (sign, digits) = match text.as_bytes().first() {
            Some(b'-') => (-1, &text[1..]),
            Some(b'+') => (1, &text[1..]),
            _ => (1, text),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(sign * digits.parse::<i64>().map_or(1_000_000, |e| e.min(1_000_000)))
    }

    /// Its value, if it is a whole number; beyond what an `i128` holds it saturates.
    pub fn whole(&self) -> Option<i128> {
        if self.scale > 0 {
            return None;
        }
        let mut value: i128 = 0;
        for digit in &self.digits {
            value = value.saturating_mul(10).saturating_add(i128::from(*digit));
        }
        if value != 0 {
            for _ in 0..self.scale.unsigned_abs().min(40) {
                value = value.saturating_mul(10);
            }
        }
        Some(if self.negative { -value } else { value })
    }

    /// How many of its digits come before the point (0 for `0.5` and for zero).
    pub fn integer_digits(&self) -> i64 {
        (self.digits.len() as i64 - self.scale).max(0)
    }

    /// Its value in units of 10^-`places` (`places` at least its scale), if it fits an
    /// `i64`.
    pub fn in_units_of(&self, places: i64) -> Option<i64> {
        if self.scale > places {
            return None;
        }
        let mut value: i64 = 0;
        for digit in &self.digits {
            value = value.checked_mul(10)?.checked_add(i64::from(*digit))?;
        }
        for _ in 0..(places - self.scale) {
            value = value.checked_mul(10)?;
        }
        Some(if self.negative { -value } else { value })
    }
}

/// The id in a path, named `name`: one that is no whole number is a `400`; `0` or
/// less breaks the rule that ids are positive, a `422`, as in a body; one beyond 64
/// bits names nothing that exists: a `404` with `missing`, the code of what it would
/// name.
pub fn path_id(text: &str, name: &str, missing: ErrorCode, what: &str) -> Result<i64, ApiError> {
    let refusal = |code, shown: String| {
        ApiError::new(
            code,
            format!("`{name}` in the path must be a positive integer, not {shown}"),
        )
    };
    match id_in_text(text) {
        Ok(id) => Ok(id),
        Err(BadId::NotANumber) => Err(refusal(ErrorCode::InvalidId, format!("{text:?}"))),
        Err(BadId::NotPositive) => Err(refusal(ErrorCode::InvalidValue, text.to_string())),
        Err(BadId::BeyondAnyId) => Err(ApiError::new(missing, format!("there is no {what} {text}"))),
    }
}

/// A whole number in the query string, named `name`: one that is no whole number is a
/// `400`.
pub fn whole_in_query(name: &str, text: &str) -> Result<i128, ApiError> {
    whole_number(text).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidQuery,
            format!("`{name}` must be a whole number, not {text:?}"),
        )
    })
}

/// A count or a change number in the query string (`?offset=`, `?visto=`): a whole
/// number (else a `400`), 0 or more (else a `422`); beyond 64 bits it saturates.
pub fn counter_in_query(name: &str, text: &str) -> Result<i64, ApiError> {
    let n = whole_in_query(name, text)?;
    if n < 0 {
        return Err(ApiError::new(
            ErrorCode::InvalidValue,
            format!("`{name}` must be 0 or more"),
        ));
    }
    Ok(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Why a path or a query string's text is no id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadId {
    /// No whole number at all (`uno`, `1.5`, empty).
    NotANumber,
    /// `0` or less: ids are positive.
    NotPositive,
    /// Beyond 64 bits: it could be an id, but none that exists.
    BeyondAnyId,
}

/// An id written in a path or a query string: a positive whole number that fits 64 bits.
pub fn id_in_text(text: &str) -> Result<i64, BadId> {
    match whole_number(text) {
        None => Err(BadId::NotANumber),
        Some(n) if n <= 0 => Err(BadId::NotPositive),
        Some(n) => i64::try_from(n).map_err(|_| BadId::BeyondAnyId),
    }
}

/// A quantity: at least `min` (0 or 1) and at most [`MAX_CANTIDAD`].
pub fn cantidad(field: &str, value: Whole, min: i64) -> Result<i64, ApiError> {
    match value {
        Whole::Value(n) if (min..=MAX_CANTIDAD).contains(&n) => Ok(n),
        Whole::Value(_) | Whole::Huge => Err(ApiError::new(
            ErrorCode::InvalidValue,
            format!("`{field}` must be between {min} and {MAX_CANTIDAD}"),
        )),
    }
}

/// The rules above as OpenAPI schemas, for the documents of the services.
pub mod schema {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::Required;
    use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{KnownFormat, Object, ObjectBuilder, Schema, SchemaFormat, Type};

    use super::{MAX_CANTIDAD, MAX_KEY_CHARS, MAX_TEXT_CHARS};

    /// Some character that is neither a control character (Unicode Cc) nor white space,
    /// and no control character anywhere: what [`super::text`] accepts.
    pub const TEXT_PATTERN: &str = concat!(
        r"^[^\x00-\x1F\x7F-\x9F]*",
        r"[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]",
        r"[^\x00-\x1F\x7F-\x9F]*$"
    );
    /// Visible ASCII only: what [`super::key`] accepts.
    pub const KEY_PATTERN: &str = r"^[\x21-\x7E]+$";

    /// An id: a positive 64-bit integer.
    pub fn id() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(1))
            .maximum(Some(i64::MAX as isize))
            .build()
    }

    /// A quantity from `min` (0 or 1) to [`MAX_CANTIDAD`].
    pub fn cantidad(min: i64) -> Object {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(min as isize))
            .maximum(Some(MAX_CANTIDAD as isize))
            .build()
    }

    /// A name or other text: 1 to [`MAX_TEXT_CHARS`] characters, not blank, no control characters.
    pub fn text() -> Object {
        string(
            MAX_TEXT_CHARS,
            TEXT_PATTERN,
            format!(
                "1 to {MAX_TEXT_CHARS} characters, not blank, without control characters; \
                 surrounding spaces are trimmed"
            ),
        )
    }

    /// [`text`], or `null` for absent.
    pub fn optional_text() -> Object {
        crate::openapi::nullable(text())
    }

    /// A key: 1 to [`MAX_KEY_CHARS`] visible ASCII characters.
    pub fn key() -> Object {
        string(
            MAX_KEY_CHARS,
            KEY_PATTERN,
            format!("1 to {MAX_KEY_CHARS} visible ASCII characters"),
        )
    }

    /// A string of 1 to `max` characters matching `pattern`.
    fn string(max: usize, pattern: &str, description: String) -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(max))
            .pattern(Some(pattern))
            .description(Some(description))
            .build()
    }

    /// A parameter of the path, which is always required.
    pub fn in_path(name: &str, schema: Object, description: &str) -> Parameter {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .schema(Some(schema))
            .description(Some(description))
            .build()
    }

    /// An optional parameter of the query string.
    pub fn in_query(
        name: &str,
        schema: impl Into<RefOr<Schema>>,
        description: impl Into<String>,
    ) -> Parameter {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Query)
            .schema(Some(schema))
            .description(Some(description))
            .build()
    }

    /// The optional `Idempotency-Key` header of a route, read by [`super::idempotency_key`].
    pub struct IdempotencyKey;

    impl utoipa::IntoParams for IdempotencyKey {
        fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
            vec![
                ParameterBuilder::new()
                    .name("Idempotency-Key")
                    .parameter_in(ParameterIn::Header)
                    .required(Required::False)
                    .schema(Some(key()))
                    .description(Some(
                        "Sent again with the same request, answers what the first one did, as it \
                         stands now, and does nothing twice; with another request, 422 \
                         `idempotency_key_reused`. An empty or malformed key is 422 `invalid_key`.",
                    ))
                    .build(),
            ]
        }
    }
}

/// The `{id}` of a path, as sent; [`path_id`] reads it.
#[derive(Debug, serde::Deserialize)]
pub struct IdPath {
    pub id: String,
}

impl utoipa::IntoParams for IdPath {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        vec![schema::in_path(
            "id",
            schema::id(),
            "0 or less: 422 `invalid_value`; beyond 64 bits it names nothing (404); one that \
             is no whole number, 400 `invalid_id`",
        )]
    }
}

impl IdPath {
    /// What reading an id in a path can refuse, beside the `404` of what it names.
    pub const REFUSALS: &[ErrorCode] = &[ErrorCode::InvalidId, ErrorCode::InvalidValue];
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
        assert!(text("nombre", "Hielo\n").is_err());
        assert!(text("nombre", &format!(" {}", "ñ".repeat(MAX_TEXT_CHARS))).is_err());
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
        let missing = ErrorCode::ProductoNotFound;
        let code = |r: Result<i64, ApiError>| r.map_err(|e| e.code());
        assert_eq!(
            code(id("producto_id", Whole::Value(0), missing)),
            Err(ErrorCode::InvalidValue)
        );
        assert_eq!(code(id("producto_id", Whole::Value(1), missing)), Ok(1));
        assert_eq!(code(id("producto_id", Whole::Huge, missing)), Err(missing));
        assert!(cantidad("cantidad", Whole::Value(0), 1).is_err());
        assert!(cantidad("cantidad", Whole::Value(0), 0).is_ok());
        assert!(cantidad("cantidad", Whole::Value(MAX_CANTIDAD + 1), 0).is_err());
        assert_eq!(
            code(cantidad("cantidad", Whole::Huge, 1)),
            Err(ErrorCode::InvalidValue)
        );
    }

    #[test]
    fn a_decimal_is_read_once_as_written() {
        let d = |text: &str| Decimal::parse(text).expect(text);
        assert_eq!((d("10.50").scale, d("10.50").integer_digits()), (1, 2));
        assert_eq!(d("1000e-5").scale, 2);
        assert_eq!(d("100").scale, -2, "trailing zeros leave the digits");
        assert_eq!(d("007.10").in_units_of(2), Some(710));
        assert_eq!(d("-0.07").in_units_of(2), Some(-7));
        assert_eq!(d("0.001").in_units_of(2), None, "finer than asked");
        assert_eq!(d("9".repeat(30).as_str()).in_units_of(2), None, "beyond i64");
        assert_eq!(d("0e5"), d("-0.000"), "zero, however written");
        assert_eq!(d("0.5").integer_digits(), 0);
        // An exponent beyond 64 bits is still read: zero stays zero, the rest is huge or fine.
        assert_eq!(d("0e99999999999999999999"), d("0"));
        assert_eq!(
            d("1e-99999999999999999999").in_units_of(2),
            None,
            "finer than asked"
        );
        assert_eq!(d("1e99999999999999999999").whole(), Some(i128::MAX));
        for no in [
            "", "-", ".5", "1e", "1e-", "1e+-2", "1.2.3", "1,5", "seven", "1e1.5",
        ] {
            assert_eq!(Decimal::parse(no), None, "{no:?}");
        }
    }

    #[test]
    fn whole_numbers_in_text_are_read_however_written() {
        assert_eq!(whole_number("7"), Some(7));
        assert_eq!(whole_number("+7"), Some(7));
        assert_eq!(whole_number("-7"), Some(-7));
        assert_eq!(whole_number("4406.0"), Some(4406));
        assert_eq!(whole_number("1e+16"), Some(10_000_000_000_000_000));
        assert_eq!(whole_number("1500e-2"), Some(15));
        assert_eq!(whole_number("0e999999"), Some(0));
        assert_eq!(whole_number("9".repeat(60).as_str()), Some(i128::MAX));
        assert_eq!(whole_number("-1e99"), Some(-i128::MAX));
        for no in [
            "", "-", "7.5", "1e-1", "seven", " 7", "7 ", ".5", "1e", "0x10", "1_000",
        ] {
            assert_eq!(whole_number(no), None, "{no:?}");
        }
    }

    #[test]
    fn whole_numbers_are_read_as_sent() {
        let read = |json: &str| serde_json::from_str::<Whole>(json).expect(json);
        assert_eq!(read("7"), Whole::Value(7));
        assert_eq!(read("-7"), Whole::Value(-7));
        assert_eq!(read("7.0"), Whole::Value(7));
        assert_eq!(read("18446744073709551615"), Whole::Huge);
        assert_eq!(read("1e22"), Whole::Huge);
        assert!(serde_json::from_str::<Whole>("1.5").is_err());
        assert_eq!(read("2251799813685247.0"), Whole::Value(2_251_799_813_685_247));
        assert!(serde_json::from_str::<Whole>("\"7\"").is_err());
    }
}
