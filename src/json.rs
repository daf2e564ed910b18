//! [`Json`], the body extractor of every route: `application/json` only (`415`), at
//! most 64 KiB (`413`), valid JSON (`400`), objects where the body has fields — a
//! JSON array is never read as a struct's fields in order (`400`) — and no number
//! with more than two decimals anywhere (`422`), checked on the text itself, so that
//! `1.999999999999999999` is refused rather than read as 2.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::BytesMut;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_util::StreamExt;
use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::{ApiError, ErrorCode, MAX_BODY_BYTES};

/// A request body parsed into `T`.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = req.mime_type().ok().flatten().is_some_and(|m| {
            m.essence_str() == "application/json" || m.suffix().is_some_and(|s| s.as_str() == "json")
        });
        let declared_too_long = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
            .is_some_and(|n| n > MAX_BODY_BYTES);
        let mut payload = payload.take();
        Box::pin(async move {
            if !json {
                return Err(ApiError::unsupported_media_type());
            }
            if declared_too_long {
                return Err(ApiError::payload_too_large());
            }
            let mut body = BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| {
                    ApiError::new(ErrorCode::InvalidBody, format!("the body could not be read: {e}"))
                })?;
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(ApiError::payload_too_large());
                }
                body.extend_from_slice(&chunk);
            }
            parse(&body).map(Json)
        })
    }
}

/// Parses a JSON body into `T` with the rules above.
pub fn parse<T: DeserializeOwned>(text: &[u8]) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(text).map_err(|e| {
        ApiError::new(
            ErrorCode::MalformedJson,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    let parsed = T::deserialize(Strict(value)).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidBody,
            format!("the body has wrong or missing fields: {e}"),
        )
    })?;
    if let Some(number) = too_precise(text) {
        return Err(ApiError::new(
            ErrorCode::InvalidValue,
            format!("{number} has more than two decimals; amounts are exact to the hundredth"),
        ));
    }
    Ok(parsed)
}

/// The first number literal in a JSON text whose value has more than two decimals.
fn too_precise(text: &[u8]) -> Option<String> {
    let mut i = 0;
    let mut in_string = false;
    while i < text.len() {
        let b = text[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if b == b'-' || b.is_ascii_digit() {
            let start = i;
            while i < text.len() && matches!(text[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                i += 1;
            }
            let literal = String::from_utf8_lossy(&text[start..i]).into_owned();
            if decimals(&literal) > 2 {
                return Some(literal);
            }
            continue;
        }
        i += 1;
    }
    None
}

/// The decimal places a JSON number literal really has: `1.50` has 1, `1e-3` has 3,
/// `1000e-5` has 2.
fn decimals(literal: &str) -> i64 {
    let unsigned = literal.trim_start_matches('-');
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (
            &unsigned[..at],
            unsigned[at + 1..].parse::<i64>().unwrap_or(0).clamp(-1000, 1000),
        ),
        None => (unsigned, 0),
    };
    let (units, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits: Vec<u8> = units.bytes().chain(fraction.bytes()).collect();
    let mut scale = fraction.len() as i64 - exponent;
    while scale > 0 && digits.last() == Some(&b'0') {
        digits.pop();
        scale -= 1;
    }
    scale
}

/// A JSON value that gives a struct its fields only from an object.
struct Strict(Value);

fn unexpected(value: &Value) -> de::Unexpected<'_> {
    match value {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(_) => de::Unexpected::Other("number"),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

impl<'de> Deserializer<'de> for Strict {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(StrictSeq(items.into_iter())),
            Value::Object(fields) => visitor.visit_map(StrictMap {
                fields: fields.into_iter(),
                value: None,
            }),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(_) => self.deserialize_any(visitor),
            other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

struct StrictSeq(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for StrictSeq {
    type Error = serde_json::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Self::Error> {
        self.0.next().map(|v| seed.deserialize(Strict(v))).transpose()
    }
}

struct StrictMap {
    fields: <Map<String, Value> as IntoIterator>::IntoIter,
    value: Option<Value>,
}

impl<'de> MapAccess<'de> for StrictMap {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.fields.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(Strict(Value::String(key))).map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Self::Error> {
        let value = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("a value without its key"))?;
        seed.deserialize(Strict(value))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Linea {
        producto_id: i64,
        cantidad: i64,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Pedido {
        items: Vec<Linea>,
        nota: Option<String>,
    }

    #[test]
    fn objects_are_read_and_arrays_are_not_taken_for_structs() {
        let ok: Pedido = parse(br#"{"items": [{"producto_id": 1, "cantidad": 2}]}"#).unwrap();
        assert_eq!(
            ok.items,
            vec![Linea {
                producto_id: 1,
                cantidad: 2
            }]
        );
        assert!(parse::<Pedido>(br#"[[{"producto_id": 1, "cantidad": 2}], null]"#).is_err());
        assert!(parse::<Pedido>(br#"{"items": [[1, 2]]}"#).is_err());
        assert!(parse::<Pedido>(br#"{"items": [], "x": 1}"#).is_err());
        assert!(parse::<Pedido>(br#"{"items": [{"producto_id": 1.5, "cantidad": 2}]}"#).is_err());
    }

    #[test]
    fn decimals_count_what_the_literal_means() {
        assert_eq!(decimals("10000"), 0);
        assert_eq!(decimals("19.99"), 2);
        assert_eq!(decimals("1.50"), 1);
        assert_eq!(decimals("1e-3"), 3);
        assert_eq!(decimals("1000e-5"), 2);
        assert_eq!(decimals("-0.001"), 3);
        assert_eq!(decimals("1.999999999999999999999"), 21);
        assert_eq!(decimals("2.5E+1"), 0);
    }

    #[test]
    fn numbers_in_strings_are_not_checked() {
        assert_eq!(too_precise(br#"{"nombre": "pi 3.14159", "precio": 1.25}"#), None);
        assert_eq!(
            too_precise(br#"{"nombre": "a\"1.555", "precio": 1.255}"#),
            Some("1.255".into())
        );
        assert_eq!(
            too_precise(br#"{"precio": 0.10000000000000000001}"#),
            Some("0.10000000000000000001".into())
        );
    }
}
