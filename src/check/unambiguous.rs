//! A view over a lenient YAML deserializer (libyaml's, through `yaml_serde`) that fails wherever
//! two YAML readers could read one document differently, so `check`'s fast path takes a document
//! only when the strict reader (serde-saphyr with `no_schema`, which words every error) would read
//! it the same:
//!
//! - libyaml hands any scalar to a string field (`account: 123` becomes `"123"`, `~` becomes
//!   `"~"`). Here every string must start with a letter and be no YAML 1.1 boolean or null word,
//!   so a plain string and a quoted one can never differ.
//! - A typed map keeps the last of two equal keys. Here the second one is an error.
//!
//! Failing costs only time: the caller then parses the document the strict way.

use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

/// True when no YAML reader takes `text`, written plain, for anything but this string.
pub fn unambiguous(text: &str) -> bool {
    const WORDS: [&str; 12] = [
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf", "infinity",
    ];
    text.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
        && !WORDS.iter().any(|w| text.eq_ignore_ascii_case(w))
}

/// The deserializer `inner`, failing on what YAML readers may read differently.
pub struct Unambiguous<D> {
    inner: D,
    /// Set for a map's key: where the key's text goes, so the map can refuse it twice.
    key: Option<KeySlot>,
}

/// A map key's text, written by the key's visitor and read by the map.
type KeySlot = std::rc::Rc<std::cell::RefCell<String>>;

impl<D> Unambiguous<D> {
    pub fn new(inner: D) -> Self {
        Self { inner, key: None }
    }
}

/// Passes every `deserialize_*` call on with the visitor wrapped.
macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*) => $dedupe:expr;)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            self.inner.$method($($arg,)* Wrap { visitor, key: self.key, dedupe: $dedupe })
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Unambiguous<D> {
    type Error = D::Error;

    forward! {
        deserialize_any() => true;
        deserialize_bool() => false;
        deserialize_i8() => false;
        deserialize_i16() => false;
        deserialize_i32() => false;
        deserialize_i64() => false;
        deserialize_i128() => false;
        deserialize_u8() => false;
        deserialize_u16() => false;
        deserialize_u32() => false;
        deserialize_u64() => false;
        deserialize_u128() => false;
        deserialize_f32() => false;
        deserialize_f64() => false;
        deserialize_char() => false;
        deserialize_str() => false;
        deserialize_string() => false;
        deserialize_bytes() => false;
        deserialize_byte_buf() => false;
        deserialize_option() => false;
        deserialize_unit() => false;
        deserialize_unit_struct(name: &'static str) => false;
        deserialize_newtype_struct(name: &'static str) => false;
        deserialize_seq() => false;
        deserialize_tuple(len: usize) => false;
        deserialize_tuple_struct(name: &'static str, len: usize) => false;
        // A struct's derived visitor refuses a known field twice itself (and an unknown one is
        // reported by the caller's unknown-field check): only maps need keys remembered.
        deserialize_map() => true;
        deserialize_struct(name: &'static str, fields: &'static [&'static str]) => false;
        deserialize_enum(name: &'static str, variants: &'static [&'static str]) => false;
        deserialize_identifier() => false;
        deserialize_ignored_any() => false;
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// A visitor whose strings are checked, whose maps remember their keys when `dedupe`, and whose
/// nested values are read through [`Unambiguous`] too.
struct Wrap<V> {
    visitor: V,
    key: Option<KeySlot>,
    dedupe: bool,
}

impl<V> Wrap<V> {
    /// A visitor of a value that is neither a map key nor a map of its own.
    fn plain(visitor: V) -> Self {
        Self {
            visitor,
            key: None,
            dedupe: false,
        }
    }

    fn string<E: de::Error>(&self, text: &str) -> Result<(), E> {
        if !unambiguous(text) {
            return Err(E::custom(format_args!(
                "{text:?} may be read as another type"
            )));
        }
        if let Some(slot) = &self.key {
            text.clone_into(&mut slot.borrow_mut());
        }
        Ok(())
    }
}

/// Passes scalar visits on unchanged.
macro_rules! scalars {
    ($($method:ident($ty:ty);)*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.visitor.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.visitor.expecting(f)
    }

    scalars! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]);
        visit_byte_buf(Vec<u8>);
    }

    fn visit_char<E: de::Error>(self, v: char) -> Result<Self::Value, E> {
        self.string(v.encode_utf8(&mut [0; 4]))?;
        self.visitor.visit_char(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.string(v)?;
        self.visitor.visit_str(v)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        self.string(v)?;
        self.visitor.visit_borrowed_str(v)
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        self.string(&v)?;
        self.visitor.visit_string(v)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visitor.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visitor.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.visitor.visit_some(Unambiguous::new(d))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.visitor.visit_newtype_struct(Unambiguous::new(d))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.visitor.visit_seq(Seq(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.visitor.visit_map(Map {
            inner: map,
            seen: self.dedupe.then(Vec::new),
        })
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.visitor.visit_enum(Enum(data))
    }
}

/// A seed whose deserializer is wrapped; `key` collects a map key's text.
struct Seed<S> {
    seed: S,
    key: Option<KeySlot>,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.seed.deserialize(Unambiguous {
            inner: d,
            key: self.key,
        })
    }
}

fn seed<S>(seed: S) -> Seed<S> {
    Seed { seed, key: None }
}

struct Seq<A>(A);

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Seq<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        s: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(seed(s))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

/// A map's entries; `seen` holds the keys so far when the map must not repeat one.
struct Map<A> {
    inner: A,
    seen: Option<Vec<String>>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Map<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        s: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let Some(seen) = &mut self.seen else {
            return self.inner.next_key_seed(seed(s));
        };
        let slot = KeySlot::default();
        let key = self.inner.next_key_seed(Seed {
            seed: s,
            key: Some(KeySlot::clone(&slot)),
        })?;
        if key.is_some() {
            let text = slot.take();
            if seen.contains(&text) {
                return Err(de::Error::custom(format_args!("key {text:?} is repeated")));
            }
            seen.push(text);
        }
        Ok(key)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, s: T) -> Result<T::Value, A::Error> {
        self.inner.next_value_seed(seed(s))
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

struct Enum<A>(A);

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Enum<A> {
    type Error = A::Error;
    type Variant = Variant<A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        s: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        self.0
            .variant_seed(seed(s))
            .map(|(value, variant)| (value, Variant(variant)))
    }
}

struct Variant<A>(A);

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Variant<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, s: T) -> Result<T::Value, A::Error> {
        self.0.newtype_variant_seed(seed(s))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, Wrap::plain(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.0.struct_variant(fields, Wrap::plain(visitor))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn read<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, yaml_serde::Error> {
        T::deserialize(Unambiguous::new(yaml_serde::Deserializer::from_str(text)))
    }

    #[test]
    fn strings_that_another_reader_could_type_are_refused() {
        for text in [
            "123", "'123'", "true", "yes", "No", "on", "~", "null", "''", ".inf", "1e3", "0x1F",
            "-a", "NaN",
        ] {
            assert!(read::<String>(text).is_err(), "{text}");
        }
        for text in [
            "web",
            "'web'",
            "acct-0",
            "m0@acct-0.example",
            "yesterday",
            "n0",
        ] {
            assert_eq!(
                read::<String>(text).ok().as_deref(),
                Some(text.trim_matches('\''))
            );
        }
    }

    #[test]
    fn a_map_that_repeats_a_key_is_refused_at_any_depth() {
        assert!(read::<BTreeMap<String, String>>("{a: v, b: w}").is_ok());
        assert!(read::<BTreeMap<String, String>>("{a: v, a: w}").is_err());
        let nested = "- {labels: {a: v, a: w}}";
        assert!(read::<Vec<BTreeMap<String, BTreeMap<String, String>>>>(nested).is_err());
        assert!(read::<Vec<Option<BTreeMap<String, String>>>>("- {a: x}\n- ~").is_ok());
    }

    #[test]
    fn numbers_and_booleans_pass_where_they_are_asked_for() {
        assert_eq!(read::<(u32, bool)>("[7, true]").ok(), Some((7, true)));
        assert!(read::<Vec<String>>("[a, 7]").is_err());
    }
}
