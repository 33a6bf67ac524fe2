//! The `[usage]` section of the settings: the price table and the ledger writer's queue.

use crate::error::UsageError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Prices and the writer's queue.
///
/// ```toml
/// [usage.prices."gpt-4o-mini"]
/// input_per_million = 0.15    # per million prompt tokens
/// output_per_million = 0.60   # per million completion tokens
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsageConfig {
    /// By model id as sent to the engine (the ledger's `model`); one currency for all. A model
    /// without a price has no cost in `kb usage` (give free models a price of 0).
    pub prices: BTreeMap<String, Price>,
    /// Records waiting for the writer (at least 1); when full, new records are dropped and
    /// counted rather than slowing engine calls down.
    pub queue_capacity: usize,
    /// Records inserted per transaction at most (at least 1).
    pub batch_size: usize,
}

impl Default for UsageConfig {
    fn default() -> Self {
        Self {
            prices: BTreeMap::new(),
            queue_capacity: 10_000,
            batch_size: 256,
        }
    }
}

/// The price of one model, per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input_per_million: f64,
    pub output_per_million: f64,
}

impl Price {
    /// What `prompt` and `completion` tokens cost.
    pub fn cost(&self, prompt: u64, completion: u64) -> f64 {
        (prompt as f64 * self.input_per_million + completion as f64 * self.output_per_million)
            / 1_000_000.0
    }
}

impl UsageConfig {
    /// Check every value, naming the offending key (`usage.prices."m".input_per_million`).
    pub fn validate(&self) -> Result<(), UsageError> {
        for (model, price) in &self.prices {
            if model.trim().is_empty() {
                return Err(UsageError::config(
                    "usage.prices",
                    "a model id must not be empty",
                ));
            }
            for (field, value) in [
                ("input_per_million", price.input_per_million),
                ("output_per_million", price.output_per_million),
            ] {
                if !value.is_finite() || value < 0.0 {
                    return Err(UsageError::config(
                        format!("usage.prices.{model:?}.{field}"),
                        format!("must be a finite number, 0 or more (not {value})"),
                    ));
                }
            }
        }
        if self.queue_capacity == 0 {
            return Err(UsageError::config(
                "usage.queue_capacity",
                "must be at least 1",
            ));
        }
        if self.batch_size == 0 {
            return Err(UsageError::config("usage.batch_size", "must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_price(input: f64, output: f64) -> UsageConfig {
        UsageConfig {
            prices: BTreeMap::from([(
                "gpt-4o".to_owned(),
                Price {
                    input_per_million: input,
                    output_per_million: output,
                },
            )]),
            ..UsageConfig::default()
        }
    }

    #[test]
    fn defaults_are_valid_without_prices() {
        // Act
        let config = UsageConfig::default();

        // Assert
        assert!(config.validate().is_ok());
        assert!(config.prices.is_empty());
        assert_eq!(config.queue_capacity, 10_000);
        assert_eq!(config.batch_size, 256);
    }

    #[test]
    fn negative_and_non_finite_prices_are_refused_naming_the_key() {
        // Act
        let negative = with_price(-1.0, 1.0).validate().unwrap_err().to_string();
        let nan = with_price(1.0, f64::NAN)
            .validate()
            .unwrap_err()
            .to_string();
        let infinite = with_price(f64::INFINITY, 1.0)
            .validate()
            .unwrap_err()
            .to_string();

        // Assert
        assert_eq!(
            negative,
            "usage.prices.\"gpt-4o\".input_per_million: must be a finite number, 0 or more (not -1)"
        );
        assert!(
            nan.starts_with("usage.prices.\"gpt-4o\".output_per_million:"),
            "{nan}"
        );
        assert!(
            infinite.starts_with("usage.prices.\"gpt-4o\".input_per_million:"),
            "{infinite}"
        );
        assert!(with_price(0.0, 0.0).validate().is_ok());
    }

    #[test]
    fn zero_queue_or_batch_is_refused() {
        // Arrange
        let queue = UsageConfig {
            queue_capacity: 0,
            ..UsageConfig::default()
        };
        let batch = UsageConfig {
            batch_size: 0,
            ..UsageConfig::default()
        };

        // Act + Assert
        assert_eq!(
            queue.validate().unwrap_err().to_string(),
            "usage.queue_capacity: must be at least 1"
        );
        assert_eq!(
            batch.validate().unwrap_err().to_string(),
            "usage.batch_size: must be at least 1"
        );
    }

    #[test]
    fn cost_is_per_million_tokens_in_each_direction() {
        // Arrange
        let price = Price {
            input_per_million: 2.5,
            output_per_million: 10.0,
        };

        // Act
        let cost = price.cost(1_000_000, 500_000);

        // Assert
        assert!((cost - 7.5).abs() < 1e-9, "{cost}");
        assert_eq!(price.cost(0, 0), 0.0);
    }

    #[test]
    fn prices_parse_from_the_documented_shape_and_unknown_keys_are_refused() {
        // Arrange
        let known = r#"{"prices": {"m": {"input_per_million": 1, "output_per_million": 2}}}"#;
        let unknown = r#"{"prices": {"m": {"input": 1, "output_per_million": 2}}}"#;

        // Act
        let config: UsageConfig = serde_json::from_str(known).unwrap();
        let refused = serde_json::from_str::<UsageConfig>(unknown);

        // Assert
        assert_eq!(config.prices["m"].output_per_million, 2.0);
        assert_eq!(config.batch_size, 256);
        assert!(refused.is_err());
    }
}
