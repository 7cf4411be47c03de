//! Amounts: nanoTON integers on the chain; `1.5ton` / `2TON` / `3nanoton` / `1_000` on the
//! command line; printed as nanoTON with the TON value beside it.

use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// nanoTON in one TON.
pub const NANO_PER_TON: u64 = 1_000_000_000;

/// An amount of nanoTON, parsed from the command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Amount(pub u64);

impl FromStr for Amount {
    type Err = String;

    fn from_str(s: &str) -> Result<Amount, String> {
        parse_amount(s).map(Amount)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&nano(u128::from(self.0)))
    }
}

/// Parses `123` (nanoTON), `123nanoton`, `1.5ton`, `2 TON`; `_` may group digits.
pub fn parse_amount(s: &str) -> Result<u64, String> {
    let bad = |why: &str| format!("bad amount {s:?}: {why}");
    let lower = s.trim().to_ascii_lowercase().replace('_', "");
    let (number, in_ton) = if let Some(n) = lower.strip_suffix("nanoton") {
        (n.trim_end(), false)
    } else if let Some(n) = lower.strip_suffix("ton") {
        (n.trim_end(), true)
    } else {
        (lower.as_str(), false)
    };
    if number.is_empty() {
        return Err(bad(
            "expected a number, e.g. 1500000000 (nanoTON) or 1.5ton",
        ));
    }
    let (whole, frac) = match number.split_once('.') {
        Some((w, f)) if in_ton => (w, f),
        Some(_) => {
            return Err(bad(
                "plain numbers are whole nanoTON; write e.g. 1.5ton for TON",
            ))
        }
        None => (number, ""),
    };
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    let whole_ok = digits(whole) || (whole.is_empty() && digits(frac));
    if !whole_ok {
        return Err(bad("expected digits (no sign), e.g. 2ton or 2000000000"));
    }
    if number.contains('.') && !digits(frac) {
        return Err(bad("expected digits after the decimal point"));
    }
    if frac.len() > 9 {
        return Err(bad(
            "more than 9 decimal places (1 nanoTON = 0.000000001 TON)",
        ));
    }
    let too_big = || bad("too large for a u64 of nanoTON");
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_big())?
    };
    if !in_ton {
        return Ok(whole);
    }
    let frac_nano: u64 = if frac.is_empty() {
        0
    } else {
        // Right-pad to 9 digits: "5" → 500000000.
        format!("{frac:0<9}").parse().map_err(|_| too_big())?
    };
    whole
        .checked_mul(NANO_PER_TON)
        .and_then(|n| n.checked_add(frac_nano))
        .ok_or_else(too_big)
}

/// `1500000000 nanoTON (1.5 TON)`.
pub fn nano(n: u128) -> String {
    format!("{n} nanoTON ({} TON)", ton(n))
}

/// The TON value of `n` nanoTON, exact, without trailing zeros: `1.5`, `0.00000002`, `0`.
pub fn ton(n: u128) -> String {
    let per = u128::from(NANO_PER_TON);
    let (whole, frac) = (n / per, n % per);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:09}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// A u128 sum as JSON: a number when it fits u64 (always, while coins are conserved), else a
/// decimal string rather than a panic.
pub fn big(n: u128) -> serde_json::Value {
    u64::try_from(n).map_or_else(|_| n.to_string().into(), Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nano_and_ton() {
        assert_eq!(parse_amount("1500000000"), Ok(1_500_000_000));
        assert_eq!(parse_amount("1_000"), Ok(1000));
        assert_eq!(parse_amount("7nanoton"), Ok(7));
        assert_eq!(parse_amount("1.5ton"), Ok(1_500_000_000));
        assert_eq!(parse_amount("2TON"), Ok(2_000_000_000));
        assert_eq!(parse_amount(" 2 ton "), Ok(2_000_000_000));
        assert_eq!(parse_amount(".5ton"), Ok(500_000_000));
        assert_eq!(parse_amount("0.000000001ton"), Ok(1));
        assert_eq!(parse_amount("0"), Ok(0));
        assert_eq!(
            parse_amount("18446744073ton"),
            Ok(18_446_744_073_000_000_000)
        );
    }

    #[test]
    fn refuses_bad_amounts() {
        for s in [
            "",
            "ton",
            "-1",
            "1.5",
            "1.5nanoton",
            "abc",
            "1e9",
            "0.0000000001ton",
            "1.ton",
            "18446744074ton",
            "99999999999999999999",
            "1..2ton",
            "+3",
        ] {
            let e = parse_amount(s).expect_err(s);
            assert!(e.starts_with("bad amount"), "{s}: {e}");
        }
    }

    #[test]
    fn prints_ton_beside_nano() {
        assert_eq!(nano(1_500_000_000), "1500000000 nanoTON (1.5 TON)");
        assert_eq!(ton(20), "0.00000002");
        assert_eq!(ton(0), "0");
        assert_eq!(ton(3_000_000_000), "3");
        assert_eq!(Amount(1).to_string(), "1 nanoTON (0.000000001 TON)");
    }
}
