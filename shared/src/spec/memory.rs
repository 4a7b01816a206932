//! `MemorySize`: a byte count written either as a number or as a docker-style
//! string such as `"64m"`, `"1g"`, `"512k"` or `"100b"`.
//!
//! Units are binary (k = 1024) and case-insensitive, as in `docker run --memory`;
//! like docker, an optional `i`/`b` suffix (`64mb`, `64MiB`) and a fractional
//! number (`1.5g`) are accepted. A value always serializes as a plain number of bytes.

use std::fmt;
use std::str::FromStr;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use super::SpecError;

/// A size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemorySize(pub u64);

impl MemorySize {
    /// One kibibyte.
    pub const KIB: u64 = 1 << 10;
    /// One mebibyte.
    pub const MIB: u64 = 1 << 20;
    /// One gibibyte.
    pub const GIB: u64 = 1 << 30;
    /// One tebibyte.
    pub const TIB: u64 = 1 << 40;

    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

fn parse_error(input: &str, why: &str) -> SpecError {
    SpecError::new(
        "invalid_memory",
        "memory",
        format!("cannot read {input:?} as a size ({why}); write bytes or e.g. \"64m\", \"1g\""),
    )
}

impl FromStr for MemorySize {
    type Err = SpecError;

    fn from_str(input: &str) -> Result<Self, SpecError> {
        let text = input.trim().to_ascii_lowercase();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let multiplier: u64 = match unit.trim_start() {
            "" | "b" => 1,
            "k" | "kb" | "ki" | "kib" => Self::KIB,
            "m" | "mb" | "mi" | "mib" => Self::MIB,
            "g" | "gb" | "gi" | "gib" => Self::GIB,
            "t" | "tb" | "ti" | "tib" => Self::TIB,
            "p" | "pb" | "pi" | "pib" => 1 << 50,
            _ => return Err(parse_error(input, "unknown unit; use b, k, m, g or t")),
        };
        if number.is_empty() {
            return Err(parse_error(input, "no number"));
        }
        if number.contains('.') {
            let well_formed = number.matches('.').count() == 1
                && !number.starts_with('.')
                && !number.ends_with('.');
            let value: f64 = match number.parse() {
                Ok(v) if well_formed => v,
                _ => return Err(parse_error(input, "malformed number")),
            };
            let bytes = value * multiplier as f64;
            if !bytes.is_finite() || bytes >= u64::MAX as f64 {
                return Err(parse_error(input, "too large"));
            }
            // Truncation is intended: docker also rounds fractional sizes down.
            return Ok(MemorySize(bytes as u64));
        }
        let value: u64 = number
            .parse()
            .map_err(|_| parse_error(input, "too large"))?;
        value
            .checked_mul(multiplier)
            .map(MemorySize)
            .ok_or_else(|| parse_error(input, "too large"))
    }
}

impl fmt::Display for MemorySize {
    /// Shortest exact docker form: `1g`, `64m`, `512k`, else `<n>b`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (unit, size) in [
            ("t", Self::TIB),
            ("g", Self::GIB),
            ("m", Self::MIB),
            ("k", Self::KIB),
        ] {
            // Sizes are powers of two: a mask test checks divisibility.
            if n != 0 && n & (size - 1) == 0 {
                return write!(f, "{}{unit}", n / size);
            }
        }
        write!(f, "{n}b")
    }
}

impl Serialize for MemorySize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

struct SizeVisitor;

impl de::Visitor<'_> for SizeVisitor {
    type Value = MemorySize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number of bytes or a size such as \"64m\"")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<MemorySize, E> {
        Ok(MemorySize(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<MemorySize, E> {
        u64::try_from(v)
            .map(MemorySize)
            .map_err(|_| E::custom("memory: a size cannot be negative"))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<MemorySize, E> {
        if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < u64::MAX as f64 {
            Ok(MemorySize(v as u64))
        } else {
            Err(E::custom(
                "memory: expected a whole, non-negative number of bytes",
            ))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<MemorySize, E> {
        v.parse().map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for MemorySize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SizeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<u64, SpecError> {
        s.parse::<MemorySize>().map(MemorySize::bytes)
    }

    #[test]
    fn parses_docker_sizes() {
        assert_eq!(parse("100b").unwrap(), 100);
        assert_eq!(parse("100").unwrap(), 100);
        assert_eq!(parse("512k").unwrap(), 512 * 1024);
        assert_eq!(parse("64m").unwrap(), 64 << 20);
        assert_eq!(parse("64M").unwrap(), 64 << 20);
        assert_eq!(parse("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse("64mb").unwrap(), 64 << 20);
        assert_eq!(parse(" 64 m ").unwrap(), 64 << 20);
        assert_eq!(parse("1g").unwrap(), 1 << 30);
        assert_eq!(parse("1G").unwrap(), 1 << 30);
        assert_eq!(parse("2t").unwrap(), 2 << 40);
        assert_eq!(parse("1.5g").unwrap(), 3 << 29);
    }

    #[test]
    fn refuses_garbage() {
        for bad in [
            "",
            "m",
            "64x",
            "-5m",
            "1..5g",
            ".5g",
            "5.g",
            "1e3",
            "99999999999999999999",
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_memory", "{bad}");
            assert_eq!(err.field(), "memory");
        }
        assert!(parse("16777216t").is_err(), "overflow must be caught");
    }

    #[test]
    fn displays_shortest_exact_form() {
        assert_eq!(MemorySize(64 << 20).to_string(), "64m");
        assert_eq!(MemorySize(1 << 30).to_string(), "1g");
        assert_eq!(MemorySize(1536 << 20).to_string(), "1536m");
        assert_eq!(MemorySize(100).to_string(), "100b");
        assert_eq!(MemorySize(0).to_string(), "0b");
    }

    #[test]
    fn serde_reads_numbers_and_strings_and_writes_bytes() {
        let from_num: MemorySize = serde_json::from_str("67108864").unwrap();
        let from_str: MemorySize = serde_json::from_str("\"64m\"").unwrap();
        let from_float: MemorySize = serde_json::from_str("67108864.0").unwrap();
        assert_eq!(from_num, MemorySize(64 << 20));
        assert_eq!(from_str, from_num);
        assert_eq!(from_float, from_num);
        assert_eq!(serde_json::to_string(&from_str).unwrap(), "67108864");
        assert!(serde_json::from_str::<MemorySize>("-1").is_err());
        assert!(serde_json::from_str::<MemorySize>("1.5").is_err());
        assert!(serde_json::from_str::<MemorySize>("\"lots\"").is_err());
        assert!(serde_json::from_str::<MemorySize>("true").is_err());
    }
}
