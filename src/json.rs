//! [`Json`], the body extractor of every route: `application/json` only, sent
//! without a `Content-Encoding` (`415`), at most 64 KiB (`413`), valid JSON with no
//! key twice in an object (`400`), objects where the body has fields — a JSON array
//! is never read as a struct's fields in order (`400`) — and no number with more than
//! two decimals anywhere (`422`), checked on the text itself, so that
//! `1.999999999999999999` is refused rather than read as 2. A refusal names the
//! field, by its path (`items[0].cantidad`), in plain words.

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

/// What reading a body with [`Json`] can refuse, for the OpenAPI documents.
pub const REFUSALS: &[ErrorCode] = &[
    ErrorCode::MalformedJson,
    ErrorCode::InvalidBody,
    ErrorCode::PayloadTooLarge,
    ErrorCode::UnsupportedMediaType,
    ErrorCode::InvalidValue,
];

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
        // penguin decodes no compression: an encoded body would be read as garbage.
        let encoding = req
            .headers()
            .get(header::CONTENT_ENCODING)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_ascii_lowercase())
            .filter(|e| e != "identity");
        let mut payload = payload.take();
        Box::pin(async move {
            if !json {
                return Err(ApiError::unsupported_media_type());
            }
            if let Some(encoding) = encoding {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    format!("Content-Encoding {encoding:?} is not supported; send the body as plain JSON"),
                ));
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
    let mut reader = serde_json::Deserializer::from_slice(text);
    let value = Unique
        .deserialize(&mut reader)
        .and_then(|value| reader.end().map(|()| value))
        .map_err(|e| match e.classify() {
            // A key twice in an object: well-formed JSON that means two things.
            serde_json::error::Category::Data => ApiError::new(ErrorCode::InvalidBody, e.to_string()),
            _ => ApiError::new(
                ErrorCode::MalformedJson,
                format!("the body is not valid JSON: {e}"),
            ),
        })?;
    let parsed = serde_path_to_error::deserialize(Strict(value)).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidBody,
            plain(&e.path().to_string(), &e.inner().to_string()),
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

/// serde's message about the field at `path`, in the words of a person.
fn plain(path: &str, message: &str) -> String {
    let here = |field: &str| match path {
        "." | "" => format!("`{field}`"),
        path => format!("`{path}.{field}`"),
    };
    let quoted = |text: &str| text.split('`').nth(1).unwrap_or_default().to_string();
    if let Some(rest) = message.strip_prefix("missing field ") {
        return format!("{} is required", here(&quoted(rest)));
    }
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let field = quoted(rest);
        let known = rest
            .split_once(", expected ")
            .map_or(String::new(), |(_, known)| {
                format!("; it takes {}", known.replace("one of ", "").replace('`', ""))
            });
        // The path already ends with the unknown field.
        let named = match path {
            "." | "" => format!("`{field}`"),
            path => format!("`{path}`"),
        };
        return format!("{named} is not a field of this body{known}");
    }
    let field = match path {
        "." | "" => "the body".to_string(),
        path => format!("`{path}`"),
    };
    if let Some(rest) = message.strip_prefix("invalid type: ")
        && let Some((got, expected)) = rest.split_once(", expected ")
    {
        let expected = match expected {
            "i64" | "i32" | "u32" | "u64" | "a whole number" => "a whole number",
            "a string" => "text",
            "a boolean" => "true or false",
            "a sequence" => "a list",
            e if e.starts_with("struct ") || e == "a map" => "an object",
            e => e,
        };
        return format!("{field} must be {expected}, not {got}");
    }
    format!("{field}: {message}")
}

/// A JSON value whose objects have no key twice, at any depth.
struct Unique;

impl<'de> DeserializeSeed<'de> for Unique {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Unique)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if fields.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "the key `{key}` appears twice in one object"
                )));
            }
            let value = map.next_value_seed(Unique)?;
            fields.insert(key, value);
        }
        Ok(Value::Object(fields))
    }
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

    fn refusal<T: DeserializeOwned + std::fmt::Debug>(body: &str) -> (ErrorCode, String) {
        let e = parse::<T>(body.as_bytes()).expect_err(body);
        (e.code(), e.to_string())
    }

    #[test]
    fn refusals_name_the_field_in_plain_words() {
        let (code, detail) = refusal::<Pedido>(r#"{"items": [{"producto_id": 1, "cantidad": "dos"}]}"#);
        assert_eq!(code, ErrorCode::InvalidBody);
        assert!(
            detail.contains("`items[0].cantidad` must be a whole number"),
            "{detail}"
        );
        let (_, detail) = refusal::<Pedido>(r#"{"items": [{"producto_id": 1}]}"#);
        assert!(detail.contains("`items[0].cantidad` is required"), "{detail}");
        let (_, detail) = refusal::<Pedido>(r#"{"items": [], "cantida": 1}"#);
        assert!(detail.contains("`cantida` is not a field"), "{detail}");
    }

    #[test]
    fn a_key_twice_in_an_object_is_refused_naming_it() {
        let (code, detail) =
            refusal::<Pedido>(r#"{"items": [{"producto_id": 1, "cantidad": 2, "cantidad": 3}]}"#);
        assert_eq!(code, ErrorCode::InvalidBody);
        assert!(detail.contains("`cantidad` appears twice"), "{detail}");
        let (code, _) = refusal::<Pedido>(r#"{"items": [}"#);
        assert_eq!(code, ErrorCode::MalformedJson);
        let (code, _) = refusal::<Pedido>(r#"{"items": []} x"#);
        assert_eq!(code, ErrorCode::MalformedJson);
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
