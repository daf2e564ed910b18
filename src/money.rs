//! Exact money: an integer number of hundredths, read from and written as JSON numbers.
//!
//! A JSON number is read through [`MoneyInput`], which never fails on a number: a value
//! with more than two decimals, out of range or not finite is kept as a [`MoneyError`]
//! so the handler can answer `422` (a well-formed body with an invalid value) rather
//! than `400`. A request body's reader ([`crate::json`]) hands over the literal itself
//! ([`LITERAL`]), so an amount a client sends never passes through a float, and refuses
//! a third decimal first, naming the field (`1.999999999999999999` is not 2).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::input::Decimal;

/// The largest amount penguin handles: 999,999,999,999.99.
pub const MAX_HUNDREDTHS: i64 = 99_999_999_999_999;

/// An amount of money in hundredths of the currency unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Money(i64);

/// Why a JSON number is not an amount of money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("has more than two decimals")]
    TooPrecise,
    #[error("is larger than {MAX_HUNDREDTHS} hundredths")]
    TooLarge,
}

impl Money {
    pub const ZERO: Money = Money(0);

    /// An amount from hundredths, refused beyond [`MAX_HUNDREDTHS`] either way.
    pub fn from_hundredths(hundredths: i64) -> Result<Self, MoneyError> {
        if hundredths.checked_abs().is_none_or(|abs| abs > MAX_HUNDREDTHS) {
            return Err(MoneyError::TooLarge);
        }
        Ok(Money(hundredths))
    }

    pub fn hundredths(self) -> i64 {
        self.0
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// `self * quantity`, refused when it leaves the range.
    pub fn times(self, quantity: i64) -> Result<Self, MoneyError> {
        self.0
            .checked_mul(quantity)
            .ok_or(MoneyError::TooLarge)
            .and_then(Self::from_hundredths)
    }

    /// `self + other`, refused when it leaves the range.
    pub fn plus(self, other: Money) -> Result<Self, MoneyError> {
        self.0
            .checked_add(other.0)
            .ok_or(MoneyError::TooLarge)
            .and_then(Self::from_hundredths)
    }

    /// Reads a decimal literal such as `-12`, `10.5` or `0.07` ([`Decimal`]).
    fn parse_decimal(text: &str) -> Result<Self, MoneyError> {
        let decimal = Decimal::parse(text).ok_or(MoneyError::TooLarge)?;
        if decimal.scale > 2 {
            return Err(MoneyError::TooPrecise);
        }
        // At most 15 digits of units keeps the arithmetic far from i64's limit.
        if decimal.integer_digits() > 15 {
            return Err(MoneyError::TooLarge);
        }
        Self::from_hundredths(decimal.in_units_of(2).ok_or(MoneyError::TooLarge)?)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 % 100 == 0 {
            serializer.serialize_i64(self.0 / 100)
        } else {
            // Dividing two exact integers rounds once, to the double nearest the decimal
            // value, which the shortest-representation printer writes back exactly.
            serializer.serialize_f64(self.0 as f64 / 100.0)
        }
    }
}

/// Stored as an integer number of hundredths.
impl rusqlite::types::ToSql for Money {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.0.into())
    }
}

impl rusqlite::types::FromSql for Money {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        Money::from_hundredths(value.as_i64()?).map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
    }
}

/// A JSON number read as money, with the reason it is not valid money kept for a `422`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoneyInput(pub Result<Money, MoneyError>);

/// The name under which an amount asks a deserializer for its number as written:
/// [`crate::json`], which reads request bodies, answers with the literal itself (and
/// refuses a third decimal); any other deserializer (`serde_json` reading a peer's
/// answer) with the number.
pub const LITERAL: &str = "penguin::money::Literal";

impl<'de> Deserialize<'de> for MoneyInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_newtype_struct(LITERAL, MoneyVisitor)
            .map(MoneyInput)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        MoneyInput::deserialize(deserializer)?
            .0
            .map_err(de::Error::custom)
    }
}

struct MoneyVisitor;

impl<'de> Visitor<'de> for MoneyVisitor {
    type Value = Result<Money, MoneyError>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number")
    }

    /// The number as written in a request body, from [`crate::json`].
    fn visit_str<E: de::Error>(self, literal: &str) -> Result<Self::Value, E> {
        Ok(Money::parse_decimal(literal))
    }

    /// Any other deserializer: the number, as a float if it has a fraction.
    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_f64(self)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.checked_mul(100)
            .ok_or(MoneyError::TooLarge)
            .and_then(Money::from_hundredths))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v)
            .map_err(|_| MoneyError::TooLarge)
            .and_then(|v| v.checked_mul(100).ok_or(MoneyError::TooLarge))
            .and_then(Money::from_hundredths))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
        match i64::try_from(v) {
            Ok(v) => self.visit_i64(v),
            Err(_) => Ok(Err(MoneyError::TooLarge)),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        if !v.is_finite() {
            return Ok(Err(MoneyError::TooLarge));
        }
        // The shortest decimal that reads back as `v` is the literal the client sent,
        // unless it had more digits than a double holds: then it is too precise anyway.
        Ok(Money::parse_decimal(&v.to_string()))
    }
}

/// An amount as the OpenAPI documents state it: a JSON number from 0 (excluded when
/// `positive`) to 999,999,999,999.99, with at most two decimals.
fn schema_from(positive: bool) -> utoipa::openapi::schema::Object {
    let max = MAX_HUNDREDTHS as f64 / 100.0;
    let builder = utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::Number)
        .multiple_of(Some(0.01))
        .maximum(Some(max));
    let builder = if positive {
        builder.exclusive_minimum(Some(0.0))
    } else {
        builder.minimum(Some(0.0))
    };
    builder
        .description(Some(format!(
            "exact to the hundredth: at most two decimals, at most {}",
            Money(MAX_HUNDREDTHS)
        )))
        .build()
}

/// An amount of 0 or more.
pub fn schema() -> utoipa::openapi::schema::Object {
    schema_from(false)
}

/// An amount of 0 or more, or `null` for absent.
pub fn optional_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::nullable(schema())
}

/// An amount of more than 0.
pub fn positive_schema() -> utoipa::openapi::schema::Object {
    schema_from(true)
}

/// Every amount penguin answers with is 0 or more.
impl utoipa::PartialSchema for Money {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        schema().into()
    }
}

impl utoipa::ToSchema for Money {}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Result<Money, MoneyError> {
        serde_json::from_str::<MoneyInput>(json).expect("a number").0
    }

    #[test]
    fn reads_integers_and_two_decimals_exactly() {
        assert_eq!(read("10000"), Ok(Money(1_000_000)));
        assert_eq!(read("10.5"), Ok(Money(1050)));
        assert_eq!(read("0.07"), Ok(Money(7)));
        assert_eq!(read("19.99"), Ok(Money(1999)));
        assert_eq!(read("-2.5"), Ok(Money(-250)));
        assert_eq!(read("1e2"), Ok(Money(10000)));
    }

    #[test]
    fn refuses_more_than_two_decimals_and_huge_numbers() {
        assert_eq!(read("0.001"), Err(MoneyError::TooPrecise));
        assert_eq!(read("1.999"), Err(MoneyError::TooPrecise));
        assert_eq!(read("1e300"), Err(MoneyError::TooLarge));
        assert_eq!(read("18446744073709551615"), Err(MoneyError::TooLarge));
        assert_eq!(read("1000000000000000"), Err(MoneyError::TooLarge));
    }

    #[test]
    fn refuses_non_numbers() {
        assert!(serde_json::from_str::<MoneyInput>("\"10\"").is_err());
        assert!(serde_json::from_str::<MoneyInput>("null").is_err());
    }

    #[test]
    fn writes_whole_amounts_as_integers_and_the_rest_exactly() {
        let write = |h| serde_json::to_string(&Money(h)).expect("serializes");
        assert_eq!(write(1_000_000), "10000");
        assert_eq!(write(1050), "10.5");
        assert_eq!(write(7), "0.07");
        assert_eq!(write(1999), "19.99");
        assert_eq!(write(MAX_HUNDREDTHS), "999999999999.99");
    }

    #[test]
    fn arithmetic_refuses_to_overflow() {
        assert_eq!(Money(MAX_HUNDREDTHS).times(2), Err(MoneyError::TooLarge));
        assert_eq!(Money(MAX_HUNDREDTHS).plus(Money(1)), Err(MoneyError::TooLarge));
        assert_eq!(Money(1999).times(3), Ok(Money(5997)));
    }
}
