//! [`Json`], the body extractor of every route: `application/json` only, sent
//! without a `Content-Encoding` (`415`), at most 64 KiB (`413`), valid JSON with no
//! key twice in an object (`400`), objects where the body has fields — a JSON array
//! is never read as a struct's fields in order (`400`). Every number is read from its
//! literal, as written, never through a float: a whole-number field given a fraction
//! (`1.5`, `2.589e-42`, `1.0000000000000000001`) is a wrong type (`400`), and an amount
//! with more than two decimals a wrong value (`422`), so that `1.999999999999999999`
//! is refused rather than read as 2; `1e400` is a number, only a large one. A refusal
//! names the field, by its path (`items[0].cantidad`), in plain words.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::BytesMut;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_util::StreamExt;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

use crate::error::{ApiError, ErrorCode, MAX_BODY_BYTES};
use crate::input;
use crate::money;

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
    let (stand_ins, literals) = numbers(text);
    let mut literals = literals.into_iter();
    let mut reader = serde_json::Deserializer::from_slice(&stand_ins);
    let node = Unique {
        literals: &mut literals,
    }
    .deserialize(&mut reader)
    .and_then(|node| reader.end().map(|()| node))
    .map_err(|e| match e.classify() {
        // A key twice in an object: well-formed JSON that means two things.
        serde_json::error::Category::Data => ApiError::new(ErrorCode::InvalidBody, e.to_string()),
        _ => ApiError::new(
            ErrorCode::MalformedJson,
            format!("the body is not valid JSON: {e}"),
        ),
    })?;
    serde_path_to_error::deserialize(Strict(node)).map_err(|e| {
        // serde's own split: a value of the wrong type is malformed (400), a value of
        // the right type that breaks a rule is invalid (422).
        let code = match e.inner() {
            BodyError::InvalidValue { .. } => ErrorCode::InvalidValue,
            _ => ErrorCode::InvalidBody,
        };
        ApiError::new(code, plain(&e.path().to_string(), e.inner()))
    })
}

/// Why a body's JSON does not fit the type it is read into, by serde's kind of error:
/// what [`plain`] words for a person, whatever words serde would use.
#[derive(Debug)]
enum BodyError {
    InvalidType {
        got: String,
        expected: String,
    },
    InvalidValue {
        got: String,
        expected: String,
    },
    InvalidLength {
        len: usize,
        expected: String,
    },
    UnknownVariant {
        variant: String,
        expected: &'static [&'static str],
    },
    UnknownField {
        field: String,
        expected: &'static [&'static str],
    },
    MissingField(&'static str),
    DuplicateField(&'static str),
    /// What a type's own reading refused, in its words.
    Custom(String),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let one_of = |names: &[&str]| match names {
            [] => "nothing".to_string(),
            names => names.join(", "),
        };
        match self {
            Self::InvalidType { got, expected } | Self::InvalidValue { got, expected } => {
                write!(f, "{got}, expected {expected}")
            }
            Self::InvalidLength { len, expected } => write!(f, "{len} items, expected {expected}"),
            Self::UnknownVariant { variant, expected } => {
                write!(f, "`{variant}` is not one of {}", one_of(expected))
            }
            Self::UnknownField { field, expected } => {
                write!(f, "`{field}`, expected one of {}", one_of(expected))
            }
            Self::MissingField(field) => write!(f, "`{field}` is missing"),
            Self::DuplicateField(field) => write!(f, "`{field}` is given twice"),
            Self::Custom(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for BodyError {}

impl de::Error for BodyError {
    fn custom<T: std::fmt::Display>(message: T) -> Self {
        Self::Custom(message.to_string())
    }

    fn invalid_type(got: de::Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        Self::InvalidType {
            got: got.to_string(),
            expected: expected.to_string(),
        }
    }

    fn invalid_value(got: de::Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        Self::InvalidValue {
            got: got.to_string(),
            expected: expected.to_string(),
        }
    }

    fn invalid_length(len: usize, expected: &dyn de::Expected) -> Self {
        Self::InvalidLength {
            len,
            expected: expected.to_string(),
        }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Self::UnknownVariant {
            variant: variant.to_string(),
            expected,
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Self::UnknownField {
            field: field.to_string(),
            expected,
        }
    }

    fn missing_field(field: &'static str) -> Self {
        Self::MissingField(field)
    }

    fn duplicate_field(field: &'static str) -> Self {
        Self::DuplicateField(field)
    }
}

/// A refusal of the field at `path`, in the words of a person.
fn plain(path: &str, error: &BodyError) -> String {
    let here = |field: &str| match path {
        "." | "" => format!("`{field}`"),
        path => format!("`{path}.{field}`"),
    };
    let field = match path {
        "." | "" => "the body".to_string(),
        path => format!("`{path}`"),
    };
    match error {
        BodyError::MissingField(name) => format!("{} is required", here(name)),
        BodyError::UnknownField {
            field: name,
            expected,
        } => {
            let known = if expected.is_empty() {
                String::new()
            } else {
                format!("; it takes {}", expected.join(", "))
            };
            // The path already ends with the unknown field.
            let named = match path {
                "." | "" => format!("`{name}`"),
                path => format!("`{path}`"),
            };
            format!("{named} is not a field of this body{known}")
        }
        BodyError::InvalidType { got, expected } | BodyError::InvalidValue { got, expected } => {
            let expected = match expected.as_str() {
                "i64" | "i32" | "u32" | "u64" | "a whole number" => "a whole number",
                "a string" => "text",
                "a boolean" => "true or false",
                "a sequence" => "a list",
                e if e.starts_with("struct ") || e == "a map" => "an object",
                // A unit variant is written as its name.
                e if e.starts_with("enum ") => "text",
                e => e,
            };
            format!("{field} must be {expected}, not {got}")
        }
        BodyError::InvalidLength { len, expected } => {
            let items = if *len == 1 { "item" } else { "items" };
            format!("{field} has {len} {items}, expected {expected}")
        }
        BodyError::UnknownVariant { variant, expected } => {
            format!("{field} must be one of {}, not `{variant}`", expected.join(", "))
        }
        other => format!("{field}: {other}"),
    }
}

/// A JSON value as sent: numbers kept as their literals, object fields in order.
enum Node {
    Null,
    Bool(bool),
    Number(String),
    Text(String),
    List(Vec<Node>),
    Object(Vec<(String, Node)>),
}

/// The text with every number literal replaced by `0` and spaces, the same length so
/// that serde_json's positions stay true, and the literals in the order they appear.
/// A run that is no JSON number is left for serde_json to refuse.
fn numbers(text: &[u8]) -> (Vec<u8>, Vec<String>) {
    let mut stand_ins = text.to_vec();
    let mut literals = Vec::new();
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
            let literal = &text[start..i];
            if is_number(literal) {
                literals.push(String::from_utf8_lossy(literal).into_owned());
                stand_ins[start] = b'0';
                stand_ins[start + 1..i].fill(b' ');
            }
            continue;
        }
        i += 1;
    }
    (stand_ins, literals)
}

/// Whether `literal` is a number as JSON writes one: `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_number(literal: &[u8]) -> bool {
    fn digits(text: &[u8]) -> usize {
        text.iter().take_while(|b| b.is_ascii_digit()).count()
    }
    let mut rest = literal.strip_prefix(b"-").unwrap_or(literal);
    let units = digits(rest);
    if units == 0 || (units > 1 && rest[0] == b'0') {
        return false;
    }
    rest = &rest[units..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = digits(fraction);
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    if let Some(exponent) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let exponent = exponent
            .strip_prefix(b"+")
            .or_else(|| exponent.strip_prefix(b"-"))
            .unwrap_or(exponent);
        let n = digits(exponent);
        return n > 0 && n == exponent.len();
    }
    rest.is_empty()
}

/// The decimal places a JSON number literal really has: `1.50` has 1, `1e-3` has 3,
/// `1000e-5` has 2, a whole number none.
fn decimals(literal: &str) -> i64 {
    input::Decimal::parse(literal).map_or(0, |d| d.scale.max(0))
}

/// A JSON value, read into a [`Node`], whose objects have no key twice, at any depth;
/// its numbers are taken, in order, from `literals` (see [`numbers`]).
struct Unique<'a> {
    literals: &'a mut std::vec::IntoIter<String>,
}

impl Unique<'_> {
    fn number<E: de::Error>(self) -> Result<Node, E> {
        self.literals
            .next()
            .map(Node::Number)
            .ok_or_else(|| de::Error::custom("a number without its literal"))
    }
}

impl<'de> DeserializeSeed<'de> for Unique<'_> {
    type Value = Node;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique<'_> {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
        self.number()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
        self.number()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        self.number()
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Text(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Text(v))
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Unique {
            literals: &mut *self.literals,
        })? {
            items.push(item);
        }
        Ok(Node::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut fields: Vec<(String, Node)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if fields.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format_args!(
                    "the key `{key}` appears twice in one object"
                )));
            }
            let value = map.next_value_seed(Unique {
                literals: &mut *self.literals,
            })?;
            fields.push((key, value));
        }
        Ok(Node::Object(fields))
    }
}

/// A [`Node`] as serde reads it: a struct's fields only from an object, and each number
/// from its literal, by what the field asks for: a whole number (`i64`, ...) refuses
/// any fraction as a wrong type; an amount (named [`money::LITERAL`], how
/// [`crate::money`] asks) is handed its literal and refuses more than two decimals as a
/// wrong value.
struct Strict(Node);

fn unexpected(node: &Node) -> de::Unexpected<'_> {
    match node {
        Node::Null => de::Unexpected::Other("null"),
        Node::Bool(b) => de::Unexpected::Bool(*b),
        Node::Number(literal) => de::Unexpected::Other(literal),
        Node::Text(s) => de::Unexpected::Str(s),
        Node::List(_) => de::Unexpected::Seq,
        Node::Object(_) => de::Unexpected::Map,
    }
}

/// A number's literal handed to `visitor` as the smallest type that holds it exactly:
/// a whole number as an integer (beyond 128 bits, the largest), any other as a float.
fn visit_number<'de, V: Visitor<'de>>(literal: &str, visitor: V) -> Result<V::Value, BodyError> {
    match input::whole_number(literal) {
        Some(n) => match (i64::try_from(n), u64::try_from(n)) {
            (Ok(n), _) => visitor.visit_i64(n),
            (_, Ok(n)) => visitor.visit_u64(n),
            _ => visitor.visit_i128(n),
        },
        None => visitor.visit_f64(literal.parse().unwrap_or(f64::NAN)),
    }
}

impl Strict {
    /// What a whole-number field reads: a number with a fraction is of the wrong type.
    fn whole<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BodyError> {
        match &self.0 {
            Node::Number(literal) if input::whole_number(literal).is_none() => {
                Err(de::Error::invalid_type(unexpected(&self.0), &visitor))
            }
            _ => self.deserialize_any(visitor),
        }
    }

    /// What an amount reads: its number as written, so that no float stands between
    /// the client's digits and the hundredths kept; more than two decimals is an
    /// invalid value, anything but a number the wrong type.
    fn amount<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BodyError> {
        match &self.0 {
            Node::Number(literal) if decimals(literal) > 2 => Err(de::Error::invalid_value(
                unexpected(&self.0),
                &"exact to the hundredth, with at most two decimals",
            )),
            Node::Number(literal) => visitor.visit_str(literal),
            other => Err(de::Error::invalid_type(unexpected(other), &visitor)),
        }
    }
}

macro_rules! whole {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            self.whole(visitor)
        }
    )*};
}

impl<'de> Deserializer<'de> for Strict {
    type Error = BodyError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Node::Null => visitor.visit_unit(),
            Node::Bool(b) => visitor.visit_bool(b),
            Node::Number(literal) => visit_number(&literal, visitor),
            Node::Text(text) => visitor.visit_string(text),
            Node::List(items) => visitor.visit_seq(StrictSeq(items.into_iter())),
            Node::Object(fields) => visitor.visit_map(StrictMap {
                fields: fields.into_iter(),
                value: None,
            }),
        }
    }

    whole! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Node::Object(_) => self.deserialize_any(visitor),
            other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Node::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    /// An amount ([`money::LITERAL`]) is read from its literal; any other newtype is its inside.
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        if name == money::LITERAL {
            return self.amount(visitor);
        }
        visitor.visit_newtype_struct(self)
    }

    /// A unit variant, by its name.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Node::Text(name) => visitor.visit_enum(name.into_deserializer()),
            other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    serde::forward_to_deserialize_any! {
        bool char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map
        identifier ignored_any
    }
}

struct StrictSeq(std::vec::IntoIter<Node>);

impl<'de> SeqAccess<'de> for StrictSeq {
    type Error = BodyError;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Self::Error> {
        self.0.next().map(|v| seed.deserialize(Strict(v))).transpose()
    }
}

struct StrictMap {
    fields: std::vec::IntoIter<(String, Node)>,
    value: Option<Node>,
}

impl<'de> MapAccess<'de> for StrictMap {
    type Error = BodyError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.fields.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(Strict(Node::Text(key))).map(Some)
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

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Moneda {
        Eur,
        Usd,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Charge {
        moneda: Moneda,
        lineas: (i64, i64),
    }

    #[test]
    fn each_kind_of_refusal_is_worded_from_its_kind_and_path() {
        let refused = |body: &[u8]| parse::<Charge>(body).expect_err("refused");
        let detail = |body: &[u8]| refused(body).body().detail.to_string();
        assert_eq!(detail(br#"{"lineas": [1, 2]}"#), "`moneda` is required");
        assert_eq!(
            detail(br#"{"moneda": "gbp", "lineas": [1, 2]}"#),
            "`moneda` must be one of eur, usd, not `gbp`"
        );
        assert_eq!(
            detail(br#"{"moneda": "eur", "lineas": [1, 2], "nota": 1}"#),
            "`nota` is not a field of this body; it takes moneda, lineas"
        );
        assert_eq!(
            detail(br#"{"moneda": 3, "lineas": [1, 2]}"#),
            "`moneda` must be text, not 3"
        );
        assert_eq!(
            detail(br#"{"moneda": "eur", "lineas": [1]}"#),
            "`lineas` has 1 item, expected a tuple of size 2"
        );
        assert_eq!(
            refused(br#"{"moneda": "gbp", "lineas": [1, 2]}"#).code(),
            ErrorCode::InvalidBody
        );
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

    #[derive(Debug, Deserialize)]
    struct Precio {
        precio: crate::money::MoneyInput,
        nombre: Option<String>,
    }

    #[test]
    fn numbers_are_read_from_their_literals_and_strings_are_left_alone() {
        let (stand_ins, literals) = numbers(br#"{"nombre": "a\"1.555", "precio": -1.255e2}"#);
        assert_eq!(stand_ins, br#"{"nombre": "a\"1.555", "precio": 0       }"#);
        assert_eq!(literals, ["-1.255e2"]);
        let read: Precio = parse(br#"{"nombre": "pi 3.14159", "precio": 1.25}"#).unwrap();
        assert_eq!(read.precio.0.map(|m| m.hundredths()), Ok(125));
        assert_eq!(read.nombre.as_deref(), Some("pi 3.14159"));
        for no in ["01", "1.", ".5", "-", "1e", "1e+", "+1", "1-2"] {
            assert!(!is_number(no.as_bytes()), "{no}");
            let (code, _) = refusal::<Linea>(&format!(r#"{{"producto_id": {no}, "cantidad": 1}}"#));
            assert_eq!(code, ErrorCode::MalformedJson, "{no}");
        }
        for yes in ["0", "-0", "10", "1.5", "1e400", "2.589e-42", "1E+2"] {
            assert!(is_number(yes.as_bytes()), "{yes}");
        }
    }

    #[test]
    fn a_fraction_is_no_whole_number_and_a_third_decimal_is_no_amount() {
        for fraction in ["1.5", "1.123", "2.589e-42", "1.0000000000000000001", "1e-400"] {
            let (code, detail) = refusal::<Pedido>(&format!(
                r#"{{"items": [{{"producto_id": {fraction}, "cantidad": 2}}]}}"#
            ));
            assert_eq!(code, ErrorCode::InvalidBody, "{fraction}");
            assert_eq!(
                detail,
                format!("`items[0].producto_id` must be a whole number, not {fraction}")
            );
        }
        let whole: Linea = parse(br#"{"producto_id": 7.0, "cantidad": 200e-2}"#).expect("whole numbers");
        assert_eq!(
            whole,
            Linea {
                producto_id: 7,
                cantidad: 2
            }
        );
        for precise in ["1.999", "1.999999999999999999999", "2.589e-42"] {
            let (code, detail) = refusal::<Precio>(&format!(r#"{{"precio": {precise}}}"#));
            assert_eq!(code, ErrorCode::InvalidValue, "{precise}");
            assert!(
                detail.starts_with("`precio` must be exact to the hundredth") && detail.ends_with(precise),
                "{detail}"
            );
        }
        let huge: Precio = parse(br#"{"precio": 1e400}"#).expect("a number");
        assert_eq!(huge.precio.0, Err(crate::money::MoneyError::TooLarge));
    }

    #[test]
    fn an_amount_is_read_from_its_literal_here_and_from_its_number_elsewhere() {
        let hundredths = |body: &str| {
            let read: Precio = parse(body.as_bytes()).expect(body);
            read.precio.0.map(|m| m.hundredths())
        };
        assert_eq!(
            hundredths(r#"{"precio": 999999999999.99}"#),
            Ok(99_999_999_999_999)
        );
        assert_eq!(hundredths(r#"{"precio": 0.29}"#), Ok(29));
        assert_eq!(hundredths(r#"{"precio": 1000e-5}"#), Ok(1));
        assert_eq!(hundredths(r#"{"precio": 12}"#), Ok(1200));
        for (value, shown) in [
            (r#""12""#, r#"string "12""#),
            ("null", "null"),
            ("[1]", "sequence"),
        ] {
            let (code, detail) = refusal::<Precio>(&format!(r#"{{"precio": {value}}}"#));
            assert_eq!(code, ErrorCode::InvalidBody, "{value}");
            assert_eq!(detail, format!("`precio` must be a number, not {shown}"));
        }
        // A peer's answer, read by serde_json, hands over the number itself.
        let answer: Precio = serde_json::from_str(r#"{"precio": 0.29}"#).expect("an answer");
        assert_eq!(answer.precio.0.map(|m| m.hundredths()), Ok(29));
    }
}
