//! Money as integer minor units with an ISO 4217 currency: no floating point in billing.

use std::fmt;

/// A three-letter uppercase ISO 4217 currency code, e.g. `USD`, `INR`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl TryFrom<String> for Currency {
    type Error = crate::Invalid;
    fn try_from(value: String) -> Result<Self, crate::Invalid> {
        Self::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.0
    }
}

impl Currency {
    pub fn parse(value: &str) -> Result<Self, crate::Invalid> {
        if value.len() == 3 && value.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(value.to_owned()))
        } else {
            Err(crate::Invalid::from(format!(
                "currency {value:?} is not valid: use a three-letter uppercase ISO 4217 code such as USD"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What happens when a tenant has spent its monthly budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetAction {
    /// Alerts at 80% and 100%; requests go on.
    #[default]
    Alert,
    /// Alerts, and billable requests are refused once the budget is spent.
    Block,
}

impl BudgetAction {
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetAction::Alert => "alert",
            BudgetAction::Block => "block",
        }
    }

    pub fn parse(value: &str) -> Result<Self, crate::Invalid> {
        match value {
            "alert" => Ok(BudgetAction::Alert),
            "block" => Ok(BudgetAction::Block),
            other => Err(crate::Invalid::from(format!("budget action {other:?} is not one of alert, block"))),
        }
    }
}

/// An amount in hundredths of the currency unit. Invariant: `minor_units >= 0` (budgets are never
/// negative).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "MoneyFields")]
pub struct Money {
    minor_units: i64,
    currency: Currency,
}

impl Money {
    pub fn new(minor_units: i64, currency: Currency) -> Result<Self, crate::Invalid> {
        if minor_units < 0 {
            return Err(crate::Invalid::from("a budget cannot be negative".to_owned()));
        }
        Ok(Self { minor_units, currency })
    }

    /// Parses a decimal amount with at most two fractional digits, e.g. `"5000"`, `"1250.50"`.
    pub fn parse_decimal(amount: &str, currency: Currency) -> Result<Self, crate::Invalid> {
        let bad = || format!("amount {amount:?} is not valid: use a non-negative number with at most two decimals");
        let (whole, frac) = match amount.split_once('.') {
            Some((w, f)) => (w, f),
            None => (amount, ""),
        };
        if whole.is_empty()
            || whole.len() > 15
            || frac.len() > 2
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(crate::Invalid::from(bad()));
        }
        let whole: i64 = whole.parse().map_err(|_| bad())?;
        let frac: i64 = if frac.is_empty() {
            0
        } else {
            let padded = format!("{frac:0<2}");
            padded.parse().map_err(|_| bad())?
        };
        Self::new(whole * 100 + frac, currency)
    }

    pub fn minor_units(&self) -> i64 {
        self.minor_units
    }

    pub fn currency(&self) -> &Currency {
        &self.currency
    }

    /// The amount as a decimal string with two fractional digits.
    pub fn amount_string(&self) -> String {
        format!("{}.{:02}", self.minor_units / 100, self.minor_units % 100)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount_string(), self.currency.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimal_amounts() {
        let usd = Currency::parse("USD").unwrap();
        for (input, expected) in [
            ("5000", Some(500000)),
            ("12.5", Some(1250)),
            ("0.07", Some(7)),
            ("1.234", None),
            ("-1", None),
            ("", None),
            (".5", None),
            ("1e3", None),
        ] {
            let got = Money::parse_decimal(input, usd.clone()).ok().map(|m| m.minor_units());
            assert_eq!(got, expected, "{input:?}");
        }
        assert_eq!(Money::parse_decimal("12.5", usd).unwrap().to_string(), "12.50 USD");
        assert!(Currency::parse("usd").is_err());
    }
}

/// The unchecked form of [`Money`] that deserialization goes through, so the invariant holds.
#[derive(serde::Deserialize)]
struct MoneyFields {
    minor_units: i64,
    currency: Currency,
}

impl TryFrom<MoneyFields> for Money {
    type Error = crate::Invalid;
    fn try_from(f: MoneyFields) -> Result<Self, crate::Invalid> {
        Money::new(f.minor_units, f.currency)
    }
}
