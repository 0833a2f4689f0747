//! Deserialisers for what JSON allows and Rust's types do not take by default.

use serde::de::{self, Deserializer, Visitor};

/// An optional whole number that JSON may write as `21` or `21.0` (JSON Schema counts both as
/// an integer; serde's `u32` takes only the first).
pub fn integral_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    struct Integral;

    impl<'de> Visitor<'de> for Integral {
        type Value = Option<u32>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a whole number from 0 to 4294967295, or null")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(self)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            u32::try_from(v)
                .map(Some)
                .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u32::try_from(v)
                .map(Some)
                .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v) {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Ok(Some(v as u32))
            } else {
                Err(E::invalid_value(de::Unexpected::Float(v), &self))
            }
        }
    }

    d.deserialize_option(Integral)
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize)]
    struct Hours {
        #[serde(default, deserialize_with = "super::integral_u32")]
        h: Option<u32>,
    }

    fn read(json: &str) -> Result<Option<u32>, String> {
        serde_json::from_str::<Hours>(json)
            .map(|x| x.h)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn whole_numbers_in_either_form_and_nothing_else() {
        assert_eq!(read(r#"{"h": 21}"#), Ok(Some(21)));
        assert_eq!(read(r#"{"h": 21.0}"#), Ok(Some(21)));
        assert_eq!(read(r#"{"h": null}"#), Ok(None));
        assert_eq!(read(r#"{}"#), Ok(None));
        for bad in [
            r#"{"h": 21.5}"#,
            r#"{"h": -1}"#,
            r#"{"h": 4294967296}"#,
            r#"{"h": "3"}"#,
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }
}
