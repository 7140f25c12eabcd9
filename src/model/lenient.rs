//! Lenient field decoding for wire models: a field of the wrong type or a number that does not fit
//! its column never fails the record. The typed field gets the value where it fits (a numeric
//! string for a number, an integral float for an integer) and `None` where it does not; a list
//! element that cannot be read is dropped. Each such oddity is noted, and [`collecting`] returns
//! how many a parse met, so a run can count them as data warnings while `raw` keeps what was sent.
//!
//! Use with serde's `deserialize_with`: [`opt`] for scalars, [`required`] for ids, [`object`] for a
//! nested struct and [`list`] for an array. [`object`] and [`list`] read the value as a borrowed
//! `RawValue`, so the model must be parsed by `serde_json::from_slice`/`from_str` (as the clients do).

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use chrono::NaiveDate;
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

thread_local! {
    static ODDITIES: Cell<u32> = const { Cell::new(0) };
}

/// Runs a parse and returns its result with the number of oddities it met. Parsing is synchronous,
/// so a thread-local counter sees exactly this parse.
pub fn collecting<T>(parse: impl FnOnce() -> T) -> (T, u32) {
    let outer = ODDITIES.with(|c| c.replace(0));
    let out = parse();
    let met = ODDITIES.with(|c| c.replace(outer));
    (out, met)
}

fn note() {
    ODDITIES.with(|c| c.set(c.get().saturating_add(1)));
}

/// A JSON scalar as it came off the wire.
#[derive(Debug)]
pub enum Wire<'a> {
    Int(i128),
    Float(f64),
    Str(Cow<'a, str>),
    Bool(bool),
    Null,
    /// An array or object where a scalar belongs.
    Compound,
}

/// How a wire value became a typed one.
#[derive(Debug, PartialEq)]
pub enum Converted<T> {
    /// The expected JSON type.
    Native(T),
    /// Another JSON type that still holds a fitting value (noted as an oddity).
    Coerced(T),
    /// Nothing usable (noted as an oddity; the field is `None`).
    Unfit,
    /// The wire's own way of saying "unknown" (such as `""` for a date): `None`, no oddity.
    Unknown,
}

/// A type a wire scalar converts to.
pub trait Scalar: Sized {
    /// Converts a non-null wire value.
    fn convert(wire: Wire<'_>) -> Converted<Self>;
}

fn integer<T: TryFrom<i128>>(wire: Wire<'_>) -> Converted<T> {
    let fit = |v: i128| T::try_from(v).ok();
    match wire {
        Wire::Int(v) => fit(v).map_or(Converted::Unfit, Converted::Native),
        Wire::Float(f) if f.fract() == 0.0 && f.abs() < 1e30 => {
            fit(f as i128).map_or(Converted::Unfit, Converted::Coerced)
        }
        Wire::Str(s) => s
            .trim()
            .parse::<i128>()
            .ok()
            .and_then(fit)
            .map_or(Converted::Unfit, Converted::Coerced),
        _ => Converted::Unfit,
    }
}

/// Integers: the wire integer where it fits the type, coerced from an integral float or a numeric
/// string.
macro_rules! integer_scalar {
    ($($t:ty),+) => {
        $(impl Scalar for $t {
            fn convert(wire: Wire<'_>) -> Converted<Self> {
                integer(wire)
            }
        })+
    };
}

integer_scalar!(i64, i32, i16, u32, u64);

impl Scalar for f64 {
    fn convert(wire: Wire<'_>) -> Converted<Self> {
        match wire {
            Wire::Int(v) => Converted::Native(v as f64),
            Wire::Float(f) if f.is_finite() => Converted::Native(f),
            Wire::Str(s) => match s.trim().parse::<f64>() {
                Ok(f) if f.is_finite() => Converted::Coerced(f),
                _ => Converted::Unfit,
            },
            _ => Converted::Unfit,
        }
    }
}

impl Scalar for String {
    fn convert(wire: Wire<'_>) -> Converted<Self> {
        match wire {
            Wire::Str(s) => Converted::Native(s.into_owned()),
            Wire::Int(v) => Converted::Coerced(v.to_string()),
            Wire::Float(f) => Converted::Coerced(f.to_string()),
            _ => Converted::Unfit,
        }
    }
}

impl Scalar for bool {
    fn convert(wire: Wire<'_>) -> Converted<Self> {
        match wire {
            Wire::Bool(b) => Converted::Native(b),
            Wire::Str(s) => match s.trim() {
                "true" => Converted::Coerced(true),
                "false" => Converted::Coerced(false),
                _ => Converted::Unfit,
            },
            Wire::Int(0) => Converted::Coerced(false),
            Wire::Int(1) => Converted::Coerced(true),
            _ => Converted::Unfit,
        }
    }
}

/// TMDb's dates: `"YYYY-MM-DD"` (a longer timestamp is cut to its date); `""` means unknown and
/// is no oddity.
impl Scalar for NaiveDate {
    fn convert(wire: Wire<'_>) -> Converted<Self> {
        match wire {
            Wire::Str(s) if s.trim().is_empty() => Converted::Unknown,
            Wire::Str(s) => {
                let s = s.trim();
                NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d")
                    .map_or(Converted::Unfit, Converted::Native)
            }
            _ => Converted::Unfit,
        }
    }
}

struct WireVisitor;

impl<'de> Visitor<'de> for WireVisitor {
    type Value = Wire<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Wire::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Wire::Int(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Wire::Int(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
        Ok(Wire::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
        Ok(i128::try_from(v).map_or(Wire::Float(v as f64), Wire::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Wire::Float(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Wire::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Wire::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Wire::Str(Cow::Owned(v)))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Wire::Null)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Wire::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Wire::Compound)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Wire::Compound)
    }
}

/// Reads an optional scalar: null is `None`; a value of another type is converted where it fits
/// and `None` where it does not, either way noted.
pub fn opt<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Scalar,
{
    match d.deserialize_any(WireVisitor)? {
        Wire::Null => Ok(None),
        wire => Ok(match T::convert(wire) {
            Converted::Native(v) => Some(v),
            Converted::Coerced(v) => {
                note();
                Some(v)
            }
            Converted::Unfit => {
                note();
                None
            }
            Converted::Unknown => None,
        }),
    }
}

/// Reads a scalar the record cannot do without (an id): converted where it fits, an error (the
/// record, or the list element, is unusable) where it does not.
pub fn required<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Scalar,
{
    match T::convert(d.deserialize_any(WireVisitor)?) {
        Converted::Native(v) => Ok(v),
        Converted::Coerced(v) => {
            note();
            Ok(v)
        }
        Converted::Unfit | Converted::Unknown => {
            Err(de::Error::custom("an id that is not a number in range"))
        }
    }
}

/// Reads an optional nested object: one that cannot be read as `T` (an array, a string, a broken
/// required field) is `None`, noted.
pub fn object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let Some(raw) = Option::<&'de RawValue>::deserialize(d)? else {
        return Ok(None);
    };
    match serde_json::from_str::<T>(raw.get()) {
        Ok(v) => Ok(Some(v)),
        Err(_) => {
            note();
            Ok(None)
        }
    }
}

/// Reads an array: null or absent is empty; anything but an array is empty, noted; an element that
/// cannot be read as `T` is dropped, noted.
pub fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let Some(raw) = Option::<&'de RawValue>::deserialize(d)? else {
        return Ok(Vec::new());
    };
    let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(raw.get()) else {
        note();
        return Ok(Vec::new());
    };
    Ok(items
        .into_iter()
        .filter_map(|item| match serde_json::from_str::<T>(item.get()) {
            Ok(v) => Some(v),
            Err(_) => {
                note();
                None
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Probe {
        #[serde(deserialize_with = "required")]
        id: i64,
        #[serde(default, deserialize_with = "opt")]
        small: Option<i32>,
        #[serde(default, deserialize_with = "opt")]
        tiny: Option<i16>,
        #[serde(default, deserialize_with = "opt")]
        score: Option<f64>,
        #[serde(default, deserialize_with = "opt")]
        name: Option<String>,
        #[serde(default, deserialize_with = "opt")]
        flag: Option<bool>,
        #[serde(default, deserialize_with = "opt")]
        day: Option<NaiveDate>,
        #[serde(default, deserialize_with = "list")]
        items: Vec<Item>,
        #[serde(default, deserialize_with = "object")]
        nested: Option<Item>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Item {
        #[serde(deserialize_with = "required")]
        id: i64,
    }

    fn probe(body: &str) -> (Probe, u32) {
        let (p, n) = collecting(|| serde_json::from_str::<Probe>(body));
        (p.expect("a lenient parse never fails on a usable id"), n)
    }

    #[test]
    fn well_typed_values_are_kept_without_oddities() {
        let (p, n) = probe(
            r#"{"id":1,"small":7,"tiny":-3,"score":1.5,"name":"x","flag":true,"day":"2020-02-29",
                "items":[{"id":2}],"nested":{"id":3},"unknown":{"deep":[[[1]]]}}"#,
        );
        assert_eq!(n, 0);
        assert_eq!((p.small, p.tiny, p.score), (Some(7), Some(-3), Some(1.5)));
        assert_eq!((p.name.as_deref(), p.flag), (Some("x"), Some(true)));
        assert_eq!(p.day, NaiveDate::from_ymd_opt(2020, 2, 29));
        assert_eq!(p.items, vec![Item { id: 2 }]);
        assert_eq!(p.nested, Some(Item { id: 3 }));
    }

    #[test]
    fn nulls_absences_and_empty_dates_are_no_oddity() {
        let (p, n) = probe(r#"{"id":1,"small":null,"items":null,"nested":null,"day":""}"#);
        assert_eq!(n, 0);
        assert!(p.small.is_none() && p.items.is_empty() && p.nested.is_none() && p.day.is_none());
    }

    #[test]
    fn odd_values_fit_where_they_can_and_are_counted() {
        type Check = fn(&Probe) -> bool;
        let cases: [(&str, Check); 14] = [
            (r#""small":3000000000"#, |p| p.small.is_none()),
            (r#""small":"120""#, |p| p.small == Some(120)),
            (r#""small":12.0"#, |p| p.small == Some(12)),
            (r#""small":12.5"#, |p| p.small.is_none()),
            (r#""tiny":70000"#, |p| p.tiny.is_none()),
            (r#""small":99999999999999999999999"#, |p| p.small.is_none()),
            (r#""score":"7.25""#, |p| p.score == Some(7.25)),
            (r#""score":[1]"#, |p| p.score.is_none()),
            (r#""name":42"#, |p| p.name.as_deref() == Some("42")),
            (r#""flag":"false""#, |p| p.flag == Some(false)),
            (r#""day":"2020-13-45""#, |p| p.day.is_none()),
            (r#""items":{"id":1}"#, |p| p.items.is_empty()),
            (r#""items":[{"id":"x"},{"id":5}]"#, |p| {
                p.items == vec![Item { id: 5 }]
            }),
            (r#""nested":[1,2]"#, |p| p.nested.is_none()),
        ];
        for (field, check) in cases {
            let body = format!(r#"{{"id":1,{field}}}"#);
            let (p, n) = probe(&body);
            assert_eq!(n, 1, "{field} is one oddity");
            assert!(check(&p), "{field}: {p:?}");
        }
    }

    #[test]
    fn an_id_that_is_a_numeric_string_is_read_and_an_unusable_one_fails() {
        let (p, n) = probe(r#"{"id":"77"}"#);
        assert_eq!((p.id, n), (77, 1));
        assert!(serde_json::from_str::<Probe>(r#"{"id":"seventy"}"#).is_err());
        assert!(serde_json::from_str::<Probe>(r#"{"id":1e300}"#).is_err());
    }

    #[test]
    fn collecting_isolates_each_parse() {
        let (_, first) = collecting(|| serde_json::from_str::<Probe>(r#"{"id":1,"small":"x"}"#));
        let (_, second) = collecting(|| serde_json::from_str::<Probe>(r#"{"id":1}"#));
        assert_eq!((first, second), (1, 0));
    }
}
